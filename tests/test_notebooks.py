"""Every committed notebook ran top to bottom, has no unexpected errors, starts with the setup
cell and uses no absolute paths. The checks themselves are tested on broken notebooks."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from course_utils.notebook import SETUP_CELL
from tests import nbchecks

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found in notebooks/"
    assert NOTEBOOKS[0].name.startswith("00_setup")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_structure(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    problems = nbchecks.all_problems(nb)
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def _nb(counts, first=SETUP_CELL, outputs=None, tags=None):
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell("# t"))
    for i, n in enumerate(counts):
        c = nbformat.v4.new_code_cell(first if i == 0 else f"x = {i}")
        c.execution_count = n
        nb.cells.append(c)
    if outputs:
        nb.cells[-1].outputs = outputs
    if tags:
        nb.cells[-1].metadata["tags"] = tags
    return json.loads(nbformat.writes(nb))


def test_good_fixture_passes():
    assert nbchecks.all_problems(_nb([1, 2, 3])) == []


@pytest.mark.parametrize("counts", [[2, 1, 3], [1, None, 3], [1, 2, 2], [2, 3, 4], [1, 3]])
def test_out_of_order_counts_fail(counts):
    assert nbchecks.check_execution_order(_nb(counts))


def test_error_output_fails_unless_tagged():
    err = [nbformat.v4.new_output("error", ename="ValueError", evalue="x", traceback=[])]
    assert nbchecks.check_no_errors(_nb([1, 2], outputs=err))
    assert not nbchecks.check_no_errors(_nb([1, 2], outputs=err, tags=["raises-exception"]))
    assert nbchecks.check_no_errors(_nb([1, 2], tags=["raises-exception"]))  # tagged but did not raise


def test_setup_cell_must_be_first():
    assert nbchecks.check_setup_cell(_nb([1, 2], first="import course_utils"))


def test_absolute_paths_fail():
    nb = _nb([1, 2])
    nb["cells"][-1]["source"] = "open('/home/me/model.ckpt')"
    assert nbchecks.check_no_absolute_paths(nb)
    nb["cells"][-1]["source"] = "open('data/model.ckpt')"
    assert not nbchecks.check_no_absolute_paths(nb)


def test_setup_cell_is_colab_safe():
    # It must never (re)install the packages Colab ships, and must enable the widget manager.
    for pkg in ("torch", "diffusers", "transformers", "ipywidgets"):
        assert f"install {pkg}" not in SETUP_CELL and "--upgrade" not in SETUP_CELL and " -U " not in SETUP_CELL
    assert "enable_custom_widget_manager" in SETUP_CELL
    assert 'if "google.colab" in sys.modules' in SETUP_CELL
    assert len(SETUP_CELL.splitlines()) <= 12
