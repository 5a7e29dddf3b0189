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


# ---------------------------------------------------------------- notebook 02-04 exercises

def _tmp_safetensors(tensors: dict, metadata: dict | None = None):
    import tempfile
    from pathlib import Path

    from safetensors.torch import save_file

    p = Path(tempfile.mkdtemp(prefix="check-")) / "t.safetensors"
    save_file(tensors, str(p), metadata=metadata)
    return p


def check_header_parser(fn: Callable) -> bool:
    """``fn(path)`` must return the safetensors header as a dict (``__metadata__`` included if present)."""
    import json
    import struct

    cases = [({"a": torch.zeros(2, 3)}, None), ({"x": torch.ones(4, dtype=torch.float16), "y": torch.zeros(1)}, {"k": "v"}),
             ({f"t{i}": torch.zeros(i + 1) for i in range(5)}, {"ss_network_dim": "4"})]
    results = []
    for tensors, meta in cases:
        p = _tmp_safetensors(tensors, meta)
        raw = p.read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        want = json.loads(raw[8:8 + n])
        got, err = _run(fn, p)
        case = f"{len(tensors)} tensor(s){' + metadata' if meta else ''}"
        if err:
            results.append((case, False, err))
        elif got != want:
            hint = "read 8 bytes as a little-endian unsigned 64-bit int (struct '<Q'), then that many bytes of JSON"
            results.append((case, False, f"got {str(got)[:60]}…; {hint}"))
        else:
            results.append((case, True, ""))
    return _report("check_header_parser", results)


def check_tensor_bytes(fn: Callable) -> bool:
    """``fn(dtype, shape)`` with dtype like "F32"/"F16"/"BF16"/"I64"/"U8" must return the tensor's size in bytes."""
    sizes = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "U8": 1, "F64": 8}
    cases = [("F32", [320, 768]), ("F16", [320, 768]), ("BF16", [1280]), ("I64", [2, 3, 4]), ("U8", []), ("F64", [0, 5])]
    results = []
    for dt, shape in cases:
        want = sizes[dt]
        for s in shape:
            want *= s
        got, err = _run(fn, dt, list(shape))
        case = f"{dt} {shape}"
        if err:
            results.append((case, False, err))
        elif got != want:
            results.append((case, False, f"got {got}, expected {want}: bytes per element x product of the shape "
                            "(an empty shape is a scalar: 1 element)"))
        else:
            results.append((case, True, ""))
    return _report("check_tensor_bytes", results)


def check_find_globals(fn: Callable) -> bool:
    """``fn(data: bytes)`` must return the set of "module.name" a pickle imports, without unpickling it."""
    import collections
    import os
    import pickle

    class _P:
        def __init__(self, f, a):
            self.f, self.a = f, a

        def __reduce__(self):
            return (self.f, self.a)

    cases = [("plain dict", {"a": 1}, set()),
             ("OrderedDict, protocol 2", collections.OrderedDict(a=1), {"collections.OrderedDict"}),
             ("os.system, protocol 0", _P(os.system, ("x",)), {f"{os.system.__module__}.system"}),
             ("eval, protocol 4", _P(eval, ("1",)), {"builtins.eval"})]
    protos = [2, 2, 0, 4]
    results = []
    for (case, obj, want), proto in zip(cases, protos):
        data = pickle.dumps(obj, protocol=proto)
        got, err = _run(fn, data)
        if err:
            results.append((case, False, err))
        elif set(got or ()) != want:
            results.append((case, False, f"got {set(got or ())}, expected {want}: walk pickletools.genops(data); "
                            "GLOBAL's arg is 'module name'; STACK_GLOBAL takes the two strings pushed before it"))
        else:
            results.append((case, True, ""))
    return _report("check_find_globals", results)


def check_a1111_path(fn: Callable) -> bool:
    """``fn(kind, filename)`` must return where A1111 expects it, relative to the WebUI folder."""
    cases = [("checkpoint", "course-model.safetensors", "models/Stable-diffusion/course-model.safetensors"),
             ("lora", "outline.safetensors", "models/Lora/outline.safetensors"),
             ("vae", "vae-ft-mse.safetensors", "models/VAE/vae-ft-mse.safetensors")]
    results = []
    for kind, name, want in cases:
        got, err = _run(fn, kind, name)
        case = f"{kind}: {name}"
        if err:
            results.append((case, False, err))
        elif str(got).replace("\\", "/") != want:
            results.append((case, False, f"got {got}, expected {want}"))
        else:
            results.append((case, True, ""))
    return _report("check_a1111_path", results)


def check_autov2(fn: Callable) -> bool:
    """``fn(path)`` must return the AutoV2 hash: the first 10 hex digits of the file's SHA-256."""
    import hashlib
    import tempfile
    from pathlib import Path

    results = []
    for size in (0, 10, 3 * 1024 * 1024 + 7):
        p = Path(tempfile.mkdtemp(prefix="check-")) / "f.bin"
        p.write_bytes(bytes(i % 251 for i in range(size)))
        want = hashlib.sha256(p.read_bytes()).hexdigest()[:10]
        got, err = _run(fn, p)
        case = f"{size:,}-byte file"
        if err:
            results.append((case, False, err))
        elif str(got).lower() != want:
            results.append((case, False, f"got {got}, expected {want}: hashlib.sha256 over the WHOLE file, first 10 hex"))
        else:
            results.append((case, True, ""))
    return _report("check_autov2", results)


# ---------------------------------------------------------------- notebook 05-06 exercises

def check_kohya_name(fn: Callable) -> bool:
    """``fn(component, module_path)`` must return the kohya module name, e.g. ``lora_unet_down_blocks_0_…``."""
    cases = [("unet", "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q",
              "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"),
             ("unet", "mid_block.attentions.0.proj_in", "lora_unet_mid_block_attentions_0_proj_in"),
             ("text_encoder", "text_model.encoder.layers.3.self_attn.v_proj",
              "lora_te_text_model_encoder_layers_3_self_attn_v_proj")]
    results = []
    for comp, path, want in cases:
        got, err = _run(fn, comp, path)
        case = f"{comp}: {path}"
        if err:
            results.append((case, False, err))
        elif got != want:
            results.append((case, False, f"got {got!r}, expected {want!r}: prefix lora_unet_ / lora_te_, then every '.' -> '_'"))
        else:
            results.append((case, True, ""))
    return _report("check_kohya_name", results)


def check_merge_strength(fn: Callable) -> bool:
    """``fn(W0, down, up, alpha, strength)`` must return W0 + strength · (alpha / rank) · up @ down."""
    g = torch.Generator().manual_seed(2)
    results = []
    for (o, i), r, alpha, s in [((5, 4), 2, 1.0, 1.0), ((6, 3), 3, 1.5, 0.5), ((4, 4), 4, 4.0, 0.0), ((3, 5), 1, 8.0, -1.0)]:
        W0 = torch.randn(o, i, generator=g, dtype=torch.float64)
        down = torch.randn(r, i, generator=g, dtype=torch.float64)
        up = torch.randn(o, r, generator=g, dtype=torch.float64)
        want = W0 + s * (alpha / r) * up @ down
        got, err = _run(fn, W0.clone(), down.clone(), up.clone(), alpha, s)
        case = f"{o}x{i}, rank {r}, alpha {alpha}, strength {s}"
        if err:
            results.append((case, False, err))
        elif not torch.allclose(torch.as_tensor(got, dtype=torch.float64), want, atol=1e-9):
            results.append((case, False, "expected W0 + strength * (alpha / rank) * up @ down, rank = down.shape[0]"))
        else:
            results.append((case, True, ""))
    return _report("check_merge_strength", results)


def check_extract(fn: Callable) -> bool:
    """``fn(delta, rank)`` must return ``(up, down)`` with up [out, rank], down [rank, in] and up @ down the
    best rank-``rank`` approximation of ``delta``."""
    g = torch.Generator().manual_seed(3)
    results = []
    for (o, i), r in [((8, 6), 1), ((10, 10), 3), ((5, 12), 5)]:
        delta = torch.randn(o, i, generator=g, dtype=torch.float64)
        U, S, Vh = torch.linalg.svd(delta, full_matrices=False)
        want = (U[:, :r] * S[:r]) @ Vh[:r]
        got, err = _run(fn, delta.clone(), r)
        case = f"{o}x{i} change, rank {r}"
        if err:
            results.append((case, False, err))
            continue
        try:
            up, down = (torch.as_tensor(x, dtype=torch.float64) for x in got)
        except (TypeError, ValueError):
            results.append((case, False, "return a pair (up, down)"))
            continue
        if up.shape != (o, r) or down.shape != (r, i):
            results.append((case, False, f"shapes up {tuple(up.shape)}, down {tuple(down.shape)}; expected ({o}, {r}) and ({r}, {i})"))
        elif not torch.allclose(up @ down, want, atol=1e-8):
            results.append((case, False, "up @ down is not the best rank-r approximation: up = U[:, :r] * S[:r], down = Vh[:r]"))
        else:
            results.append((case, True, ""))
    return _report("check_extract", results)


# ---------------------------------------------------------------- notebook 07 exercises

def check_parse_lora_tags(fn: Callable) -> bool:
    """``fn(text)`` must return (clean_prompt, [(name, te, unet), …]) for A1111's ``<lora:…>`` tags."""
    from .lora.prompt import parse_prompt

    cases = ["a red circle <lora:outline:0.8>", "<lora:ring>a blue ring", "a <lora:a:0.5:1.2> b <lora:c:0.3>",
             "no tags at all"]
    results = []
    for text in cases:
        clean, refs = parse_prompt(text)
        want = (clean, [(r.name, r.te, r.unet) for r in refs])
        got, err = _run(fn, text)
        if err:
            results.append((text, False, err))
            continue
        try:
            g = (str(got[0]).strip(), [(str(n), float(t), float(u)) for n, t, u in got[1]])
        except (TypeError, ValueError, IndexError):
            results.append((text, False, "return (clean_prompt, [(name, te, unet), ...])"))
            continue
        if g != want:
            results.append((text, False, f"got {g}, expected {want}: strength defaults to 1; unet defaults to te"))
        else:
            results.append((text, True, ""))
    return _report("check_parse_lora_tags", results)


def check_cfg(fn: Callable) -> bool:
    """``fn(uncond, cond, guidance_scale)`` must return classifier-free guidance's noise prediction."""
    g = torch.Generator().manual_seed(4)
    results = []
    for s in (1.0, 5.0, 7.5, 0.0):
        u, c = torch.randn(2, 4, generator=g), torch.randn(2, 4, generator=g)
        want = u + s * (c - u)
        got, err = _run(fn, u.clone(), c.clone(), s)
        case = f"guidance {s}"
        if err:
            results.append((case, False, err))
        elif not torch.allclose(torch.as_tensor(got), want, atol=1e-6):
            results.append((case, False, "uncond + scale * (cond - uncond)"))
        else:
            results.append((case, True, ""))
    return _report("check_cfg", results)


def check_blend(fn: Callable) -> bool:
    """``fn(original, generated, mask)`` must keep ``original`` where mask is 0 and take ``generated`` where it is 1."""
    g = torch.Generator().manual_seed(5)
    results = []
    for shape in [(1, 4, 8, 8), (2, 4, 4, 4)]:
        o, gen = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
        mask = (torch.rand(shape[0], 1, *shape[2:], generator=g) > 0.5).float()
        want = mask * gen + (1 - mask) * o
        got, err = _run(fn, o.clone(), gen.clone(), mask.clone())
        case = f"latents {shape}"
        if err:
            results.append((case, False, err))
        elif not torch.allclose(torch.as_tensor(got), want, atol=1e-6):
            results.append((case, False, "mask * generated + (1 - mask) * original (mask = 1 where the image is repainted)"))
        else:
            results.append((case, True, ""))
    return _report("check_blend", results)


# ---------------------------------------------------------------- notebook 10 exercises

def check_sniff(fn: Callable) -> bool:
    """``fn(head: bytes)`` must name the format of a file from its first bytes:
    "safetensors", "zip", "pickle", "lfs", "html" or "empty"."""
    import io
    import json
    import pickle
    import struct
    import zipfile

    hdr = json.dumps({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({}))
    cases = {"safetensors": struct.pack("<Q", len(hdr)) + hdr + b"\0" * 4, "zip": buf.getvalue(),
             "pickle": pickle.dumps({"a": 1}, protocol=4),
             "lfs": b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 3\n",
             "html": b"<!DOCTYPE html><html><body>Not found</body></html>", "empty": b""}
    results = []
    for want, data in cases.items():
        got, err = _run(fn, data[:64])
        if err:
            results.append((want, False, err))
        elif got != want:
            hints = {"safetensors": "8-byte little-endian length, then '{'", "zip": "starts with b'PK\\x03\\x04'",
                     "pickle": "protocol 2+ pickles start with b'\\x80' and the protocol number",
                     "lfs": "text starting with 'version https://git-lfs'", "html": "text starting with '<'",
                     "empty": "no bytes at all"}
            results.append((want, False, f"got {got!r}; {hints[want]}"))
        else:
            results.append((want, True, ""))
    return _report("check_sniff", results)
