"""course_utils.lowrank against independent references, and the exercise checkers on right and wrong answers."""

from __future__ import annotations

import pytest
import torch

from course_utils import CourseError, checks, lowrank


def test_rank_k_is_rank_k_and_optimal():
    g = torch.Generator().manual_seed(0)
    M = torch.randn(30, 20, generator=g, dtype=torch.float64)
    S = torch.linalg.svdvals(M)
    for k in (1, 5, 19, 20):
        Mk = lowrank.rank_k_approx(M, k)
        assert int(torch.linalg.matrix_rank(Mk)) == k
        err = torch.linalg.matrix_norm(M - Mk).item()
        assert err == pytest.approx(lowrank.tail_energy(S, k), rel=1e-9, abs=1e-9)
        # no random rank-k matrix does better (Eckart-Young, checked on a few)
        for _ in range(3):
            R = torch.randn(30, k, generator=g, dtype=torch.float64) @ torch.randn(k, 20, generator=g, dtype=torch.float64)
            assert torch.linalg.matrix_norm(M - R).item() >= err


def test_rank_k_errors():
    with pytest.raises(CourseError, match="2-D"):
        lowrank.rank_k_approx(torch.zeros(2, 3, 4), 1)
    with pytest.raises(CourseError, match="between 0"):
        lowrank.rank_k_approx(torch.zeros(3, 4), 5)


def test_sample_image_is_real_and_sized():
    img = lowrank.sample_image(64)
    assert img.shape[0] == 64 and img.shape[1] > 40
    assert 0 <= img.min() < 0.2 and 0.8 < img.max() <= 1
    assert int(torch.linalg.matrix_rank(img)) > 30  # a photo is far from low rank


def test_lora_param_count_and_merge():
    assert lowrank.lora_param_count(320, 768, 8) == 8 * (320 + 768)
    W0, A, B = torch.randn(5, 3), torch.randn(2, 3), torch.randn(5, 2)
    assert torch.allclose(lowrank.merged_weight(W0, A, B, alpha=4, rank=2), W0 + 2 * B @ A)
    with pytest.raises(CourseError, match="Shapes do not fit"):
        lowrank.merged_weight(W0, B, A, alpha=1)


def test_lora_linear_starts_as_base_and_merges():
    torch.manual_seed(0)
    base = torch.nn.Linear(6, 4)
    lo = lowrank.LoRALinear(base, rank=2, alpha=4)
    x = torch.randn(3, 6)
    assert torch.equal(lo(x), base(x))  # B = 0 at step 0
    with torch.no_grad():
        lo.B.normal_()
    assert torch.allclose(lo(x), x @ lo.merged().T + base.bias, atol=1e-6)
    assert [p.requires_grad for p in base.parameters()] == [False, False]
    assert lowrank.LoRALinear(torch.nn.Linear(4, 4), rank=16, alpha=16, rslora=True).scale == pytest.approx(4.0)


def test_linear_layers_on_meta():
    with torch.device("meta"):
        m = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    assert lowrank.linear_layers(m) == [("0", 5, 3), ("2", 2, 5)]


# ---- the checkers accept right answers and reject typical wrong ones ----

def _good_rank_k(M, k):
    U, S, Vh = torch.linalg.svd(M, full_matrices=False)
    return U[:, :k] @ torch.diag(S[:k]) @ Vh[:k]


def test_check_rank_k(capsys):
    assert checks.check_rank_k(_good_rank_k)
    assert not checks.check_rank_k(lambda M, k: torch.linalg.svd(M, full_matrices=False)[0][:, -k:] if k else M)
    assert not checks.check_rank_k(lambda M, k: (_ for _ in ()).throw(NotImplementedError))
    out = capsys.readouterr().out
    assert "5/5 cases passed" in out and "not implemented yet" in out


def test_check_lora_param_count(capsys):
    assert checks.check_lora_param_count(lambda layers, r: sum(r * (o + i) for o, i in layers))
    assert not checks.check_lora_param_count(lambda layers, r: sum(o * i for o, i in layers))
    assert "full weights' count" in capsys.readouterr().out


def test_check_merged_weight(capsys):
    assert checks.check_merged_weight(lambda W0, A, B, a, r: W0 + a / r * B @ A)
    assert not checks.check_merged_weight(lambda W0, A, B, a, r: W0 + a * B @ A)
    assert "scale is alpha / r" in capsys.readouterr().out


def test_weights_checkers_accept_right_and_reject_wrong(capsys):
    import hashlib
    import json
    import pickletools
    import struct

    def header(p):
        raw = open(p, "rb").read()
        n = struct.unpack("<Q", raw[:8])[0]
        return json.loads(raw[8:8 + n])

    assert checks.check_header_parser(header)
    big_endian = lambda p: json.loads(open(p, "rb").read()[8:8 + struct.unpack(">Q", open(p, "rb").read()[:8])[0]])  # noqa: E731
    assert not checks.check_header_parser(big_endian)
    sizes = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "U8": 1, "F64": 8}
    assert checks.check_tensor_bytes(lambda dt, shape: sizes[dt] * __import__("math").prod(shape))
    assert not checks.check_tensor_bytes(lambda dt, shape: 4 * __import__("math").prod(shape))

    def find(data):
        out, strings = set(), []
        for op, arg, _ in pickletools.genops(data):
            if op.name in ("GLOBAL", "INST"):
                out.add(arg.replace(" ", "."))
            elif op.name == "STACK_GLOBAL":
                out.add(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(arg, str):
                strings.append(arg)
        return out

    assert checks.check_find_globals(find)
    assert not checks.check_find_globals(lambda data: set())
    assert checks.check_a1111_path(lambda k, n: {"checkpoint": "models/Stable-diffusion", "lora": "models/Lora",
                                                  "vae": "models/VAE"}[k] + "/" + n)
    assert not checks.check_a1111_path(lambda k, n: "lora/" + n)
    assert checks.check_autov2(lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()[:10])
    assert not checks.check_autov2(lambda p: hashlib.sha256(open(p, "rb").read()[:1000]).hexdigest()[:10])


def test_lora_checkers(capsys):
    from course_utils.lora import path_to_kohya

    assert checks.check_kohya_name(lambda c, p: path_to_kohya(f"{c}.{p}"))
    assert not checks.check_kohya_name(lambda c, p: f"lora_{c}_{p}")
    assert checks.check_merge_strength(lambda W0, d, u, a, s: W0 + s * a / d.shape[0] * u @ d)
    assert not checks.check_merge_strength(lambda W0, d, u, a, s: W0 + s * a * u @ d)


def test_check_extract():
    def good(delta, r):
        U, S, Vh = torch.linalg.svd(delta, full_matrices=False)
        return U[:, :r] * S[:r], Vh[:r]

    assert checks.check_extract(good)
    assert not checks.check_extract(lambda d, r: (d[:, :r], torch.eye(d.shape[1], dtype=d.dtype)[:r]))


def test_prompt_and_cfg_checkers():
    from course_utils.lora import parse_prompt

    assert checks.check_parse_lora_tags(lambda t: (parse_prompt(t)[0], [(r.name, r.te, r.unet) for r in parse_prompt(t)[1]]))
    assert not checks.check_parse_lora_tags(lambda t: (t, []))
    assert checks.check_cfg(lambda u, c, s: u + s * (c - u))
    assert not checks.check_cfg(lambda u, c, s: c * s)


def test_resolve_prompt(tmp_path):
    import shutil

    import pytest

    from course_utils import CourseError, paths
    from course_utils.lora import resolve_prompt

    (tmp_path / "styles").mkdir()
    shutil.copy(paths.loras_dir() / "outline.safetensors", tmp_path / "styles" / "outline.safetensors")
    clean, pairs = resolve_prompt("a red circle <lora:outline:0.8>", tmp_path)
    assert clean == "a red circle" and pairs == [(tmp_path / "styles" / "outline.safetensors", 0.8, 0.8)]
    with pytest.raises(CourseError, match="Available: outline"):
        resolve_prompt("x <lora:nope:1>", tmp_path)


def test_lora_playground_redraws():
    from course_utils import model, paths, widgets

    box = widgets.lora_playground(model.load_pipeline(), paths.loras_dir(), n_images=2, steps=4)
    before = box.image.value
    box.children[0].children[1].value = "ring"
    assert box.image.value != before


def test_loss_plot_updates():
    from course_utils.widgets import LossPlot

    lp = LossPlot(total_steps=10, every=5)
    first = lp.widget.value
    for i in range(10):
        lp.update(i, 1.0 / (i + 1))
    assert lp.widget.value != first and len(lp.losses) == 10


def test_check_blend():
    assert checks.check_blend(lambda o, g, m: m * g + (1 - m) * o)
    assert not checks.check_blend(lambda o, g, m: (1 - m) * g + m * o)


def test_check_sniff():
    def sniff(b):
        if not b:
            return "empty"
        if b[:4] == b"PK\x03\x04":
            return "zip"
        if b.startswith(b"version https://git-lfs"):
            return "lfs"
        if b[:1] == b"<":
            return "html"
        if b[:1] == b"\x80":
            return "pickle"
        return "safetensors" if b[8:9] == b"{" else "unknown"

    assert checks.check_sniff(sniff)
    assert not checks.check_sniff(lambda b: "safetensors")
