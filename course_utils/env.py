"""Check the learner's environment: packages and versions, the device, and the shipped data files."""

from __future__ import annotations

import hashlib
import os
import platform
import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from . import paths
from .errors import CourseError

# The environment notebooks are executed and checked under (make execute, make test): fixed
# hash seed, no progress bars in saved outputs, no network.
DETERMINISTIC_ENV = {
    "PYTHONHASHSEED": "0",
    "TQDM_DISABLE": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "DIFFUSERS_VERBOSITY": "error",
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
}


@dataclass
class EnvReport:
    packages: list[tuple[str, str, str, bool]] = field(default_factory=list)  # name, installed, wanted, ok
    device: str = "cpu"
    python: str = platform.python_version()
    data: list[tuple[str, bool, str]] = field(default_factory=list)  # path, ok, detail
    data_dir: str = ""

    @property
    def ok(self) -> bool:
        return all(p[3] for p in self.packages) and all(d[1] for d in self.data) and bool(self.data)

    def __str__(self) -> str:
        w = max([len(p[0]) for p in self.packages] + [8])
        lines = [f"{'package':<{w}}  {'installed':<12} {'required':<18} status"]
        for name, have, want, ok in self.packages:
            lines.append(f"{name:<{w}}  {have:<12} {want:<18} {'OK' if ok else 'FAIL'}")
        lines.append(f"{'python':<{w}}  {self.python:<12} {'>=3.10':<18} OK")
        lines.append(f"{'device':<{w}}  {self.device}")
        bad = [d for d in self.data if not d[1]]
        lines.append(f"data files: {len(self.data) - len(bad)}/{len(self.data)} match MANIFEST.sha256"
                     + ("" if self.data else f" (no data folder found: {self.data_dir})"))
        for path, _, detail in bad:
            lines.append(f"  FAIL {path}: {detail}")
        lines.append("environment: " + ("OK" if self.ok else "FAIL - see the rows marked FAIL above"))
        return "\n".join(lines)

    _repr_pretty_ = lambda self, p, cycle: p.text(str(self))  # noqa: E731


def _requirements() -> list[str]:
    try:
        reqs = metadata.requires("course_utils") or []
        return [r for r in reqs if "extra ==" not in r]
    except metadata.PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        return tomllib.loads(pyproject.read_text())["project"]["dependencies"]


def _check_requirement(req: str) -> tuple[str, str, str, bool]:
    from packaging.requirements import Requirement
    from packaging.version import Version

    r = Requirement(req)
    try:
        have = metadata.version(r.name)
    except metadata.PackageNotFoundError:
        return (r.name, "missing", str(r.specifier), False)
    base = re.match(r"[\d.]+", have).group(0).rstrip(".")
    ok = r.specifier.contains(Version(base), prereleases=True)
    return (r.name, have, str(r.specifier), ok)


def detect_device() -> str:
    """``cuda``, ``mps`` or ``cpu``: the best device torch can use here."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_manifest(data_dir: str | os.PathLike | None = None) -> list[tuple[str, bool, str]]:
    """Check every file in ``data/MANIFEST.sha256``: ``[(path, ok, detail), ...]``."""
    d = Path(data_dir) if data_dir else paths.data_dir()
    rows = []
    for line in (d / "MANIFEST.sha256").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        want, rel = line.split(maxsplit=1)
        p = d / rel.strip()
        if not p.is_file():
            rows.append((rel, False, "missing (re-clone, or git lfs/zip download was incomplete)"))
            continue
        have = sha256_file(p)
        rows.append((rel, have == want, "ok" if have == want else
                     f"sha256 {have[:12]}… != manifest {want[:12]}… (file changed or corrupt)"))
    return rows


def check_environment(verbose: bool = True) -> EnvReport:
    """Check packages, device and data files; print an OK/FAIL table and return the report."""
    rep = EnvReport(packages=[_check_requirement(r) for r in _requirements()], device=detect_device())
    try:
        d = paths.data_dir()
        rep.data_dir = str(d)
        rep.data = verify_manifest(d)
    except CourseError as e:
        rep.data_dir = str(e).splitlines()[0]
    if verbose:
        print(rep)
    return rep
