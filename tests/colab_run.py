"""Run notebooks the way Colab would, in the Colab-versions virtual environment (``make colab-test``).

    .venv-colab/bin/python tests/colab_run.py [notebooks …]

A stub ``google.colab`` (with ``output.enable_custom_widget_manager``) is importable and
imported before the first cell, so the standard setup cell takes its Colab branch: it clones
the course — from this local repository (its committed HEAD) instead of GitHub — and
``%pip install``s it. The script then checks that Colab's own torch, diffusers, transformers and
ipywidgets were not upgraded, that the widget manager was enabled, and that every cell ran
without error. Versions and executed notebooks go to ``test-output/colab/``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "test-output" / "colab"
sys.path.insert(0, str(ROOT))
from course_utils.notebook import COLAB_CLONE, REPO_URL, SETUP_CELL  # noqa: E402

PROTECTED = ("torch", "diffusers", "transformers", "ipywidgets")
STUB = '''
_calls = []
def enable_custom_widget_manager():
    _calls.append("enable_custom_widget_manager")
'''


def versions() -> dict[str, str]:
    names = PROTECTED + ("peft", "safetensors", "huggingface_hub", "tokenizers", "accelerate", "numpy", "course_utils")
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    out["python"] = sys.version.split()[0]
    return out


def main(argv: list[str]) -> int:
    names = argv or ["00_setup.ipynb", "05_lora_anatomy.ipynb", "07_generating_images.ipynb"]
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="colab-"))
    stub = work / "stub" / "google" / "colab"
    stub.mkdir(parents=True)
    (work / "stub" / "google" / "__init__.py").write_text("")
    (stub / "__init__.py").write_text("from . import output\n")
    (stub / "output.py").write_text(STUB)
    clone = work / "content" / Path(COLAB_CLONE).name
    setup = SETUP_CELL.replace(REPO_URL, f"file://{ROOT}").replace(COLAB_CLONE, str(clone))
    before = versions()
    env = dict(os.environ, PYTHONPATH=str(work / "stub"), TQDM_DISABLE="1", HF_HUB_OFFLINE="1", PYTHONHASHSEED="0")
    env.pop("COURSE_DATA_DIR", None)
    os.environ.update(env)
    report = {"versions_before": before, "notebooks": {}}
    ok = True
    for name in names:
        nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code[0].source.strip() == SETUP_CELL.strip(), f"{name}: first cell is not the standard setup cell"
        code[0].source = setup
        pre = nbformat.v4.new_code_cell("import google.colab  # Colab has this imported before your first cell")
        nb.cells.insert(0, pre)
        post = nbformat.v4.new_code_cell("from google.colab import output as _o; print('widget manager enabled:', _o._calls)")
        post_index = nb.cells.index(code[0]) + 1
        nb.cells.insert(post_index, post)
        t0 = time.time()
        client = NotebookClient(nb, timeout=900, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(work)}})
        client.execute()
        errors = [(i, o.get("ename"), o.get("evalue", "")[:300]) for i, c in enumerate(nb.cells) if c.cell_type == "code"
                  for o in c.get("outputs", []) if o.get("output_type") == "error"]
        enabled = "enable_custom_widget_manager" in "".join(
            o.get("text", "") for o in nb.cells[post_index].get("outputs", []) if o.get("output_type") == "stream")
        nbformat.write(nb, OUT / name)
        report["notebooks"][name] = {"seconds": round(time.time() - t0, 1), "errors": errors,
                                     "widget_manager_enabled": enabled}
        print(f"{name}: {len(errors)} error(s), widget manager enabled: {enabled}, {time.time() - t0:.0f} s")
        for e in errors:
            print("   ", e)
        ok = ok and not errors and enabled
    after = versions()
    report["versions_after"] = after
    changed = {k: (before[k], after[k]) for k in PROTECTED if before[k] != after[k]}
    report["protected_changed"] = changed
    (OUT / "versions.json").write_text(json.dumps(report, indent=2) + "\n")
    print("versions:", json.dumps(after))
    if changed:
        print("Colab's own packages were changed by the setup cell:", changed)
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
