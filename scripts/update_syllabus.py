"""Refresh README.md's syllabus rows: a link and an Open-in-Colab badge for every notebook that exists.

    python scripts/update_syllabus.py

Rows for notebooks not written yet keep "(in preparation)". The badge URL comes from
course_utils.notebook (owner/repo defined once).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_utils.notebook import colab_badge  # noqa: E402


def main() -> None:
    readme = ROOT / "README.md"
    lines = readme.read_text(encoding="utf-8").splitlines()
    out = []
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("| ") else []
        if len(cells) == 5 and re.fullmatch(r"\d\d", cells[0]):
            name = re.search(r"`(\w+)`", cells[1]).group(1)
            path = f"notebooks/{name}.ipynb"
            if (ROOT / path).is_file():
                line = f"| {cells[0]} | [`{name}`]({path}) | {cells[2]} | {cells[3]} | {colab_badge(path)} |"
            else:
                line = f"| {cells[0]} | `{name}` (in preparation) | {cells[2]} | {cells[3]} | |"
        out.append(line)
    readme.write_text("\n".join(out) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
