"""Static pickle scanning: list what a pickle would import, without ever running it.

A pickle is a small program: ``GLOBAL``/``STACK_GLOBAL``/``INST`` import any attribute of any
module and ``REDUCE`` calls it. ``scan_pickle`` walks the opcodes with :mod:`pickletools`
(over every pickle in a torch zip archive, a legacy torch stream or a bare pickle, protocols
0–5, continuing past broken bytes) and judges the imported globals:

- **dangerous**: a module or function on the deny list (the kinds picklescan, modelscan and
  fickling flag: ``os``, ``subprocess``, ``builtins.eval``, ``runpy``, ``socket``, …), or a
  ``STACK_GLOBAL`` whose name is computed rather than a plain string;
- **suspicious**: anything not on the allow list of what torch/numpy checkpoints need, or a
  stream that could not be parsed to the end;
- **safe**: only allow-listed globals.
"""

from __future__ import annotations

import io
import os
import pickletools
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

# What plain torch / numpy / Lightning-style checkpoints legitimately import.
SAFE_GLOBALS: set[str] = {
    "collections.OrderedDict", "collections.defaultdict", "builtins.set", "builtins.frozenset",
    "builtins.bytearray", "builtins.complex", "builtins.slice", "_codecs.encode",
    "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
    "torch._utils._rebuild_qtensor", "torch._utils._rebuild_sparse_tensor",
    "torch._utils._rebuild_meta_tensor_no_storage", "torch._tensor._rebuild_from_type_v2",
    "torch.Size", "torch.device", "torch.Tensor", "torch.nn.parameter.Parameter",
    "torch.serialization._get_layout", "torch.per_tensor_affine",
    "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.dtype",
    "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct", "numpy.ndarray",
    "numpy.dtypes.Float64DType", "numpy.dtypes.Float32DType", "numpy.dtypes.Int64DType",
    "numpy.dtypes.Int32DType", "numpy.dtypes.BoolDType",
}
SAFE_PREFIXES = ("torch.", )  # storages and dtypes: torch.FloatStorage, torch.float16, …
_SAFE_TORCH_SUFFIXES = ("Storage", "float16", "float32", "float64", "bfloat16", "int8", "int16", "int32",
                        "int64", "uint8", "bool", "complex64", "complex128", "half", "float", "double", "long")

DANGEROUS_MODULES: set[str] = {
    "os", "posix", "nt", "subprocess", "sys", "runpy", "socket", "shutil", "webbrowser", "importlib",
    "pty", "pickle", "_pickle", "marshal", "types", "ctypes", "code", "codeop", "bdb", "pdb", "asyncio",
    "multiprocessing", "requests", "urllib", "urllib2", "http", "httplib", "aiohttp", "ftplib", "smtplib",
    "telnetlib", "platform", "signal", "pip", "setuptools", "distutils", "commands", "cProfile",
    "profile", "timeit", "pkgutil", "zipimport", "threading", "_thread", "tempfile", "glob", "io",
    "operator", "functools", "dill", "joblib", "numpy.f2py", "numpy.testing", "torch.hub", "torch.jit",
    "torch._dynamo", "torch._inductor", "torch.utils.cpp_extension", "builtins.getattr",
}
DANGEROUS_BUILTINS: set[str] = {
    "eval", "exec", "compile", "open", "getattr", "setattr", "delattr", "__import__", "apply",
    "breakpoint", "globals", "locals", "vars", "input", "memoryview", "help", "exit", "quit", "print",
    "__builtins__", "execfile", "reload", "file",
}
DANGEROUS_GLOBALS: set[str] = {"torch.load", "torch.save", "torch.serialization.load", "numpy.load"}


@dataclass
class ScanResult:
    verdict: str                                   # "safe" | "suspicious" | "dangerous"
    globals: list[str] = field(default_factory=list)
    dangerous: list[str] = field(default_factory=list)
    suspicious: list[str] = field(default_factory=list)
    pickles: list[str] = field(default_factory=list)  # which streams were scanned
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"verdict": self.verdict, "globals": self.globals, "dangerous": self.dangerous,
                "suspicious": self.suspicious, "pickles": self.pickles, "notes": self.notes}

    def __str__(self) -> str:
        lines = [f"verdict: {self.verdict.upper()}  ({len(self.pickles)} pickle stream(s) scanned)"]
        for g in self.globals:
            tag = "DANGEROUS" if g in self.dangerous else ("suspicious" if g in self.suspicious else "ok")
            lines.append(f"  {tag:<10} {g}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def classify_global(name: str) -> str:
    """'safe', 'suspicious' or 'dangerous' for one ``module.attr`` a pickle imports."""
    module, _, attr = name.rpartition(".")
    if name in DANGEROUS_GLOBALS or name in DANGEROUS_MODULES:
        return "dangerous"
    if module in ("builtins", "__builtin__", "__builtins__") and attr in DANGEROUS_BUILTINS:
        return "dangerous"
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        if ".".join(parts[:i]) in DANGEROUS_MODULES:
            return "dangerous"
    if name in SAFE_GLOBALS:
        return "safe"
    if module == "torch" and attr.endswith(_SAFE_TORCH_SUFFIXES):
        return "safe"
    return "suspicious"


_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING",
               "SHORT_BINSTRING"}


def _scan_stream(data: bytes, start: int = 0) -> tuple[list[str], list[str], int, str | None]:
    """Globals imported by ONE pickle starting at ``start``: (globals, computed_names, end, error)."""
    found, computed = [], []
    stack: list[object] = []   # approximate: strings we can follow, None for anything else
    memo: dict[int, object] = {}
    end, err = start, None
    f = io.BytesIO(data)
    f.seek(start)
    try:
        for op, arg, pos in pickletools.genops(f):
            name = op.name
            end = f.tell()
            if name in ("GLOBAL", "INST"):
                mod, _, attr = str(arg).partition(" ")
                found.append(f"{mod}.{attr}")
                stack.append(None)
            elif name == "STACK_GLOBAL":
                attr = stack.pop() if stack else None
                mod = stack.pop() if stack else None
                if isinstance(mod, str) and isinstance(attr, str):
                    found.append(f"{mod}.{attr}")
                else:
                    computed.append(f"STACK_GLOBAL with a computed name (module={mod!r}, name={attr!r})")
                stack.append(None)
            elif name in _STRING_OPS:
                stack.append(arg if isinstance(arg, str) else (arg.decode("utf-8", "replace") if isinstance(arg, bytes) else None))
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1] if stack else None
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[int(arg)] = stack[-1] if stack else None
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo.get(int(arg)))
            elif name == "STOP":
                return found, computed, end, None
            elif name in ("PROTO", "FRAME", "MARK", "POP", "POP_MARK", "BUILD", "SETITEM", "SETITEMS",
                          "APPEND", "APPENDS", "ADDITEMS"):
                pass
            else:
                stack.append(None)
    except Exception as e:  # broken or truncated stream: keep what was found (nullifAI lesson)
        err = f"{type(e).__name__}: {e}"
        end = max(end, f.tell())
    if err is None:
        err = "stream ended without STOP (truncated)"
    return found, computed, end, err


def _legacy_magic(data: bytes) -> bool:
    return data[:2] == b"\x80\x02" and data[2:4] == b"\x8a\x0a" and data[4:14] == b"l\xfc\x9cF\xf9 j\xa8P\x19"


def scan_bytes(data: bytes, label: str = "pickle", max_streams: int = 8) -> ScanResult:
    """Scan consecutive pickles in ``data`` (a bare pickle or a legacy torch stream)."""
    res = ScanResult("safe")
    pos, n = 0, 0
    legacy = _legacy_magic(data)
    while pos < len(data) and n < max_streams:
        found, computed, end, err = _scan_stream(data, pos)
        res.pickles.append(f"{label}[{n}]@{pos}")
        res.globals += [g for g in found if g not in res.globals]
        res.dangerous += computed
        n += 1
        if err:
            if n == 1 or not legacy:
                res.notes.append(f"{label}: could not parse the whole stream at byte {end}: {err}")
            break
        pos = end
        if legacy and n >= 5:  # magic, protocol, sys_info, object, storage keys; then raw tensor bytes
            break
        if not legacy and pos < len(data) and data[pos:pos + 1] not in (b"\x80", b"(", b"c", b"}", b"]", b"I", b"N"):
            res.notes.append(f"{label}: {len(data) - pos} trailing bytes after the pickle")
            break
    return res


def _finish(res: ScanResult) -> ScanResult:
    for g in res.globals:
        c = classify_global(g)
        if c == "dangerous" and g not in res.dangerous:
            res.dangerous.append(g)
        elif c == "suspicious":
            res.suspicious.append(g)
    if res.dangerous:
        res.verdict = "dangerous"
    elif res.suspicious or res.notes:
        res.verdict = "suspicious"
    else:
        res.verdict = "safe"
    return res


def scan_pickle(path: str | os.PathLike) -> ScanResult:
    """Statically scan a ``.pt/.pth/.ckpt/.bin/.pkl`` file; never unpickles anything."""
    path = Path(path)
    data = path.read_bytes()
    if data[:4] == b"PK\x03\x04" or zipfile.is_zipfile(io.BytesIO(data)):
        res = ScanResult("safe")
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
            names = [n for n in zf.namelist() if n.endswith(".pkl")]
            if not names:
                res.notes.append("zip archive without any .pkl member: not a torch checkpoint")
            for n in names:
                try:
                    sub = scan_bytes(zf.read(n), n)
                except (zipfile.BadZipFile, OSError, EOFError) as e:  # corrupt member: scan what we can
                    res.notes.append(f"{n}: cannot be read from the zip ({e})")
                    continue
                res.pickles += sub.pickles
                res.globals += [g for g in sub.globals if g not in res.globals]
                res.dangerous += sub.dangerous
                res.notes += sub.notes
        except zipfile.BadZipFile as e:
            res.notes.append(f"broken zip archive ({e}); scanning the raw bytes instead")
            sub = scan_bytes(data, path.name)
            res.pickles, res.globals, res.dangerous = sub.pickles, sub.globals, sub.dangerous
        return _finish(res)
    return _finish(scan_bytes(data, path.name))
