"""Self-checking exercises: pass your function or value, get what passed and a hint on failure.

Each ``check_*`` runs independent reference cases (computed here, not by your code), prints one
line per case, and returns True when all pass. Nothing raises, so a notebook keeps running.
"""

from __future__ import annotations

from typing import Callable

import torch


def _report(name: str, results: list[tuple[str, bool, str]]) -> bool:
    passed = sum(ok for _, ok, _ in results)
    for case, ok, hint in results:
        print(f"  {'PASS' if ok else 'FAIL'}  {case}" + ("" if ok else f"  -> {hint}"))
    print(f"{name}: {passed}/{len(results)} cases passed" + (" ✓" if passed == len(results) else ""))
    return passed == len(results)


def _run(fn: Callable, *args):
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, "not implemented yet: replace the `raise NotImplementedError` with your code"
    except Exception as e:  # the learner's code: report, don't crash
        return None, f"raised {type(e).__name__}: {e}"


def check_rank_k(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> bool:
    """``fn(M, k)`` must return the best rank-k approximation of ``M``."""
    g = torch.Generator().manual_seed(0)
    results = []
    for (m, n), k in [((6, 4), 1), ((6, 4), 2), ((5, 7), 3), ((8, 8), 8), ((10, 3), 0)]:
        M = torch.randn(m, n, generator=g, dtype=torch.float64)
        U, S, Vh = torch.linalg.svd(M, full_matrices=False)
        want = (U[:, :k] * S[:k]) @ Vh[:k]
        got, err = _run(fn, M.clone(), k)
        case = f"{m}x{n} matrix, k={k}"
        if err:
            results.append((case, False, err))
            continue
        got = torch.as_tensor(got, dtype=torch.float64)
        if got.shape != M.shape:
            results.append((case, False, f"shape {tuple(got.shape)}, expected {tuple(M.shape)}"))
        elif not torch.allclose(got, want, atol=1e-6):
            rank = int(torch.linalg.matrix_rank(got))
            results.append((case, False, f"values differ (your result has rank {rank}); keep the k LARGEST "
                            "singular values: U[:, :k] * S[:k] @ Vh[:k]"))
        else:
            results.append((case, True, ""))
    return _report("check_rank_k", results)


def check_lora_param_count(fn: Callable[[list[tuple[int, int]], int], int]) -> bool:
    """``fn(layers, rank)`` with layers = [(out, in), ...] must return the LoRA's parameter count."""
    cases = [([(320, 320)], 4), ([(320, 768), (640, 640)], 8), ([(1280, 1280)] * 4, 32), ([], 16),
             ([(3072, 768), (768, 3072)], 1)]
    results = []
    for layers, r in cases:
        want = sum(r * (o + i) for o, i in layers)
        got, err = _run(fn, list(layers), r)
        case = f"{len(layers)} layer(s), rank {r}"
        if err:
            results.append((case, False, err))
        elif got != want:
            hint = "each layer needs B (out x r) and A (r x in): r*(out+in), summed over layers"
            if layers and got == sum(o * i for o, i in layers):
                hint = "that is the full weights' count; a LoRA stores only B and A"
            results.append((case, False, f"got {got}, expected {want}: {hint}"))
        else:
            results.append((case, True, ""))
    return _report("check_lora_param_count", results)


def check_merged_weight(fn: Callable) -> bool:
    """``fn(W0, A, B, alpha, r)`` must return W0 + (alpha/r) * B @ A."""
    g = torch.Generator().manual_seed(1)
    results = []
    for (o, i), r, alpha in [((4, 3), 1, 1.0), ((6, 5), 2, 4.0), ((8, 8), 4, 1.0), ((3, 7), 3, 0.5)]:
        W0 = torch.randn(o, i, generator=g, dtype=torch.float64)
        A = torch.randn(r, i, generator=g, dtype=torch.float64)
        B = torch.randn(o, r, generator=g, dtype=torch.float64)
        want = W0 + (alpha / r) * B @ A
        got, err = _run(fn, W0.clone(), A.clone(), B.clone(), alpha, r)
        case = f"W0 {o}x{i}, r={r}, alpha={alpha}"
        if err:
            results.append((case, False, err))
            continue
        got = torch.as_tensor(got, dtype=torch.float64)
        if got.shape != W0.shape:
            results.append((case, False, f"shape {tuple(got.shape)}, expected {tuple(W0.shape)} (B @ A, not A @ B)"))
        elif torch.allclose(got, W0 + alpha * B @ A, atol=1e-9) and r != 1:
            results.append((case, False, "you scaled by alpha; the scale is alpha / r"))
        elif not torch.allclose(got, want, atol=1e-9):
            results.append((case, False, "values differ: W0 + (alpha / r) * B @ A"))
        else:
            results.append((case, True, ""))
    return _report("check_merged_weight", results)
