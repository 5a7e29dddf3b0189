"""File hashes as model sites and UIs show them (Civitai, A1111, kohya sd-scripts).

- ``sha256``: the whole file.
- ``autov2``: first 10 hex of the full SHA-256 (A1111's checkpoint "shorthash", Civitai AutoV2).
- ``autov1``: first 8 hex of the SHA-256 of the 64 KiB at offset 1 MiB (A1111's old
  ``model_hash``; Civitai AutoV1; undefined for files under 2 MiB, shown as ``None``).
- ``autov3`` (safetensors only): SHA-256 of every byte after the header, i.e. kohya's
  ``sshs_model_hash`` / A1111's "addnet" LoRA hash; UIs show its first 12 hex.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import asdict, dataclass
from pathlib import Path

_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileHashes:
    sha256: str
    autov2: str
    autov1: str | None
    autov3: str | None  # full hex; UIs show autov3[:12]

    def as_dict(self) -> dict:
        d = asdict(self)
        d["autov3_short"] = self.autov3[:12] if self.autov3 else None
        return d

    def __str__(self) -> str:
        return "\n".join([f"SHA256  {self.sha256}", f"AutoV2  {self.autov2}",
                          f"AutoV1  {self.autov1 or '(file under 2 MiB: none)'}",
                          f"AutoV3  {self.autov3[:12] if self.autov3 else '(not a safetensors file)'}"])


def _safetensors_data_offset(path: Path) -> int | None:
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return None
    (n,) = struct.unpack("<Q", head[:8])
    if n > os.path.getsize(path) - 8:
        return None
    return 8 + n


def file_hashes(path: str | os.PathLike, progress: bool | None = None) -> FileHashes:
    """All four hashes in one pass over the file (a progress bar for files over 64 MiB)."""
    path = Path(path)
    size = path.stat().st_size
    data_off = _safetensors_data_offset(path)
    full, tensors = hashlib.sha256(), hashlib.sha256() if data_off is not None else None
    show = size > 64 * _CHUNK if progress is None else progress
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=size, unit="B", unit_scale=True, desc=f"hashing {path.name}")
    pos = 0
    with open(path, "rb") as f:
        while block := f.read(_CHUNK * 8):
            full.update(block)
            if tensors is not None and pos + len(block) > data_off:
                tensors.update(block[max(0, data_off - pos):])
            pos += len(block)
            if bar:
                bar.update(len(block))
        autov1 = None
        if size >= 2 * _CHUNK:
            f.seek(0x100000)
            autov1 = hashlib.sha256(f.read(0x10000)).hexdigest()[:8]
    if bar:
        bar.close()
    digest = full.hexdigest()
    return FileHashes(digest, digest[:10], autov1, tensors.hexdigest() if tensors is not None else None)


def safetensors_data_hash(tensors: dict, metadata: dict | None = None) -> str:
    """kohya's ``sshs_model_hash`` for tensors about to be saved: SHA-256 of the data section.

    The data section does not depend on the header's metadata, so this equals the AutoV3 of
    the file later written with any metadata.
    """
    from safetensors.torch import save

    blob = save(tensors, metadata={k: str(v) for k, v in (metadata or {}).items()})
    (n,) = struct.unpack("<Q", blob[:8])
    return hashlib.sha256(blob[8 + n:]).hexdigest()
