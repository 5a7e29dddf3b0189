"""Write student copies of the notebooks: every cell tagged ``solution`` becomes a stub (``make student``).

    python scripts/make_student.py [--out student]

In a solution cell, imports are kept, each function keeps its signature and docstring and its
body becomes ``raise NotImplementedError``, and each top-level assignment becomes ``name = ...``.
Outputs of solution cells are cleared; the checker cell after each stub then tells the learner
what to do. student/ is generated, never edited by hand (and not committed).
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def stub_source(src: str) -> str:
    """The stub for one solution cell's source."""
    tree = ast.parse(src)
    out: list[str] = []
    lines = src.splitlines()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append("\n".join(lines[node.lineno - 1: node.end_lineno]))
        elif isinstance(node, ast.FunctionDef):
            header_end = node.body[0].lineno - 1
            doc = ast.get_docstring(node)
            head = "\n".join(lines[node.lineno - 1: header_end])
            if doc is not None:
                first = node.body[0]
                head += "\n" + "\n".join(lines[first.lineno - 1: first.end_lineno])
            out.append(head + '\n    raise NotImplementedError("Exercise: write this function, then run the check below")')
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = ", ".join(ast.unparse(t) for t in targets)
            out.append(f"{names} = ...  # Exercise: your code here")
        else:
            out.append("# Exercise: your code here")
    return "\n\n".join(out) + "\n"


def make_student(nb):
    """A copy of ``nb`` with solution cells replaced by stubs (outputs cleared)."""
    nb = nbformat.from_dict(nb) if isinstance(nb, dict) else nb
    new = nbformat.from_dict(dict(nb))
    for cell in new.cells:
        if cell.cell_type == "code" and "solution" in cell.get("metadata", {}).get("tags", []):
            cell.source = stub_source(cell.source)
            cell.outputs = []
            cell.execution_count = None
            cell.metadata["tags"] = [t for t in cell.metadata["tags"] if t != "solution"] + ["exercise"]
    return new


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "student"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        student = make_student(nb)
        stubs = sum("exercise" in c.get("metadata", {}).get("tags", []) for c in student.cells)
        nbformat.write(student, out / path.name)
        print(f"{out.name}/{path.name}: {stubs} exercise stub(s)")
        n += 1
    return 0 if n else 1


if __name__ == "__main__":
    sys.exit(main())
