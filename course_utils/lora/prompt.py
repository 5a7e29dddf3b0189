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
