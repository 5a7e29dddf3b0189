"""Write data/MANIFEST.sha256: the sha256 of every shipped file under data/ (run after training).

    python scripts/update_manifest.py

README.md files and the manifest itself are not listed. ``course_utils.env.check_environment``
and the tests verify the data against this list.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_utils.env import sha256_file  # noqa: E402


def main() -> None:
    data = ROOT / "data"
    rows = []
    total = 0
    for p in sorted(data.rglob("*")):
        if not p.is_file() or p.name in ("MANIFEST.sha256", "README.md") or p.name.endswith(".tmp"):
            continue
        rows.append(f"{sha256_file(p)}  {p.relative_to(data).as_posix()}")
        total += p.stat().st_size
    (data / "MANIFEST.sha256").write_text("\n".join(rows) + "\n")
    print(f"{len(rows)} files, {total / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
