"""The course's notebook conventions, defined once: the repository, Colab links and the setup cell."""

from __future__ import annotations

REPO_OWNER = "aigc-course"
REPO_NAME = "aigc-lora-course"
REPO_URL = f"https://github.com/{REPO_OWNER}/{REPO_NAME}"
COLAB_CLONE = f"/content/{REPO_NAME}"

# Every notebook's first code cell is exactly this text (tests/test_notebooks.py checks it).
SETUP_CELL = f'''\
# Standard setup cell (the same in every notebook). In Colab it fetches the course and installs it
# without upgrading Colab's torch, diffusers, transformers or ipywidgets; elsewhere it only imports it.
import sys
if "google.colab" in sys.modules:
    !git clone -q --depth 1 {REPO_URL} {COLAB_CLONE} || git -C {COLAB_CLONE} pull -q
    %pip install -q -e {COLAB_CLONE}
    sys.path.insert(0, "{COLAB_CLONE}")
    from google.colab import output
    output.enable_custom_widget_manager()
import course_utils
print("course_utils", course_utils.__version__)'''


def colab_url(notebook_path: str, branch: str = "main") -> str:
    """The Open-in-Colab address of a notebook in the course repository (``notebooks/01_….ipynb``)."""
    return f"https://colab.research.google.com/github/{REPO_OWNER}/{REPO_NAME}/blob/{branch}/{notebook_path}"


def colab_badge(notebook_path: str) -> str:
    """Markdown for the standard Open-in-Colab badge."""
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"({colab_url(notebook_path)})")
