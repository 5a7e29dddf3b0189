"""Low-rank linear algebra for notebook 01: truncated SVD, Eckart–Young, LoRA parameter counts."""

from __future__ import annotations

import torch
from torch import nn

from .errors import CourseError


def sample_image(size: int = 128) -> torch.Tensor:
    """A real grayscale photo (Grace Hopper, shipped inside matplotlib) as a float [H, W] in [0, 1].

    Nothing is downloaded: matplotlib carries this public-domain picture as sample data. The
    height is ``size``; the width keeps the aspect ratio.
    """
    import numpy as np
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        img = Image.open(f).convert("L")
        w, h = img.size
        img = img.resize((max(1, round(size * w / h)), size), Image.LANCZOS)
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)


def rank_k_approx(M: torch.Tensor, k: int) -> torch.Tensor:
    """The best rank-``k`` approximation of a 2-D matrix (Eckart–Young): keep the top ``k`` singular values."""
    if M.ndim != 2:
        raise CourseError(f"rank_k_approx needs a 2-D matrix, got shape {tuple(M.shape)}.")
    if not 0 <= k <= min(M.shape):
        raise CourseError(f"k must be between 0 and min(m, n) = {min(M.shape)}, got {k}.")
    U, S, Vh = torch.linalg.svd(M.to(torch.float64), full_matrices=False)
    return ((U[:, :k] * S[:k]) @ Vh[:k]).to(M.dtype)


def tail_energy(S: torch.Tensor, k: int) -> float:
    """Eckart–Young's prediction of the Frobenius error of the rank-``k`` truncation: sqrt(sum_{i>k} s_i^2)."""
    return float(torch.sqrt((S[k:].to(torch.float64) ** 2).sum()))


def lora_param_count(out_features: int, in_features: int, rank: int) -> int:
    """Parameters of a rank-``rank`` LoRA on an ``out x in`` weight: B is out x r, A is r x in."""
    return rank * (out_features + in_features)


def merged_weight(W0: torch.Tensor, A: torch.Tensor, B: torch.Tensor, alpha: float, rank: int | None = None) -> torch.Tensor:
    """``W0 + (alpha / rank) * B @ A``, the weight a LoRA-adapted layer really uses.

    ``A`` ("lora_down", ``lora_A``) is [r, in]; ``B`` ("lora_up", ``lora_B``) is [out, r].
    """
    r = A.shape[0] if rank is None else rank
    if B.shape[1] != A.shape[0] or (B.shape[0], A.shape[1]) != tuple(W0.shape):
        raise CourseError(f"Shapes do not fit: W0 {tuple(W0.shape)}, B {tuple(B.shape)}, A {tuple(A.shape)}; "
                          "need B [out, r] and A [r, in] with W0 [out, in].")
    return W0 + (alpha / r) * (B @ A)


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update, written out in full.

    ``forward(x) = base(x) + (alpha/r) * x @ A.T @ B.T``. ``B`` starts at zero, so at step 0
    the layer computes exactly what the base layer did. ``rslora=True`` uses alpha/sqrt(r).
    """

    def __init__(self, base: nn.Linear, rank: int = 4, alpha: float = 4.0, rslora: bool = False):
        super().__init__()
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.rank, self.alpha = rank, alpha
        self.scale = alpha / (rank ** 0.5 if rslora else rank)
        self.A = nn.Parameter(torch.randn(rank, base.in_features) / base.in_features ** 0.5)
        self.B = nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * (x @ self.A.T @ self.B.T)

    def merged(self) -> torch.Tensor:
        return self.base.weight + self.scale * (self.B @ self.A)


def linear_layers(module: nn.Module, name_filter: str = "") -> list[tuple[str, int, int]]:
    """``(name, out_features, in_features)`` of every ``nn.Linear`` whose name contains ``name_filter``.

    Works on models built on the ``meta`` device, so SD 1.5's shapes cost no memory.
    """
    return [(n, m.out_features, m.in_features) for n, m in module.named_modules()
            if isinstance(m, nn.Linear) and name_filter in n]
