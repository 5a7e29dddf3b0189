"""course_utils.lora: names, formats, round trips, merge parity with diffusers, prompts, base detection."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from course_utils import CourseError
from course_utils import lora as L
from course_utils import model as cm
from course_utils.errors import LoraMismatchError
from course_utils.lora.formats import UNET_ATTN_TARGETS


@pytest.fixture(scope="module")
def pipe():
    p = cm.build_pipeline(seed=3)
    p.set_progress_bar_config(disable=True)
    return p


def test_kohya_names_round_trip():
    names = ["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q",
             "mid_block.attentions.0.transformer_blocks.0.attn2.to_out.0",
             "up_blocks.1.attentions.2.transformer_blocks.0.ff.net.0.proj",
             "down_blocks.1.attentions.0.proj_in", "down_blocks.2.resnets.1.time_emb_proj",
             "text_model.encoder.layers.11.self_attn.q_proj", "text_model.encoder.layers.0.mlp.fc1"]
    for n in names:
        assert L.kohya_to_path(n.replace(".", "_")) == n
    assert L.path_to_kohya("unet.down_blocks.0.attentions.0.proj_in") == "lora_unet_down_blocks_0_attentions_0_proj_in"
    assert L.path_to_kohya("text_encoder.text_model.encoder.layers.0.self_attn.q_proj") == \
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj"
    assert L.path_to_kohya("text_encoder.text_model.x", sdxl=True).startswith("lora_te1_")


def _lora(pipe, alpha=2.0, rank=4):
    return L.synthetic_lora({"unet": pipe.unet, "text_encoder": pipe.text_encoder}, rank=rank, alpha=alpha, std=0.1)


def test_formats_round_trip_exactly(pipe, tmp_path):
    lo = _lora(pipe, alpha=2.0)
    k = L.read_lora(L.to_kohya(lo))
    d_sd, d_meta = L.to_diffusers(lo)
    save_file(d_sd, str(tmp_path / "d.safetensors"), metadata=d_meta)
    d = L.read_lora(tmp_path / "d.safetensors")
    for back in (k, d):
        assert set(back.modules) == set(lo.modules)
        for name, m in lo.modules.items():
            b = back.modules[name]
            assert torch.equal(b.down, m.down) and torch.equal(b.up, m.up) and b.scale == m.scale == 0.5
    assert k.format == "kohya" and d.format == "diffusers"
    peft = {f"base_model.model.{m.path}.lora_A.weight": m.down for m in lo if m.component == "unet"}
    peft |= {f"base_model.model.{m.path}.lora_B.weight": m.up for m in lo if m.component == "unet"}
    p = L.read_lora(L.from_state_dict(peft, lora_alpha=2.0))
    assert p.format == "peft" and len(p) == 32 and all(m.scale == 0.5 for m in p)
    old = {f"{m.name}.lora.down.weight": m.down for m in lo} | {f"{m.name}.lora.up.weight": m.up for m in lo}
    assert len(L.read_lora(old)) == len(lo)


def test_missing_alpha_means_scale_one_and_bad_files_raise(pipe):
    kd = {k: v for k, v in L.to_kohya(_lora(pipe)).items() if not k.endswith(".alpha")}
    assert all(m.scale == 1.0 for m in L.read_lora(kd))
    half = {k: v for k, v in L.to_kohya(_lora(pipe)).items() if "lora_up" not in k}
    with pytest.raises(CourseError, match="no lora_up"):
        L.read_lora(half)
    with pytest.raises(CourseError, match="not a LoRA key"):
        L.read_lora({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1)})
    loha = {"lora_unet_x_to_q.hada_w1_a": torch.zeros(1), "lora_unet_x_to_q.hada_w1_b": torch.zeros(1)}
    with pytest.raises(CourseError, match="LoHa"):
        L.read_lora(loha)
    lokr = {"lora_unet_x_to_q.lokr_w1": torch.zeros(1), "lora_unet_x_to_q.lokr_w2": torch.zeros(1)}
    with pytest.raises(CourseError, match="LoKr"):
        L.read_lora(lokr)


def _fused_by_diffusers(pipe, path, scale):
    orig_u = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    orig_t = {k: v.clone() for k, v in pipe.text_encoder.state_dict().items()}
    pipe.load_lora_weights(str(path), adapter_name="t")
    pipe.fuse_lora(lora_scale=scale)
    pipe.unload_lora_weights()
    fused = ({k: v.clone() for k, v in pipe.unet.state_dict().items()},
             {k: v.clone() for k, v in pipe.text_encoder.state_dict().items()})
    pipe.unet.load_state_dict(orig_u)
    pipe.text_encoder.load_state_dict(orig_t)
    return fused


@pytest.mark.parametrize("fmt", ["kohya", "diffusers"])
@pytest.mark.parametrize("scale", [0.7, 1.3])
def test_merge_matches_diffusers_fuse(pipe, tmp_path, fmt, scale):
    lo = _lora(pipe, alpha=2.0)
    if fmt == "kohya":
        path = L.save_kohya(lo, tmp_path / "l.safetensors", L.kohya_metadata(lo))
    else:
        path = L.save_diffusers(lo, tmp_path / "d")
    du, dt = _fused_by_diffusers(pipe, path, scale)
    before = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    rep = L.merge(pipe, [(path, scale)])
    assert len(rep.matched) == len(lo) and not rep.unmatched and not rep.shape_mismatches
    changed = 0
    for k, v in pipe.unet.state_dict().items():
        assert torch.allclose(v, du[k], atol=1e-5), k
        changed += not torch.equal(v, before[k])
    for k, v in pipe.text_encoder.state_dict().items():
        assert torch.allclose(v, dt[k], atol=1e-5), k
    assert changed == 32
    L.unmerge(pipe, rep)
    assert all(torch.equal(v, before[k]) for k, v in pipe.unet.state_dict().items())


def test_merge_equals_hand_formula_with_te_unet_strengths(pipe):
    lo = _lora(pipe, alpha=3.0)
    m = lo.modules["unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"]
    t = lo.modules["text_encoder.text_model.encoder.layers.1.self_attn.v_proj"]
    te_params = dict(pipe.text_encoder.named_parameters())
    tname = next(n for n in (t.path + ".weight", t.path.removeprefix("text_model.") + ".weight") if n in te_params)
    w0, tw0 = pipe.unet.get_parameter(m.path + ".weight").clone(), te_params[tname].clone()
    rep = L.merge(pipe, [(lo, 0.25, 0.8)])
    assert torch.allclose(pipe.unet.get_parameter(m.path + ".weight"), w0 + 0.8 * 0.75 * m.up @ m.down, atol=1e-6)
    assert torch.allclose(te_params[tname], tw0 + 0.25 * 0.75 * t.up @ t.down, atol=1e-6)
    L.unmerge(pipe, rep)
    assert torch.equal(pipe.unet.get_parameter(m.path + ".weight"), w0) and torch.equal(te_params[tname], tw0)


def test_two_loras_sum_deltas_not_factors(pipe):
    a, b = _lora(pipe, alpha=4.0), L.synthetic_lora({"unet": pipe.unet}, rank=4, alpha=4.0, std=0.1, seed=9,
                                                   targets=UNET_ATTN_TARGETS)
    name = "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_v"
    w0 = pipe.unet.get_parameter(name[5:] + ".weight").clone()
    rep = L.merge(pipe, [(a, 1.0), (b, 0.5)])
    ma, mb = a.modules[name], b.modules[name]
    want = w0 + ma.up @ ma.down + 0.5 * mb.up @ mb.down
    assert torch.allclose(pipe.unet.get_parameter(name[5:] + ".weight"), want, atol=1e-6)
    wrong = w0 + (ma.up + mb.up) @ (ma.down + mb.down)
    assert not torch.allclose(want, wrong, atol=1e-3)
    L.unmerge(pipe, rep)


def test_wrong_base_is_a_clear_error(pipe):
    from transformers import CLIPTextConfig, CLIPTextModel
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        xl_unet = UNet2DConditionModel(block_out_channels=(32, 64), cross_attention_dim=2048, layers_per_block=1,
                                       down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                       up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), attention_head_dim=8,
                                       norm_num_groups=32)
        te = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=64, num_hidden_layers=1, num_attention_heads=12))
    lo = L.synthetic_lora({"unet": xl_unet, "text_encoder": te}, rank=2, targets=("to_k", "q_proj"))
    assert L.detect_base(lo)[0] == "SDXL"
    with pytest.raises(LoraMismatchError, match="SDXL"):
        L.merge(pipe, lo)


def test_detect_base_and_describe(pipe):
    lo = _lora(pipe)
    base, ev = L.detect_base(lo)
    assert base == "course model" and any("32" in e for e in ev)
    d = L.describe(lo)
    assert d["modules"] == 40 and d["ranks"] == [4] and d["components"] == {"unet": 32, "text_encoder": 8}
    assert "made for" in L.format_description(d)
    sd1_te = {"lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": torch.zeros(4, 768),
              "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": torch.zeros(768, 4)}
    assert L.detect_base(sd1_te)[0] == "SD1.x"
    sd2 = {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": torch.zeros(4, 1024),
           "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": torch.zeros(320, 4)}
    assert L.detect_base(sd2)[0] == "SD2.x"


@pytest.mark.parametrize("text,clean,refs", [
    ("a red circle <lora:outline:0.8>", "a red circle", [("outline", 0.8, 0.8)]),
    ("<lora:ring>a blue ring", "a blue ring", [("ring", 1.0, 1.0)]),
    ("a <lora:a:0.5:1.2> b <lyco:c:te=0.3:unet=0.9>", "a b", [("a", 0.5, 1.2), ("c", 0.3, 0.9)]),
    ("x <lora:a:unet=0.4>", "x", [("a", 1.0, 0.4)]),
    ("no loras here", "no loras here", []),
])
def test_parse_prompt(text, clean, refs):
    c, r = L.parse_prompt(text)
    assert c == clean and [(x.name, x.te, x.unet) for x in r] == refs


def test_parse_prompt_errors():
    with pytest.raises(CourseError, match="numbers"):
        L.parse_prompt("<lora:a:strong>")
    with pytest.raises(CourseError, match="no LoRA name"):
        L.parse_prompt("<lora::1>")


def test_kohya_file_metadata_and_hash(pipe, tmp_path):
    from course_utils.hashes import file_hashes

    lo = _lora(pipe)
    p = L.save_kohya(lo, tmp_path / "k.safetensors", L.kohya_metadata(lo, title="x"))
    from course_utils.weights import read_safetensors_metadata

    meta = read_safetensors_metadata(p)
    for key in ("ss_v2", "ss_base_model_version", "ss_network_module", "ss_network_dim", "ss_network_alpha",
                "ss_network_args", "modelspec.architecture", "modelspec.title", "sshs_model_hash"):
        assert key in meta, key
    assert meta["sshs_model_hash"] == file_hashes(p).autov3
    json.loads(meta["ss_network_args"])


@pytest.mark.parametrize("suffixes,algo", [(("on_input", "weight"), "(IA)^3"), (("diff",), "full-diff"),
                                           (("lora_down.weight", "lora_up.weight", "dora_scale"), "DoRA"),
                                           (("lora_down.weight", "lora_up.weight", "lora_mid.weight"), "lora_mid")])
def test_other_algorithms_are_named(suffixes, algo):
    sd = {f"lora_unet_down_blocks_0_attentions_0_proj_in.{s}": torch.zeros(2, 2) for s in suffixes}
    with pytest.raises(CourseError, match=algo.replace("(", r"\(").replace(")", r"\)").replace("^", r"\^")):
        L.read_lora(sd)


def test_merge_into_fp16_computes_in_fp32(pipe):
    lo = _lora(pipe, alpha=2.0)
    sd16 = {f"unet.{k}": v.half() for k, v in pipe.unet.state_dict().items()}
    new, rep = L.merged_state_dict(sd16, [(lo, 1.0)], te=0.0)
    m = lo.modules["unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_k"]
    key = "unet." + m.path + ".weight"
    want = (sd16[key].float() + 0.5 * m.up @ m.down).half()
    assert new[key].dtype == torch.float16 and torch.equal(new[key], want)
    assert torch.equal(sd16[key], pipe.unet.get_parameter(m.path + ".weight").half())  # input untouched


def test_merge_into_a_bare_text_encoder_module(pipe):
    lo = _lora(pipe, alpha=2.0)
    te = pipe.text_encoder
    before = {k: v.clone() for k, v in te.state_dict().items()}
    rep = L.merge(te, [(lo, 1.0)])
    assert len(rep.matched) == 8 and all(n.startswith("text_encoder.") for n in rep.matched)
    assert rep.unmatched == [n for n in lo.modules if n.startswith("unet.")]
    L.unmerge(te, rep)
    assert all(torch.equal(v, before[k]) for k, v in te.state_dict().items())
