"""Re-execute notebooks in place, top to bottom, in a fresh kernel (``make execute``).

    python scripts/execute_notebooks.py notebooks/*.ipynb

Runs each notebook from its own folder with the environment nbval uses (fixed hash seed, no
progress bars, offline), so that ``make test`` compares against exactly what this wrote.
Cells tagged ``raises-exception`` may raise; any other error stops with the cell shown.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_utils.env import DETERMINISTIC_ENV  # noqa: E402


def execute(path: Path, timeout: int = 600) -> float:
    nb = nbformat.read(path, as_version=4)
    os.environ.update(DETERMINISTIC_ENV)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    t0 = time.time()
    client.execute()
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    tmp = path.with_suffix(".ipynb.tmp")
    nbformat.write(nb, tmp)
    tmp.replace(path)
    return time.time() - t0


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    for p in argv:
        dt = execute(Path(p))
        print(f"{p}: {dt:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
