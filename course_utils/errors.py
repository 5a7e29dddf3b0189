"""The one exception family learners see: what is wrong, the evidence, and what to do."""


class CourseError(Exception):
    """A learner-facing error. The message says what is wrong and what to do next."""


class UnsafeFileError(CourseError):
    """A pickle asked for something a weights file never needs (code execution risk)."""


class FormatError(CourseError):
    """A file is not what its name or the caller says it is (corrupt, truncated, wrong kind)."""


class LoraMismatchError(CourseError):
    """A LoRA does not fit the base model it is applied to."""
