"""Low-rank algebra on LoRAs: extract a LoRA from a fine-tune, and resize a LoRA's rank.

Both rest on Eckart–Young (notebook 01): the best rank-r approximation of ΔW keeps its top r
singular values, and the error is the dropped tail.
"""

from __future__ import annotations

import torch

from ..errors import CourseError
from .formats import Lora, LoraModule, canonical_name, read_lora
from .merge import _components, _param_lookup


def _split_svd(mat: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(up [out, r], down [r, in], relative Frobenius error) of the best rank-r factorisation."""
    U, S, Vh = torch.linalg.svd(mat, full_matrices=False)
    r = min(rank, S.numel())
    total = float((S ** 2).sum())
    err = float((S[r:] ** 2).sum() / total) ** 0.5 if total > 0 else 0.0
    return U[:, :r] * S[:r], Vh[:r], err


def extract_lora(base, tuned, rank: int = 8, targets: tuple[str, ...] | None = None,
                 min_change: float = 1e-7) -> tuple[Lora, dict[str, float]]:
    """A LoRA approximating ``tuned − base`` with rank ``rank`` per module (kohya's ``extract_lora_from_models``).

    ``base``/``tuned`` are pipelines, modules or state dicts with the same names. Every 2-D
    (Linear) and 4-D (Conv) weight that changed (relative change > ``min_change``) and whose name
    ends with one of ``targets`` (all, if None) becomes a module with ``up = U·S``, ``down = Vᵀ``
    and alpha = rank (scale 1). Returns the LoRA and each module's relative error
    ‖ΔW − up·down‖ / ‖ΔW‖.
    """
    cb, ct = _components(base), _components(tuned)
    lora, errors = Lora(format="extracted"), {}
    for comp, bmod in cb.items():
        if comp not in ct:
            continue
        bp, tp = _param_lookup(bmod), _param_lookup(ct[comp])
        for pname, w0 in bp.items():
            if not pname.endswith(".weight") or w0.ndim not in (2, 4) or pname not in tp:
                continue
            path = pname[: -len(".weight")]
            if targets is not None and not any(path == t or path.endswith("." + t) for t in targets):
                continue
            w1 = tp[pname]
            if w1.shape != w0.shape:
                raise CourseError(f"{comp}.{pname}: base {tuple(w0.shape)} vs tuned {tuple(w1.shape)}: not the same architecture.")
            delta = (w1.detach().float() - w0.detach().float())
            norm0 = float(w0.detach().float().norm())
            if float(delta.norm()) <= min_change * max(norm0, 1e-12):
                continue
            mat = delta.reshape(delta.shape[0], -1)
            up, down, err = _split_svd(mat, rank)
            r = down.shape[0]
            if delta.ndim == 4:
                down = down.reshape(r, *delta.shape[1:])
                up = up.reshape(delta.shape[0], r, 1, 1)
            name = canonical_name(comp, path)
            lora.modules[name] = LoraModule(name, down.contiguous(), up.contiguous(), float(r))
            errors[name] = err
    if not lora.modules:
        raise CourseError("No weights differ between base and tuned (or none match the targets): nothing to extract.")
    return lora, errors


def resize_lora(lora, new_rank: int) -> tuple[Lora, dict[str, float]]:
    """Change every module's rank to ``new_rank`` (or less, if the module is smaller), keeping the effect.

    ΔW = up·down is refactored with an SVD (via QR of the thin factors, so SD-sized layers cost
    little); alpha becomes old_alpha / old_rank × new_rank, so the scale alpha/rank — and thus
    what strength 1.0 means — is unchanged. Returns the new LoRA and each module's relative error.
    """
    lo = read_lora(lora)
    out, errors = Lora(metadata=dict(lo.metadata), format=lo.format, source=lo.source), {}
    for m in lo:
        up = m.up.float().reshape(m.up.shape[0], -1)
        down = m.down.float().reshape(m.rank, -1)
        qu, ru = torch.linalg.qr(up)                 # up = qu ru
        qd, rd = torch.linalg.qr(down.T)             # down = rd^T qd^T
        small_up, small_down, err = _split_svd(ru @ rd.T, new_rank)
        new_up, new_down = qu @ small_up, small_down @ qd.T
        r = new_down.shape[0]
        if m.down.ndim == 4:
            new_down = new_down.reshape(r, *m.down.shape[1:])
            new_up = new_up.reshape(m.up.shape[0], r, 1, 1)
        alpha = (float(m.alpha) if m.alpha else float(m.rank)) / m.rank * r
        out.modules[m.name] = LoraModule(m.name, new_down.to(m.down.dtype).contiguous(),
                                         new_up.to(m.up.dtype).contiguous(), alpha)
        errors[m.name] = err
    if out.metadata:
        out.metadata["ss_network_dim"] = str(max(x.rank for x in out))
        out.metadata["ss_network_alpha"] = str(max(float(x.alpha) for x in out))
        out.metadata.pop("sshs_model_hash", None)
        out.metadata.pop("sshs_legacy_hash", None)
    return out, errors


def lora_delta_error(a, b) -> dict[str, float]:
    """Per module ‖scale_a·ΔW_a − scale_b·ΔW_b‖ / ‖scale_a·ΔW_a‖ (how far ``b`` is from ``a``)."""
    la, lb = read_lora(a), read_lora(b)
    out = {}
    for name, m in la.modules.items():
        d = m.scale * m.delta()
        e = lb.modules[name].scale * lb.modules[name].delta() if name in lb.modules else torch.zeros_like(d)
        out[name] = float((d - e).norm() / max(float(d.norm()), 1e-12))
    return out
