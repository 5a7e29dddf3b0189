"""``python -m course_utils``: inspect, scan, convert and hash weight files from a terminal.

Exit codes: 0 ok (or scan verdict safe), 1 scan verdict dangerous or suspicious, 2 error (one
line on stderr, no traceback). ``--json`` prints machine-readable output with stable keys.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__
from .errors import CourseError


def _print(obj, as_json: bool) -> None:
    if as_json:
        print(json.dumps(obj if isinstance(obj, dict) else obj.as_dict(), indent=2, sort_keys=True, default=str))
    else:
        print(obj)


def _inspect(a) -> int:
    from .weights import inspect

    _print(inspect(a.file), a.json)
    return 0


def _scan(a) -> int:
    from .safety import scan_pickle
    from .weights import detect_format

    fi = detect_format(a.file)
    if fi.format == "safetensors":
        res = {"verdict": "safe", "globals": [], "dangerous": [], "suspicious": [], "pickles": [],
               "notes": ["safetensors holds no code: nothing to scan"]}
        _print(res if a.json else "verdict: SAFE  (safetensors holds no code)", a.json)
        return 0
    if fi.format not in ("torch-zip", "torch-legacy", "pickle", "zip"):
        raise CourseError(f"{a.file} is not a pickle-based file: it is {fi.description}.")
    res = scan_pickle(a.file)
    _print(res, a.json)
    return 0 if res.verdict == "safe" else 1


def _convert(a) -> int:
    from .weights import convert_to_safetensors

    out = convert_to_safetensors(a.src, a.dst, dtype=a.dtype, overwrite=a.overwrite)
    _print({"output": str(out)} if a.json else f"wrote {out}", a.json)
    return 0


def _hash(a) -> int:
    from .hashes import file_hashes

    h = file_hashes(a.file)
    _print(h.as_dict() if a.json else str(h), a.json)
    return 0


def _diagnose(a) -> int:
    from .diagnose import diagnose

    rep = diagnose(a.file, base=a.base, verbose=not a.json)
    if a.json:
        _print(rep.as_dict(), True)
    return 0 if rep.ok else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m course_utils", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"course_utils {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, fn, help_ in [("inspect", _inspect, "format, tensors, parameters, dtypes, metadata"),
                            ("scan", _scan, "static pickle scan: safe / suspicious / dangerous"),
                            ("hash", _hash, "SHA-256, AutoV1, AutoV2, AutoV3 (as Civitai and A1111 show them)")]:
        s = sub.add_parser(name, help=help_)
        s.add_argument("file")
        s.add_argument("--json", action="store_true")
        s.set_defaults(fn=fn)
    s = sub.add_parser("convert", help="any weights file -> .safetensors (safe load, atomic write)")
    s.add_argument("src")
    s.add_argument("dst")
    s.add_argument("--dtype", choices=["fp16", "bf16", "fp32"], default=None)
    s.add_argument("--overwrite", action="store_true")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=_convert)
    s = sub.add_parser("diagnose", help="why won't this LoRA / checkpoint load? one verdict with the fix")
    s.add_argument("file")
    s.add_argument("--base", default=None, help="the base model: a diffusers folder or a weights file")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=_diagnose)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except CourseError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        print(f"error: {type(e).__name__}: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
