"""Describe a LoRA and tell which base model it was made for (SD1.x / SD2.x / SDXL / course model)."""

from __future__ import annotations

from .formats import Lora, read_lora

_WIDTHS = {  # (text-encoder width, cross-attention width) -> base
    768: "SD1.x", 1024: "SD2.x", 2048: "SDXL", 32: "course model",
}


def detect_base(lora) -> tuple[str, list[str]]:
    """``(base, evidence)`` with base one of SD1.x, SD2.x, SDXL, course model, unknown.

    The tensors decide when they can, since metadata is only text; metadata
    (``ss_base_model_version``, ``modelspec.architecture``) decides otherwise. Shape evidence: text-encoder width (768 / 1024 / 768+1280 / 32), cross-attention width (the
    ``attn2.to_k`` input: 768 / 1024 / 2048 / 32), key prefixes and SGM block names.
    """
    lo = read_lora(lora, unsupported="ignore")
    ev: list[str] = []
    votes: dict[str, int] = {}       # from the tensors themselves
    meta_votes: dict[str, int] = {}  # from what the file says about itself

    def vote(base, why, w=1):
        target = meta_votes if why.startswith("metadata") else votes
        target[base] = target.get(base, 0) + w
        ev.append(why)

    meta = lo.metadata
    v = meta.get("ss_base_model_version", "")
    if v:
        vote("SDXL" if v.startswith("sdxl") else "SD2.x" if v.startswith("sd_v2") else
             "course model" if "course" in v else "SD1.x", f"metadata ss_base_model_version={v}", 1)
    arch = meta.get("modelspec.architecture", "")
    if arch:
        vote("SDXL" if "-xl" in arch else "SD2.x" if "-v2" in arch else "course model" if "course" in arch
             else "SD1.x", f"metadata modelspec.architecture={arch}", 1)
    comps = lo.components()
    if "text_encoder_2" in comps:
        vote("SDXL", "two text encoders (lora_te1_/lora_te2_)", 2)
    if any(m.path.startswith(("input_blocks", "middle_block", "output_blocks")) for m in lo):
        vote("SDXL", "SGM/LDM block names (input_blocks…), as kohya writes SDXL UNets", 2)
    te = [m for m in lo if m.component == "text_encoder" and m.path.endswith("q_proj")]
    if te:
        w = int(te[0].down.shape[1])
        if w in _WIDTHS and w != 2048:  # 768 is also SDXL's first encoder: weaker evidence
            vote(_WIDTHS[w], f"text-encoder width {w}", 1 if w == 768 else 2)
    x = [m for m in lo if m.component == "unet" and m.path.endswith("attn2.to_k")]
    if x:
        w = int(x[0].down.shape[1])
        if w in _WIDTHS:
            vote(_WIDTHS[w], f"cross-attention width {w} (attn2.to_k input)", 3)
        else:
            ev.append(f"cross-attention width {w} (matches no known base)")
    pin = [m for m in lo if m.component == "unet" and m.path.endswith("proj_in")]
    if pin:
        ev.append(f"proj_in LoRA is {pin[0].down.ndim}-D ({'1x1 conv: SD1 layout' if pin[0].down.ndim == 4 else 'linear: SD2/SDXL/diffusers layout'})")
    ev.sort(key=lambda e: e.startswith("metadata"))  # physical evidence first
    if votes:  # shapes decide; metadata can be wrong (it is only text)
        best = max(votes, key=votes.get)
        if meta_votes and best not in meta_votes:
            ev.append(f"note: the metadata says {max(meta_votes, key=meta_votes.get)}, the tensor shapes say {best}")
        return best, ev
    if meta_votes:
        return max(meta_votes, key=meta_votes.get), ev
    return "unknown", ev or ["no metadata and no attention layers to measure"]


def describe(lora) -> dict:
    """Ranks, alphas, module counts by component and kind, parameters and bytes, metadata highlights, base."""
    lo: Lora = read_lora(lora, unsupported="ignore")
    kinds: dict[str, int] = {}
    for m in lo:
        kinds[m.kind] = kinds.get(m.kind, 0) + 1
    base, evidence = detect_base(lo)
    meta = lo.metadata
    keep = ("ss_base_model_version", "ss_network_module", "ss_network_dim", "ss_network_alpha", "ss_output_name",
            "ss_steps", "ss_learning_rate", "ss_num_train_images", "ss_resolution", "ss_sd_model_name",
            "modelspec.architecture", "modelspec.title", "modelspec.trigger_phrase", "modelspec.license",
            "sshs_model_hash")
    return {
        "format": lo.format, "modules": len(lo), "components": lo.components(), "kinds": kinds,
        "ranks": lo.ranks, "alphas": lo.alphas, "scales": sorted({round(m.scale, 4) for m in lo}),
        "parameters": lo.num_params(),
        "bytes": sum(m.down.numel() * m.down.element_size() + m.up.numel() * m.up.element_size() for m in lo),
        "base": base, "evidence": evidence,
        "trigger_words": [w.strip() for w in meta.get("modelspec.trigger_phrase", "").split(",") if w.strip()],
        "metadata": {k: meta[k] for k in keep if k in meta},
    }


def format_description(d: dict) -> str:
    rows = [("format", d["format"]), ("modules", f"{d['modules']} {d['components']}"), ("kinds", str(d["kinds"])),
            ("rank(s)", str(d["ranks"])), ("alpha(s)", str(d["alphas"])), ("scale alpha/rank", str(d["scales"])),
            ("parameters", f"{d['parameters']:,} ({d['bytes'] / 1e6:.2f} MB as stored)"),
            ("made for", f"{d['base']}  ({'; '.join(d['evidence'][:3])})")]
    if d["trigger_words"]:
        rows.append(("trigger words", ", ".join(d["trigger_words"])))
    rows += [(k, v) for k, v in d["metadata"].items()]
    w = max(len(r[0]) for r in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)
