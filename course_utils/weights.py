"""Weight files: detect the format by content, read safetensors headers, load safely, convert, inspect.

Safety rules kept everywhere here: pickles are only ever opened with
``torch.load(..., weights_only=True)`` (never a fallback to unsafe loading), input files are
never modified, and outputs are written to a temporary file and renamed into place.
"""

from __future__ import annotations

import functools
import io
import json
import math
import os
import pickle
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .errors import CourseError, FormatError, UnsafeFileError

SAFETENSORS_DTYPES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
    "U16": 2, "U32": 4, "U64": 8, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "C64": 8,
}
MAX_HEADER = 100_000_000  # safetensors' own limit
PICKLE_EXTS = (".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle")

# --------------------------------------------------------------------------- format detection

FORMAT_NAMES = {
    "safetensors": "safetensors (header + raw tensor bytes; cannot run code)",
    "torch-zip": "PyTorch zip archive (torch.save, a pickle inside a zip: .pt/.pth/.ckpt/.bin)",
    "torch-legacy": "legacy PyTorch pickle stream (torch.save before 1.6)",
    "pickle": "bare Python pickle (not a torch checkpoint)",
    "zip": "zip archive that is not a PyTorch checkpoint",
    "lfs-pointer": "git-LFS pointer file (a 130-byte text stub, not the weights)",
    "html": "HTML page (an error or login page saved under a model's name)",
    "json": "JSON text (an API error message or a config file, not weights)",
    "text": "plain text, not weights",
    "empty": "empty file (0 bytes)",
    "truncated": "truncated file (the download stopped early)",
    "unknown": "unrecognised binary data",
}
_EXPECTED_EXT = {"safetensors": (".safetensors",), "torch-zip": PICKLE_EXTS, "torch-legacy": PICKLE_EXTS,
                 "pickle": PICKLE_EXTS}


@dataclass
class FormatInfo:
    format: str
    path: str
    size: int
    detail: str = ""
    extension_ok: bool = True
    advice: str = ""

    @property
    def description(self) -> str:
        return FORMAT_NAMES.get(self.format, self.format)

    def __str__(self) -> str:
        s = f"{Path(self.path).name}: {self.description}"
        if self.detail:
            s += f"; {self.detail}"
        if not self.extension_ok:
            s += f"\n  note: the extension {Path(self.path).suffix or '(none)'} does not match the content"
        if self.advice:
            s += f"\n  what to do: {self.advice}"
        return s


def _legacy_torch_magic(head: bytes) -> bool:
    return head[:2] == b"\x80\x02" and head[2:4] == b"\x8a\x0a" and head[4:14] == b"l\xfc\x9cF\xf9 j\xa8P\x19"


def detect_format(path: str | os.PathLike) -> FormatInfo:
    """What a file really is, judged by its bytes, not its name."""
    path = Path(path)
    if not path.exists():
        raise CourseError(f"No file at {path}. Check the path and the folder (see notebook 04 for where tools expect files).")
    if path.is_dir():
        raise CourseError(f"{path} is a folder. Pass a file (a diffusers model folder is loaded with load_pipeline or from_pretrained).")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(4096)
    ext = path.suffix.lower()

    def info(fmt, detail="", advice=""):
        exp = _EXPECTED_EXT.get(fmt)
        ok = exp is None or ext in exp
        if not ok and not advice:
            advice = (f"it is really a {fmt} file; rename it to {exp[0]}" if fmt == "safetensors"
                      else "it is really a pickle-based PyTorch file: treat it as untrusted (scan it) and convert it to .safetensors")
        return FormatInfo(fmt, str(path), size, detail, ok, advice)

    if size == 0:
        return info("empty", advice="download the file again")
    if size >= 9 and head[8:9] == b"{":
        (n,) = struct.unpack("<Q", head[:8])
        if 2 <= n <= MAX_HEADER:
            if n > size - 8:
                return info("truncated", f"safetensors header says {n:,} header bytes but the file has {size:,} bytes",
                            "download the file again and compare its SHA-256 with the one the site shows")
            try:
                read_safetensors_header(path)
            except FormatError as e:
                if "truncated" in str(e):
                    return info("truncated", "a safetensors file whose tensor data stops early",
                                "download the file again and compare its SHA-256 with the one the site shows")
                return info("safetensors", f"CORRUPT: {str(e).split(': ', 1)[-1]}", "download the file again")
            return info("safetensors")
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile:
            return info("truncated", "a zip archive (PyTorch format) whose directory at the end is missing",
                        "download the file again and compare its SHA-256 with the one the site shows")
        if any(n.endswith("data.pkl") for n in names):
            return info("torch-zip", f"{len(names)} archive members")
        return info("zip", f"members: {', '.join(names[:5])}")
    if head.startswith(b"version https://git-lfs"):
        return info("lfs-pointer", head[:200].decode("utf-8", "replace").strip().replace("\n", " | "),
                    "the repository was cloned without Git LFS: run `git lfs install && git lfs pull`, or download the file itself")
    if _legacy_torch_magic(head):
        return info("torch-legacy")
    if head[:1] == b"\x80" and len(head) > 1 and 1 <= head[1] <= 5:
        return info("pickle", f"protocol {head[1]}")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    low = text[:200].lower()
    if low.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or (low.startswith(b"<") and b"html" in low):
        return info("html", text[:80].decode("utf-8", "replace").replace("\n", " "),
                    "the download saved a web page (login, error or 'file not found'); download the real file, logged in if needed")
    if text[:1] in (b"{", b"["):
        try:
            json.loads(path.read_bytes()[:1_000_000])
            return info("json", text[:100].decode("utf-8", "replace").replace("\n", " "),
                        "this is a text/JSON response, not weights; read it for the error message, then download again")
        except ValueError:
            pass
    if text[:1] in (b"(", b"c", b"}", b"]") and _looks_like_protocol0(head):
        return info("pickle", "protocol 0/1")
    try:
        head.decode("utf-8")
        return info("text", text[:60].decode("utf-8", "replace").replace("\n", " "), "this is not a weights file")
    except UnicodeDecodeError:
        return info("unknown", advice="check the source of the file; it matches no weights format")


def _looks_like_protocol0(head: bytes) -> bool:
    import pickletools

    try:
        for i, _ in enumerate(pickletools.genops(io.BytesIO(head))):
            if i > 3:
                return True
        return True
    except Exception:
        return False


# --------------------------------------------------------------------------- safetensors header

@dataclass
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    offsets: tuple[int, int]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.offsets[1] - self.offsets[0]


def read_safetensors_header(path: str | os.PathLike) -> tuple[dict[str, TensorInfo], dict[str, str], int]:
    """Parse and validate a safetensors header without reading tensor data (cached per file version).

    Returns ``(tensors, metadata, header_length)``. Every inconsistency (short file, header
    larger than the file, bad JSON or UTF-8, unknown dtype, offsets that overlap, leave gaps
    or run past the end, trailing bytes) raises :class:`FormatError` saying which.
    """
    path = Path(path)
    st = path.stat()
    tensors, meta, n = _read_header_cached(str(path.resolve()), st.st_size, st.st_mtime_ns)
    return dict(tensors), dict(meta), n


@functools.lru_cache(maxsize=64)
def _read_header_cached(path_str: str, size: int, mtime_ns: int):
    """The parse behind read_safetensors_header; the file's size and mtime are part of the key,
    so a changed file is parsed again."""
    path = Path(path_str)
    name = path.name
    if size < 8:
        raise FormatError(f"{name}: only {size} bytes; a safetensors file starts with an 8-byte header length. "
                          "The file is empty or the download stopped: download it again.")
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > MAX_HEADER:
            raise FormatError(f"{name}: header length {n:,} bytes is over the 100 MB safetensors limit: "
                              "this is not a safetensors file (check it with detect_format).")
        if n > size - 8:
            raise FormatError(f"{name}: header length {n:,} bytes but only {size - 8:,} bytes follow: the file is "
                              "truncated or not safetensors. Download it again and check its SHA-256.")
        raw = f.read(n)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(f"{name}: header is not valid UTF-8 (byte {e.start + 8}): the file is corrupt.") from None
    try:
        header = json.loads(text)
    except json.JSONDecodeError as e:
        raise FormatError(f"{name}: header is not valid JSON ({e.msg} at header byte {e.pos}): the file is corrupt.") from None
    if not isinstance(header, dict):
        raise FormatError(f"{name}: header is JSON but not an object: the file is corrupt.")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise FormatError(f"{name}: __metadata__ must map strings to strings.")
    meta = dict(sorted(meta.items()))  # the writer's order is arbitrary (a hash map in Rust)
    data_len = size - 8 - n
    tensors: dict[str, TensorInfo] = {}
    for key, ent in header.items():
        if type(ent) is not dict or "dtype" not in ent or "shape" not in ent or "data_offsets" not in ent:
            raise FormatError(f"{name}: entry {key!r} lacks dtype/shape/data_offsets.")
        dt, shape, offs = ent["dtype"], ent["shape"], ent["data_offsets"]
        isz = SAFETENSORS_DTYPES.get(dt) if type(dt) is str else None
        if isz is None:
            raise FormatError(f"{name}: tensor {key!r} has unknown dtype {dt!r}.")
        numel = 1
        if type(shape) is not list:
            raise FormatError(f"{name}: tensor {key!r} has an invalid shape {shape!r}.")
        for d in shape:
            if type(d) is not int or not 0 <= d < 2**40:
                raise FormatError(f"{name}: tensor {key!r} has an invalid shape {shape!r}.")
            numel *= d
        if (type(offs) is not list or len(offs) != 2 or type(offs[0]) is not int or type(offs[1]) is not int
                or not 0 <= offs[0] <= offs[1]):
            raise FormatError(f"{name}: tensor {key!r} has invalid data_offsets {offs!r}.")
        if offs[1] - offs[0] != numel * isz:
            raise FormatError(f"{name}: tensor {key!r} ({dt}, shape {shape}) needs {numel * isz:,} bytes but its offsets "
                              f"span {offs[1] - offs[0]:,}.")
        tensors[key] = TensorInfo(key, dt, tuple(shape), (offs[0], offs[1]))
    pos = 0
    for t in sorted(tensors.values(), key=lambda t: t.offsets):
        if t.offsets[0] != pos:
            kind = "overlaps the previous tensor" if t.offsets[0] < pos else f"leaves a gap of {t.offsets[0] - pos:,} bytes"
            raise FormatError(f"{name}: tensor {t.name!r} at data offset {t.offsets[0]:,} {kind}: the file is corrupt.")
        pos = t.offsets[1]
    if pos > data_len:
        raise FormatError(f"{name}: tensors need {pos:,} data bytes but the file holds {data_len:,}: the file is "
                          "truncated. Download it again and check its SHA-256.")
    if pos < data_len:
        raise FormatError(f"{name}: {data_len - pos:,} trailing bytes after the last tensor: the file is corrupt "
                          "or was appended to.")
    return tensors, meta, n


def read_safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file ({} for other formats)."""
    if detect_format(path).format != "safetensors":
        return {}
    return read_safetensors_header(path)[1]


# --------------------------------------------------------------------------- safe loading

def _refuse_pickle(path: Path, err: Exception | None) -> UnsafeFileError:
    from .safety import scan_pickle

    scan = scan_pickle(path)
    bad = scan.dangerous or scan.suspicious
    what = (f"its pickle imports {', '.join(bad[:6])}" if bad else
            "torch's weights-only loader refused an object in it")
    return UnsafeFileError(
        f"Refused to load {path.name}: {what} (scan verdict: {scan.verdict}). "
        "A weights file never needs these; loading it normally could run code on your machine. "
        "Do not use weights_only=False. Ask the author for a .safetensors file, or convert it inside "
        "a sandbox you trust (a throw-away VM or container) with convert_to_safetensors." +
        (f" [torch said: {_plain(str(err))[:300]}]" if err and not bad else ""))


def _plain(text: str) -> str:
    """One line, without terminal colour codes."""
    import re

    return " ".join(re.sub(r"\x1b\[[0-9;]*m", "", text).split())


def _unwrap(obj, name: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    elif isinstance(obj, dict) and isinstance(obj.get("model"), dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        obj = obj["model"]
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, dict):
        raise FormatError(f"{name} holds a {type(obj).__name__}, not a dict of tensors (a state dict).")
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise FormatError(f"{name} holds a dict with keys {list(obj)[:6]} but no tensors.")
    return tensors


def load_state_dict(path: str | os.PathLike, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Load the tensors of any weights file safely: safetensors via ``safetensors``, pickles only via
    ``torch.load(weights_only=True)``; a Lightning ``.ckpt`` is unwrapped to its ``state_dict``.

    Never falls back to unsafe loading: a pickle that needs more raises :class:`UnsafeFileError`
    naming what it imports.
    """
    path = Path(path)
    fi = detect_format(path)
    if fi.format == "safetensors":
        read_safetensors_header(path)  # validate first: clear errors for corrupt files
        from safetensors.torch import load_file

        return load_file(str(path), device=device)
    if fi.format in ("torch-zip", "torch-legacy"):
        try:
            with torch.serialization.safe_globals(_numpy_safe_globals()):
                obj = torch.load(path, map_location=device, weights_only=True)
        except pickle.UnpicklingError as e:
            raise _refuse_pickle(path, e) from None
        except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
            raise FormatError(f"{path.name}: cannot be read as a PyTorch checkpoint ({str(e).splitlines()[0][:200]}). "
                              "The file is probably corrupt or truncated: download it again.") from None
        return _unwrap(obj, path.name)
    if fi.format == "pickle":
        raise _refuse_pickle(path, None) if _scan_is_unsafe(path) else FormatError(
            f"{path.name} is a bare Python pickle, not a PyTorch checkpoint; course_utils does not unpickle "
            "arbitrary pickles. Ask for a .safetensors file.")
    raise FormatError(f"Cannot load {path.name}: it is {fi.description}." + (f" {fi.advice}" if fi.advice else ""))


def _numpy_safe_globals() -> list:
    """numpy scalars and dtypes, which Lightning checkpoints carry in their hyper-parameters.

    Rebuilding them calls no user code, so they are added to torch's weights-only allow list
    (as torch's own error message suggests); nothing else is.
    """
    import numpy as np

    try:
        scalar = np._core.multiarray.scalar
    except AttributeError:  # numpy < 2
        scalar = np.core.multiarray.scalar
    dtypes = [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")] if hasattr(np, "dtypes") else []
    return [scalar, np.dtype, *dtypes]


def _scan_is_unsafe(path: Path) -> bool:
    from .safety import scan_pickle

    return scan_pickle(path).verdict != "safe"


# --------------------------------------------------------------------------- inspect

@dataclass
class InspectReport:
    path: str
    format: str
    size: int
    tensors: int = 0
    parameters: int = 0
    dtypes: dict[str, int] = field(default_factory=dict)        # dtype -> tensor count
    dtype_bytes: dict[str, int] = field(default_factory=dict)   # dtype -> bytes
    metadata: dict[str, str] = field(default_factory=dict)
    top_level_keys: list[str] = field(default_factory=list)
    extension_ok: bool = True
    notes: list[str] = field(default_factory=list)
    lora: dict | None = None

    def as_dict(self) -> dict:
        return {"path": self.path, "format": self.format, "size": self.size, "tensors": self.tensors,
                "parameters": self.parameters, "dtypes": self.dtypes, "dtype_bytes": self.dtype_bytes,
                "metadata": self.metadata, "top_level_keys": self.top_level_keys,
                "extension_ok": self.extension_ok, "notes": self.notes, "lora": self.lora}

    def __str__(self) -> str:
        rows = [("file", Path(self.path).name), ("format", self.format), ("size", f"{self.size:,} bytes"),
                ("tensors", f"{self.tensors:,}"), ("parameters", f"{self.parameters:,}")]
        for dt, n in sorted(self.dtypes.items()):
            rows.append((f"dtype {dt}", f"{n} tensors, {self.dtype_bytes.get(dt, 0):,} bytes"))
        if self.top_level_keys:
            rows.append(("top-level keys", ", ".join(self.top_level_keys)))
        for k, v in list(self.metadata.items())[:12]:
            rows.append((f"meta {k}", (v[:60] + "…") if len(v) > 60 else v))
        if len(self.metadata) > 12:
            rows.append(("meta …", f"{len(self.metadata) - 12} more keys"))
        if self.lora:
            rows.append(("LoRA", f"{self.lora['modules']} modules, rank {self.lora['ranks']}, alpha {self.lora['alphas']}"))
        rows += [("note", n) for n in self.notes]
        w = max(len(r[0]) for r in rows)
        return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)


_TORCH_TO_ST = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
                torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
                torch.bool: "BOOL"}


def inspect(path: str | os.PathLike) -> InspectReport:
    """A report on any weights file. For safetensors only the header is read (constant cost)."""
    path = Path(path)
    fi = detect_format(path)
    rep = InspectReport(str(path), fi.format, fi.size, extension_ok=fi.extension_ok)
    if not fi.extension_ok:
        rep.notes.append(f"extension {path.suffix} does not match the content ({fi.format}): {fi.advice}")
    if fi.format == "safetensors":
        tensors, meta, _ = read_safetensors_header(path)
        rep.metadata = meta
        for t in tensors.values():
            rep.tensors += 1
            rep.parameters += t.numel
            rep.dtypes[t.dtype] = rep.dtypes.get(t.dtype, 0) + 1
            rep.dtype_bytes[t.dtype] = rep.dtype_bytes.get(t.dtype, 0) + t.nbytes
        if any(k.endswith(("lora_down.weight", "lora_A.weight", "lora.down.weight")) for k in tensors):
            rep.lora = _lora_summary(path)
        return rep
    if fi.format in ("torch-zip", "torch-legacy"):
        try:
            with torch.serialization.safe_globals(_numpy_safe_globals()):
                obj = torch.load(path, map_location="meta" if fi.format == "torch-zip" else "cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            raise _refuse_pickle(path, e) from None
        if isinstance(obj, dict):
            rep.top_level_keys = [str(k) for k in obj.keys()][:20] if "state_dict" in obj or not all(
                isinstance(v, torch.Tensor) for v in obj.values()) else []
        sd = _unwrap(obj, path.name)
        for t in sd.values():
            dt = _TORCH_TO_ST.get(t.dtype, str(t.dtype))
            rep.tensors += 1
            rep.parameters += t.numel()
            rep.dtypes[dt] = rep.dtypes.get(dt, 0) + 1
            rep.dtype_bytes[dt] = rep.dtype_bytes.get(dt, 0) + t.numel() * t.element_size()
        return rep
    raise FormatError(f"Cannot inspect {path.name}: it is {fi.description}." + (f" {fi.advice}" if fi.advice else ""))


def _lora_summary(path: Path) -> dict | None:
    try:
        from .lora import read_lora
        lo = read_lora(path, unsupported="ignore")
    except CourseError:
        return None
    return {"modules": len(lo), "ranks": lo.ranks, "alphas": lo.alphas, "components": lo.components(),
            "format": lo.format}


# --------------------------------------------------------------------------- convert

def convert_to_safetensors(src: str | os.PathLike, dst: str | os.PathLike, dtype: str | torch.dtype | None = None,
                           overwrite: bool = False) -> Path:
    """Safely load ``src`` (any supported format) and write ``dst`` as safetensors.

    Metadata records the source format and the original dtype(s). ``dtype`` ("fp16", "bf16",
    "fp32" or a torch dtype) casts floating tensors. Refuses to write over ``src``; writes
    atomically (temporary file, then rename).
    """
    src, dst = Path(src), Path(dst)
    if dst.resolve() == src.resolve():
        raise CourseError(f"Refusing to overwrite the input {src.name}: choose another output name.")
    if dst.exists() and not overwrite:
        raise CourseError(f"{dst} already exists; pass overwrite=True to replace it.")
    dtypes = {"fp16": torch.float16, "float16": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
              "fp32": torch.float32, "float32": torch.float32}
    if isinstance(dtype, str):
        if dtype not in dtypes:
            raise CourseError(f"Unknown dtype {dtype!r}: use one of fp16, bf16, fp32.")
        dtype = dtypes[dtype]
    fi = detect_format(src)
    sd = load_state_dict(src)
    orig = sorted({str(t.dtype).replace("torch.", "") for t in sd.values()})
    if dtype is not None:
        sd = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items()}
    # safetensors refuses tensors that share memory; give each its own storage
    sd = {k: v.detach().clone().contiguous() for k, v in sd.items()}
    meta = {"format": "pt", "converted_by": "course_utils", "source_format": fi.format,
            "source_file": src.name, "original_dtype": ",".join(orig)}
    if fi.format == "safetensors":
        meta = {**read_safetensors_header(src)[1], **meta}
    from .fileio import save_safetensors_atomic

    return save_safetensors_atomic(sd, dst, meta)


# --------------------------------------------------------------------------- install

UI_FOLDERS = {
    # AUTOMATIC1111 / Forge: modules/sd_models.py, sd_vae.py, extensions-builtin/Lora
    "a1111": {"checkpoint": "models/Stable-diffusion", "lora": "models/Lora", "vae": "models/VAE"},
    # ComfyUI: folder_paths.py
    "comfyui": {"checkpoint": "models/checkpoints", "lora": "models/loras", "vae": "models/vae"},
    # the seed article's own layout (§3): weights in models/, LoRA files in lora/
    "article": {"checkpoint": "models", "lora": "lora", "vae": "models"},
}


def guess_kind(path: str | os.PathLike) -> str:
    """'lora', 'vae' or 'checkpoint', from the tensor names (header only for safetensors)."""
    path = Path(path)
    fi = detect_format(path)
    if fi.format == "safetensors":
        keys = list(read_safetensors_header(path)[0])
    else:
        keys = list(load_state_dict(path).keys())
    if any(k.endswith(("lora_down.weight", "lora_A.weight", "lora.down.weight", "hada_w1_a", "lokr_w1")) for k in keys):
        return "lora"
    if keys and all(k.startswith(("encoder.", "decoder.", "quant_conv", "post_quant_conv", "first_stage_model."))
                    for k in keys):
        return "vae"
    return "checkpoint"


def install(path: str | os.PathLike, ui: str, root: str | os.PathLike, kind: str | None = None,
            overwrite: bool = False) -> Path:
    """Copy a checkpoint, VAE or LoRA to where ``ui`` (a1111, comfyui, article) looks for it under ``root``.

    The source is only read, never moved or changed. The copy is written atomically and its
    SHA-256 checked against the source's. Pickled files are scanned first and refused if
    dangerous; web pages, LFS pointers and other non-weights are refused with the fix.
    """
    from .hashes import file_hashes
    from .fileio import copy_atomic
    from .safety import scan_pickle

    src = Path(path)
    if ui not in UI_FOLDERS:
        raise CourseError(f"Unknown UI {ui!r}: choose one of {', '.join(UI_FOLDERS)}.")
    fi = detect_format(src)
    if fi.format not in ("safetensors", "torch-zip", "torch-legacy"):
        raise FormatError(f"Will not install {src.name}: it is {fi.description}." + (f" {fi.advice}" if fi.advice else ""))
    if fi.format != "safetensors":
        scan = scan_pickle(src)
        if scan.verdict == "dangerous":
            raise UnsafeFileError(f"Will not install {src.name}: its pickle imports {', '.join(scan.dangerous[:4])}. "
                                  "Ask for a .safetensors file.")
    kind = kind or guess_kind(src)
    if kind not in ("checkpoint", "lora", "vae"):
        raise CourseError(f"kind must be checkpoint, lora or vae, not {kind!r}.")
    name = src.name if fi.extension_ok else src.with_suffix(".safetensors" if fi.format == "safetensors" else src.suffix).name
    dst = Path(root) / UI_FOLDERS[ui][kind] / name
    if dst.resolve() == src.resolve():
        return dst
    want = file_hashes(src, progress=False).sha256
    if dst.exists():
        if file_hashes(dst, progress=False).sha256 == want:
            return dst
        if not overwrite:
            raise CourseError(f"{dst} already exists with different contents; pass overwrite=True to replace it.")
    copy_atomic(src, dst)
    got = file_hashes(dst, progress=False).sha256
    if got != want:
        dst.unlink()
        raise CourseError(f"The copy of {src.name} has SHA-256 {got[:12]}… but the source has {want[:12]}…: "
                          "the disk or the copy failed; try again.")
    return dst
