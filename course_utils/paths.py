"""Where the course's files live, whether installed editable, run from a clone, or in Colab."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import CourseError

_ENV = "COURSE_DATA_DIR"


def _candidates() -> list[Path]:
    here = Path(__file__).resolve().parent
    out = []
    if os.environ.get(_ENV):
        out.append(Path(os.environ[_ENV]))
    out.append(here.parent / "data")            # a clone or an editable install
    out.append(here / "data")                   # data shipped inside a wheel
    out.append(Path.cwd() / "data")             # running from the repo root
    out.append(Path.cwd().parent / "data")      # running from notebooks/
    out.append(Path("/content/aigc-lora-course/data"))  # Colab clone
    return out


def data_dir() -> Path:
    """The course ``data/`` folder (set ``COURSE_DATA_DIR`` to override)."""
    for c in _candidates():
        if (c / "MANIFEST.sha256").is_file():
            return c
    tried = "\n  ".join(str(c) for c in _candidates())
    raise CourseError(
        "Cannot find the course data folder (a 'data/' folder with MANIFEST.sha256). Looked in:\n  "
        f"{tried}\nRun from a clone of the course, or set {_ENV}=/path/to/data."
    )


def repo_root() -> Path:
    """The course repository root (the folder that holds ``data/``)."""
    return data_dir().parent


def model_dir() -> Path:
    """The shipped course model in diffusers folder format."""
    return data_dir() / "course-model"


def checkpoints_dir() -> Path:
    return data_dir() / "checkpoints"


def loras_dir() -> Path:
    return data_dir() / "loras"
