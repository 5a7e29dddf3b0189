"""Merge LoRAs into a model's weights (and take them out again exactly), with a match report.

W ← W + Σ strength · (alpha / rank) · up @ down, computed in fp32 and cast back (fp16 matmuls
are very slow on CPUs). Text-encoder modules use the ``te`` strength and UNet modules the
``unet`` strength, as in A1111's ``<lora:name:te:unet>``. Like A1111, merging into a live model
keeps a backup of every weight it touches, so :func:`unmerge` restores the originals bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import torch

from ..errors import CourseError, LoraMismatchError
from .formats import Lora, LoraModule, _guess_component, read_lora

COMPONENTS = ("unet", "text_encoder", "text_encoder_2")


@dataclass
class MergeReport:
    """What a merge matched. ``backup`` holds the original weights for :func:`unmerge`."""

    matched: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)             # LoRA modules with no target
    shape_mismatches: list[tuple[str, tuple, tuple]] = field(default_factory=list)  # name, ΔW shape, W shape
    backup: dict = field(default_factory=dict, repr=False)          # (component, param name) -> tensor
    target: object = field(default=None, repr=False)

    def __str__(self) -> str:
        s = [f"matched {len(self.matched)} modules, unmatched {len(self.unmatched)}, "
             f"shape mismatches {len(self.shape_mismatches)}"]
        s += [f"  unmatched: {n}" for n in self.unmatched[:5]]
        s += [f"  shape mismatch: {n}: LoRA gives {a}, model has {b}" for n, a, b in self.shape_mismatches[:5]]
        return "\n".join(s)


def _components(base) -> dict[str, object]:
    """name -> nn.Module or state dict for a pipeline, a dict of modules, a module or a state dict."""
    if isinstance(base, torch.nn.Module):
        # CLIP text encoders: transformers >= 5.6 flattened them (no .text_model), so ask the config
        is_te = hasattr(base, "text_model") or "clip" in str(getattr(getattr(base, "config", None), "model_type", ""))
        return {"text_encoder": base} if is_te else {"unet": base}
    if isinstance(base, Mapping):
        if any(isinstance(v, torch.Tensor) for v in base.values()):
            comps: dict[str, dict] = {}
            for k, v in base.items():
                c, _, rest = k.partition(".")
                if c in COMPONENTS:
                    comps.setdefault(c, {})[rest] = v
                else:
                    comps.setdefault(_guess_component(k), {})[k] = v
            return comps
        return {k: v for k, v in base.items() if k in COMPONENTS}
    comps = {c: getattr(base, c) for c in COMPONENTS if getattr(base, c, None) is not None}
    if not comps:
        raise CourseError(f"Cannot merge into a {type(base).__name__}: pass a diffusers pipeline, a UNet / text "
                          "encoder module, or a state dict.")
    return comps


def _param_lookup(comp) -> dict[str, torch.Tensor]:
    if isinstance(comp, torch.nn.Module):
        return dict(comp.named_parameters())
    return dict(comp)


def _normalise_pairs(loras) -> list[tuple[Lora, float, float]]:
    if isinstance(loras, (Lora, str)) or hasattr(loras, "__fspath__") or isinstance(loras, Mapping):
        loras = [(loras, 1.0)]
    out = []
    for item in loras:
        if isinstance(item, tuple):
            lo, *w = item
            te = float(w[0]) if w else 1.0
            unet = float(w[1]) if len(w) > 1 else te
        else:
            lo, te, unet = item, 1.0, 1.0
        out.append((read_lora(lo), te, unet))
    return out


def _fits(m: LoraModule, shape: torch.Size) -> bool:
    """Can ΔW = up @ down be added to a weight of ``shape``? (No matmul needed to tell.)

    Allowed besides an exact match: a 1x1-conv LoRA on a Linear weight or the reverse (the SD1
    vs SD2/XL ``proj_in``/``proj_out`` difference, handled the same way by sd-scripts).
    """
    out_f, in_flat = m.up.shape[0], m.down[0].numel()
    return len(shape) in (2, 4) and shape[0] == out_f and shape.numel() == out_f * in_flat and (
        len(shape) == 2 or m.down.ndim == 2 or tuple(shape[1:]) == tuple(m.down.shape[1:]))


def _backup_of(p: torch.Tensor) -> torch.Tensor:
    """A copy of ``p``, reusing this parameter's previous backup buffer (as A1111 keeps one per weight)."""
    buf = getattr(p, "_course_backup", None)  # lives and dies with the parameter
    if buf is None or buf.shape != p.shape or buf.dtype != p.dtype:
        buf = torch.empty_like(p, requires_grad=False)
        p._course_backup = buf
    return buf.copy_(p.detach())


def merge(base, loras, te: float | None = None, unet: float | None = None, strict: bool = True,
          backup: bool = True) -> MergeReport:
    """Merge one or more LoRAs into ``base`` in place; returns a :class:`MergeReport` whose backup
    :func:`unmerge` uses.

    ``loras`` is a LoRA (path, state dict, :class:`Lora`) or a list of ``(lora, strength)`` /
    ``(lora, te_strength, unet_strength)``. ``te``/``unet`` override the strengths for every
    LoRA. A state-dict ``base`` is modified in place too (pass a copy to keep the original).
    With ``strict`` (default), a LoRA whose modules do not fit raises :class:`LoraMismatchError`
    naming the base the LoRA was made for. ``backup=False`` skips the copy that makes
    :func:`unmerge` exact (for a one-way merge, e.g. baking a LoRA into a new checkpoint).
    """
    comps = _components(base)
    params = {c: _param_lookup(m) for c, m in comps.items()}
    rep = MergeReport(target=base)
    pairs = _normalise_pairs(loras)
    plan = []
    for lo, te_w, unet_w in pairs:
        te_w = te if te is not None else te_w
        unet_w = unet if unet is not None else unet_w
        for m in lo:
            strength = unet_w if m.component == "unet" else te_w
            cparams = params.get(m.component, {})
            pname = m.path + ".weight"
            if pname not in cparams and m.path.startswith("text_model."):
                pname = m.path[len("text_model."):] + ".weight"  # flattened CLIPTextModel (transformers >= 5.6)
            p = cparams.get(pname)
            if p is None:
                rep.unmatched.append(m.name)
                continue
            if not _fits(m, p.shape):
                rep.shape_mismatches.append((m.name, (m.up.shape[0], *m.down.shape[1:]), tuple(p.shape)))
                continue
            plan.append((m, pname, p, strength))
    if strict and (rep.shape_mismatches or (not plan and len(rep.unmatched))):
        from .describe import detect_base

        lo = pairs[0][0]
        base_guess, evidence = detect_base(lo)
        what = (f"{len(rep.shape_mismatches)} modules have the wrong shape (e.g. {rep.shape_mismatches[0][0]}: "
                f"LoRA {rep.shape_mismatches[0][1]} vs model {rep.shape_mismatches[0][2]})"
                if rep.shape_mismatches else f"none of its {len(rep.unmatched)} modules exist in this model "
                f"(e.g. {rep.unmatched[0]})")
        raise LoraMismatchError(
            f"This LoRA does not fit this model: {what}. It looks made for {base_guess} "
            f"({'; '.join(evidence[:3])}). Use it with that base model, or pick a LoRA made for yours.")
    with torch.no_grad():
        for m, pname, p, strength in plan:
            key = (m.component, pname)
            if backup and key not in rep.backup:
                rep.backup[key] = _backup_of(p) if isinstance(p, torch.nn.Parameter) else p.detach().clone()
            rep.matched.append(m.name)
            if strength == 0:
                continue
            scale = strength * m.scale
            up = m.up.reshape(m.up.shape[0], -1).float()
            down = m.down.reshape(m.down.shape[0], -1).float()
            if p.dtype == torch.float32:
                p.view(p.shape[0], -1).addmm_(up, down, alpha=scale)   # in place: no ΔW materialised
            else:
                w = p.float().view(p.shape[0], -1).addmm_(up, down, alpha=scale)
                p.copy_(w.view(p.shape).to(p.dtype))
    return rep


def unmerge(base, report: MergeReport) -> None:
    """Restore every weight a :func:`merge` changed, exactly (from the backup it kept)."""
    if report is None:
        return
    comps = _components(base)
    with torch.no_grad():
        for (c, name), orig in report.backup.items():
            p = _param_lookup(comps[c])[name]
            p.copy_(orig)
    report.backup.clear()


def merged_state_dict(base_sd: Mapping[str, torch.Tensor], loras, **kw) -> tuple[dict, MergeReport]:
    """Merge into a copy of a state dict; the input is left untouched. Returns (new_sd, report)."""
    new = {k: v.clone() for k, v in base_sd.items()}
    rep = merge(new, loras, **kw)
    rep.backup.clear()
    return new, rep
