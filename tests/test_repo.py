"""Repository-level contracts: environment.yml and pyproject agree, Makefile has the commands, README links."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml  # noqa: F401  (pyyaml ships with jupyter)
from packaging.requirements import Requirement

from course_utils.notebook import REPO_NAME, REPO_OWNER

ROOT = Path(__file__).resolve().parents[1]


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _env_pip_reqs():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {Requirement(r).name.lower(): str(Requirement(r).specifier) for r in pip if not r.startswith("-e")}


def test_environment_yml_matches_pyproject():
    proj = _pyproject()["project"]
    wanted = {Requirement(r).name.lower(): str(Requirement(r).specifier)
              for r in proj["dependencies"] + proj["optional-dependencies"]["dev"]}
    assert _env_pip_reqs() == wanted


def test_no_exact_pins_and_caps_present():
    for r in _pyproject()["project"]["dependencies"]:
        spec = Requirement(r).specifier
        assert not any(s.operator == "==" for s in spec), r
        assert any(s.operator in (">=",) for s in spec), f"{r}: needs a lower bound"


def test_makefile_has_the_commands():
    mk = (ROOT / "Makefile").read_text()
    for target in ("lab:", "test:", "execute:", "student:"):
        assert re.search(rf"^{target}", mk, re.M), target
    assert "\nmake test\n" in (ROOT / ".ci" / "run").read_text()


def test_readme_badges_use_the_one_repo():
    readme = (ROOT / "README.md").read_text()
    badges = re.findall(r"colab\.research\.google\.com/github/([^/]+)/([^/]+)/blob/main/(\S+?)\)", readme)
    assert badges, "README has no Open-in-Colab badges"
    for owner, repo, path in badges:
        assert (owner, repo) == (REPO_OWNER, REPO_NAME)
        assert (ROOT / path).is_file(), f"README links a missing notebook: {path}"
    linked = {p for _, _, p in badges}
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        assert f"notebooks/{nb.name}" in linked, f"{nb.name} missing from the README syllabus"
