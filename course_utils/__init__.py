"""course_utils: the tested helpers behind "AIGC in Practice: Weight Files and LoRA"."""

__version__ = "0.1.0"

from .errors import CourseError  # noqa: E402

__all__ = ["CourseError", "__version__"]
