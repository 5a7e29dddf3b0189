"""A1111 prompt syntax for LoRAs: ``<lora:name:multiplier>`` and friends."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import CourseError

_TAG = re.compile(r"<(lora|lyco):([^>]*)>", re.IGNORECASE)


@dataclass(frozen=True)
class LoraRef:
    name: str
    te: float = 1.0
    unet: float = 1.0


def parse_prompt(text: str) -> tuple[str, list[LoraRef]]:
    """Split ``"a red circle <lora:outline:0.8>"`` into the clean prompt and the LoRAs to apply.

    Follows A1111's extra-networks syntax: ``<lora:NAME>`` (strength 1), ``<lora:NAME:W>``,
    ``<lora:NAME:TE:UNET>``, named ``te=``/``unet=`` (which override positional values), and
    ``<lyco:…>`` as an alias. If ``unet`` is not given it equals ``te``.
    """
    refs: list[LoraRef] = []
    for m in _TAG.finditer(text):
        parts = [p.strip() for p in m.group(2).split(":")]
        name, args = parts[0], parts[1:]
        if not name:
            raise CourseError(f"{m.group(0)!r} has no LoRA name: write <lora:NAME:STRENGTH>.")
        pos, named = [], {}
        for a in args:
            if "=" in a:
                k, _, v = a.partition("=")
                named[k.strip().lower()] = v.strip()
            elif a:
                pos.append(a)
        try:
            te = float(named.get("te", pos[0] if pos else 1.0))
            unet = float(named.get("unet", pos[1] if len(pos) > 1 else te))
        except ValueError:
            raise CourseError(f"{m.group(0)!r}: strengths must be numbers, e.g. <lora:{name}:0.8> or "
                              f"<lora:{name}:te=0.5:unet=1>.") from None
        refs.append(LoraRef(name, te, unet))
    clean = re.sub(r"\s{2,}", " ", _TAG.sub("", text)).strip(" ,")
    return clean, refs


LORA_EXTENSIONS = (".safetensors", ".pt", ".ckpt")


def available_loras(lora_dir) -> dict[str, "Path"]:  # noqa: F821
    """LoRA files under ``lora_dir`` (searched recursively, as A1111 does), by name without extension."""
    from pathlib import Path

    root = Path(lora_dir)
    return {p.stem: p for p in sorted(root.rglob("*")) if p.suffix in LORA_EXTENSIONS and p.is_file()}


def resolve_prompt(text: str, lora_dir) -> tuple[str, list[tuple]]:
    """``"a red ring <lora:ring:0.8>"`` + a ``models/Lora`` folder → (clean prompt, [(path, te, unet), …]).

    A name that is not in the folder raises a ``CourseError`` listing the names that are (A1111
    only logs "couldn't find Lora with name …" and draws without it).
    """
    clean, refs = parse_prompt(text)
    found = available_loras(lora_dir)
    pairs = []
    for r in refs:
        if r.name not in found:
            names = ", ".join(found) or "(none)"
            raise CourseError(f"No LoRA named {r.name!r} in {lora_dir}. Available: {names}. The name is the file "
                              "name without its extension; put LoRA files in models/Lora and refresh.")
        pairs.append((found[r.name], r.te, r.unet))
    return clean, pairs
