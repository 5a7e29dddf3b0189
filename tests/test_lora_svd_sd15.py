"""extract_lora / resize_lora against SVD facts, and merge parity with diffusers on full-size SD 1.5 shapes."""

from __future__ import annotations

import gc

import pytest
import torch

from course_utils import lora as L
from course_utils import model as cm
from course_utils.lora import sd15


@pytest.fixture(scope="module")
def pipe():
    return cm.load_pipeline()


def test_extract_recovers_a_low_rank_change_exactly(pipe):
    base = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    lo = L.synthetic_lora({"unet": pipe.unet}, rank=3, alpha=3.0, std=0.1, targets=("to_q", "to_v"))
    tuned = {k: v.clone() for k, v in base.items()}
    L.merge(tuned, lo)
    ex, err = L.extract_lora({"unet." + k: v for k, v in base.items()}, {"unet." + k: v for k, v in tuned.items()}, rank=3)
    assert set(ex.modules) == set(lo.modules)
    assert max(err.values()) < 1e-3
    for name, m in lo.modules.items():
        assert torch.allclose(ex.modules[name].delta() * ex.modules[name].scale, m.delta() * m.scale, atol=1e-5)


def test_extract_error_follows_eckart_young(pipe):
    g = torch.Generator().manual_seed(0)
    w0 = torch.randn(40, 30, generator=g)
    w1 = w0 + torch.randn(40, 30, generator=g) * 0.1
    ex, err = L.extract_lora({"unet.l.weight": w0}, {"unet.l.weight": w1}, rank=5)
    S = torch.linalg.svdvals(w1 - w0)
    want = float((S[5:] ** 2).sum().sqrt() / (S ** 2).sum().sqrt())
    assert err["unet.l"] == pytest.approx(want, rel=1e-4)
    m = ex.modules["unet.l"]
    assert float(((w1 - w0) - m.delta()).norm() / (w1 - w0).norm()) == pytest.approx(want, rel=1e-3)


def test_resize_keeps_scale_and_is_exact_at_full_rank(pipe):
    lo = L.synthetic_lora({"unet": pipe.unet}, rank=8, alpha=4.0, std=0.1, targets=("to_q", "proj_in"))
    same, err = L.resize_lora(lo, 8)
    assert max(err.values()) < 1e-5 and all(m.scale == 0.5 for m in same)
    small, err4 = L.resize_lora(lo, 4)
    assert all(m.rank == 4 and m.alpha == 2.0 and m.scale == 0.5 for m in small)
    for name, m in lo.modules.items():
        S = torch.linalg.svdvals(m.delta().reshape(m.delta().shape[0], -1))
        want = float((S[4:] ** 2).sum().sqrt() / (S ** 2).sum().sqrt())
        assert err4[name] == pytest.approx(want, rel=1e-3, abs=1e-6)
    assert L.lora_delta_error(lo, same)[next(iter(lo.modules))] < 1e-5


@pytest.mark.slow
def test_merge_matches_diffusers_on_full_size_sd15(tmp_path):
    """Rank-32 kohya LoRA with 264 modules on a real-size SD 1.5 UNet + ViT-L text encoder."""
    from diffusers import StableDiffusionPipeline

    unet, te = sd15.sd15_unet(), sd15.sd15_text_encoder()
    assert sum(p.numel() for p in unet.parameters()) == 859_520_964
    assert sum(p.numel() for p in te.parameters()) == 123_060_480
    lo = sd15.kohya_lora_for({"unet": unet, "text_encoder": te}, rank=32, alpha=16.0)
    assert len(lo) == 264 and lo.components() == {"unet": 192, "text_encoder": 72}
    assert L.detect_base(lo)[0] == "SD1.x"
    kohya_path = L.save_kohya(lo, tmp_path / "sd15_r32.safetensors", L.kohya_metadata(lo))
    diffusers_path = L.save_diffusers(lo, tmp_path / "sd15_r32_diffusers")
    tiny = cm.load_pipeline()
    pipe = StableDiffusionPipeline(vae=tiny.vae, text_encoder=te, tokenizer=tiny.tokenizer, unet=unet,
                                   scheduler=tiny.scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    for path in (kohya_path, diffusers_path):
        rep = L.merge(pipe, [(path, 0.8)])
        assert len(rep.matched) == 264 and not rep.unmatched and not rep.shape_mismatches
        ours = {k: dict(unet.named_parameters() if k[0] == "unet" else te.named_parameters())[k[1]].detach().clone()
                for k in rep.backup}
        originals = {k: v.clone() for k, v in rep.backup.items()}
        L.unmerge(pipe, rep)
        pipe.load_lora_weights(str(path), adapter_name="sd15")
        pipe.fuse_lora(lora_scale=0.8)
        pipe.unload_lora_weights()
        worst = 0.0
        for (comp, name), w in ours.items():
            p = dict((unet if comp == "unet" else te).named_parameters())[name]
            worst = max(worst, float((p - w).abs().max()))
            with torch.no_grad():
                p.copy_(originals[(comp, name)])  # back to the base for the next format
        assert worst < 1e-5, (path.name, worst)
    del pipe, unet, te
    gc.collect()
