"""Test harness: deterministic environment for tests and notebook kernels, nbval settings, timings.

Loaded for the unit tests (as tests/conftest.py) and for the notebook run (``pytest -p
tests.conftest --nbval notebooks``, see the Makefile).
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from pathlib import Path

from course_utils.env import DETERMINISTIC_ENV

# Set before any kernel starts: notebook kernels inherit this environment.
os.environ.update(DETERMINISTIC_ENV)

ROOT = Path(__file__).resolve().parents[1]
_times: dict[str, float] = defaultdict(float)
_cells: dict[str, int] = defaultdict(int)
_start = time.time()


def pytest_collectstart(collector):
    # Compare stdout and rich outputs, not stderr: library warnings and progress bars differ
    # between versions and machines and are not what the lessons teach.
    if getattr(collector, "path", None) is not None and collector.path.suffix == ".ipynb":
        extra = ("stderr", "application/javascript", "text/html")
        collector.skip_compare = tuple(collector.skip_compare) + extra


def pytest_runtest_logreport(report):
    nb = report.nodeid.split("::")[0]
    if nb.endswith(".ipynb"):
        _times[nb] += report.duration
        if report.when == "call":
            _cells[nb] += 1


def pytest_terminal_summary(terminalreporter):
    if not _times:
        return
    tr = terminalreporter
    tr.write_sep("=", "notebook run times (this machine)")
    w = max(len(k) for k in _times)
    for nb in sorted(_times):
        tr.write_line(f"{nb:<{w}}  {_cells[nb]:>4} cells  {_times[nb]:7.1f} s")
    tr.write_line(f"{'total':<{w}}  {sum(_cells.values()):>4} cells  {sum(_times.values()):7.1f} s")
    out = ROOT / "build" / "notebook_times.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({k: round(v, 1) for k, v in sorted(_times.items())}, indent=2) + "\n")
