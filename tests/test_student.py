"""Student copies: every exercise has a solution and a checker; stubs keep the solutions' signatures;
a fresh student notebook runs up to its first stub and stops exactly at that exercise's check."""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
spec = importlib.util.spec_from_file_location("make_student", ROOT / "scripts" / "make_student.py")
make_student = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_student)


def _solutions(nb):
    cells = nb["cells"]
    return [(i, c) for i, c in enumerate(cells) if c["cell_type"] == "code" and "solution" in c["metadata"].get("tags", [])]


def _sigs(src):
    return {n.name: ast.dump(n.args) for n in ast.parse(src).body if isinstance(n, ast.FunctionDef)}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercises_have_solution_and_checker(path):
    nb = json.loads(path.read_text())
    sols = _solutions(nb)
    if path.name[:2] == "00":
        return
    assert 1 <= len(sols) <= 4, f"{path.name}: expected 1-4 exercises, found {len(sols)}"
    for i, cell in sols:
        nxt = next(c for c in nb["cells"][i + 1:] if c["cell_type"] == "code")
        src = "".join(nxt["source"])
        assert "checks.check_" in src or "assert " in src, f"{path.name}: solution cell {i} has no checker after it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stubs_match_signatures(path):
    nb = nbformat.read(path, as_version=4)
    student = make_student.make_student(nb)
    for orig, stub in zip(nb.cells, student.cells):
        if "solution" in orig.metadata.get("tags", []):
            assert _sigs(orig.source) == _sigs(stub.source)
            assert "NotImplementedError" in stub.source or "= ..." in stub.source
            assert stub.outputs == []


def test_make_student_writes_fresh_copies(tmp_path):
    assert make_student.main(["--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("name", ["01_low_rank_math.ipynb", "03_safe_loading.ipynb"])
def test_student_notebook_runs_until_first_stub(tmp_path, name):
    from nbclient import NotebookClient

    path = ROOT / "notebooks" / name
    student = make_student.make_student(nbformat.read(path, as_version=4))
    first_stub = next(i for i, c in enumerate(student.cells) if "exercise" in c.metadata.get("tags", []))
    client = NotebookClient(student, timeout=300, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    errors = [i for i, c in enumerate(student.cells) if c.cell_type == "code"
              and any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert errors, "the student notebook should stop at the first exercise check"
    first_check = next(i for i in range(first_stub + 1, len(student.cells)) if student.cells[i].cell_type == "code")
    assert errors[0] == first_check, (errors, first_stub)
    out = "".join(o.get("text", "") for o in student.cells[first_check].outputs if o.get("output_type") == "stream")
    assert "not implemented yet" in out
