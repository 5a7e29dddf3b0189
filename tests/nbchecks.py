"""Structural checks on a committed notebook (used by test_notebooks.py; each returns problems)."""

from __future__ import annotations

import re

from course_utils.notebook import SETUP_CELL

RAISES_TAGS = {"raises-exception", "nbval-raises-exception"}
_ABS_PATH = re.compile(r"""(["'])(/(home|Users|root|work|tmp|mnt|opt|content)/|[A-Za-z]:\\\\)""")


def code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def source(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def check_execution_order(nb: dict) -> list[str]:
    counts = [c.get("execution_count") for c in code_cells(nb)]
    if counts != list(range(1, len(counts) + 1)):
        return [f"execution counts are {counts}, expected 1..{len(counts)}: run `make execute`"]
    return []


def check_no_errors(nb: dict) -> list[str]:
    out = []
    for i, c in enumerate(code_cells(nb)):
        tags = set(c.get("metadata", {}).get("tags", []))
        marked = bool(tags & RAISES_TAGS) or "NBVAL_RAISES_EXCEPTION" in source(c)
        errors = [o for o in c.get("outputs", []) if o.get("output_type") == "error"]
        if errors and not marked:
            out.append(f"code cell {i + 1} has an error output ({errors[0].get('ename')}) but is not tagged raises-exception")
        if marked and not errors:
            out.append(f"code cell {i + 1} is tagged to raise but has no error output")
    return out


def check_setup_cell(nb: dict) -> list[str]:
    cells = code_cells(nb)
    if not cells or source(cells[0]).strip() != SETUP_CELL.strip():
        return ["the first code cell is not the standard setup cell (course_utils.notebook.SETUP_CELL)"]
    return []


def check_no_absolute_paths(nb: dict) -> list[str]:
    out = []
    for i, c in enumerate(code_cells(nb)):
        if i == 0:
            continue  # the setup cell names Colab's /content folder by design
        if _ABS_PATH.search(source(c)):
            out.append(f"code cell {i + 1} uses an absolute path: {_ABS_PATH.search(source(c)).group(0)!r}")
        for o in c.get("outputs", []):
            if o.get("name") == "stderr":
                continue  # library warnings name their own files; nbval does not compare stderr
            text = "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
            m = re.search(r"/(home|Users|root|work)/\S+", text)
            if m:
                out.append(f"code cell {i + 1} prints a machine-specific path: {m.group(0)!r}")
    return out


def all_problems(nb: dict) -> list[str]:
    return (check_execution_order(nb) + check_no_errors(nb) + check_setup_cell(nb)
            + check_no_absolute_paths(nb))
