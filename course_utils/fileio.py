"""Atomic file writing: a temporary file in the same folder, then ``os.replace``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Mapping


def save_safetensors_atomic(tensors: Mapping, path: str | os.PathLike, metadata: Mapping | None = None) -> Path:
    """Write a safetensors file atomically (never a half-written file at ``path``)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(tmp),
                  metadata={str(k): str(v) for k, v in (metadata or {}).items()})
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def copy_atomic(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy ``src`` to ``dst`` via a temporary file and rename; ``src`` is only read."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dst
