"""diffusers → original Stable Diffusion (LDM / A1111 / Civitai) single-file key layout.

Single-file checkpoints (``model.safetensors``/``.ckpt`` as people download them) name the UNet
``model.diffusion_model.*`` (``input_blocks``/``middle_block``/``output_blocks``), the VAE
``first_stage_model.*`` (``encoder.down.N.block.M``…) and the SD1 text encoder
``cond_stage_model.transformer.text_model.*``. diffusers' own converter script only handles
SD's 4×2 layout and is not in the pip package; this one follows the UNet config, so it works
for the course model and for full-size SD 1.x alike. It is the inverse of diffusers'
``convert_ldm_unet_checkpoint``/``convert_ldm_vae_checkpoint`` (the tests check the round trip).
"""

from __future__ import annotations

import torch

_RESNET = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("time_emb_proj", "emb_layers.1"),
           ("norm2", "out_layers.0"), ("conv2", "out_layers.3"), ("conv_shortcut", "skip_connection")]
_VAE_RESNET = [("conv_shortcut", "nin_shortcut")]
_VAE_ATTN = [("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")]


def _sub(rest: str, table) -> str:
    for a, b in table:
        if rest == a or rest.startswith(a + "."):
            return b + rest[len(a):]
    return rest


def unet_to_ldm(sd: dict[str, torch.Tensor], config) -> dict[str, torch.Tensor]:
    """A diffusers ``UNet2DConditionModel`` state dict → ``model.diffusion_model.*`` keys."""
    lpb = config["layers_per_block"] if isinstance(config, dict) else config.layers_per_block
    out = {}
    for k, v in sd.items():
        p = k.split(".")
        if p[0] == "time_embedding":
            new = {"linear_1": "time_embed.0", "linear_2": "time_embed.2"}[p[1]] + "." + ".".join(p[2:])
        elif p[0] == "conv_in":
            new = "input_blocks.0.0." + ".".join(p[1:])
        elif p[0] == "conv_norm_out":
            new = "out.0." + ".".join(p[1:])
        elif p[0] == "conv_out":
            new = "out.2." + ".".join(p[1:])
        elif p[0] == "down_blocks":
            i, kind = int(p[1]), p[2]
            if kind == "downsamplers":
                new = f"input_blocks.{1 + i * (lpb + 1) + lpb}.0.op." + ".".join(p[5:])
            else:
                j = int(p[3])
                n = 1 + i * (lpb + 1) + j
                rest = ".".join(p[4:])
                new = f"input_blocks.{n}.0.{_sub(rest, _RESNET)}" if kind == "resnets" else f"input_blocks.{n}.1.{rest}"
        elif p[0] == "mid_block":
            kind, j, rest = p[1], int(p[2]), ".".join(p[3:])
            new = f"middle_block.1.{rest}" if kind == "attentions" else f"middle_block.{0 if j == 0 else 2}.{_sub(rest, _RESNET)}"
        elif p[0] == "up_blocks":
            i, kind = int(p[1]), p[2]
            if kind == "upsamplers":
                has_attn = any(key.startswith(f"up_blocks.{i}.attentions.") for key in sd)
                new = f"output_blocks.{i * (lpb + 1) + lpb}.{2 if has_attn else 1}.conv." + ".".join(p[5:])
            else:
                j = int(p[3])
                n = i * (lpb + 1) + j
                rest = ".".join(p[4:])
                new = f"output_blocks.{n}.0.{_sub(rest, _RESNET)}" if kind == "resnets" else f"output_blocks.{n}.1.{rest}"
        else:
            new = k  # e.g. class embeddings: kept as is
        out["model.diffusion_model." + new] = v
    return out


def vae_to_ldm(sd: dict[str, torch.Tensor], config) -> dict[str, torch.Tensor]:
    """A diffusers ``AutoencoderKL`` state dict → ``first_stage_model.*`` keys (attention as 1×1 convs)."""
    nblocks = len(config["block_out_channels"] if isinstance(config, dict) else config.block_out_channels)
    out = {}
    for k, v in sd.items():
        p = k.split(".")
        if p[0] in ("quant_conv", "post_quant_conv"):
            new = k
        else:
            side, rest = p[0], p[1:]
            if rest[0] == "down_blocks":
                i = rest[1]
                if rest[2] == "downsamplers":
                    new = f"{side}.down.{i}.downsample.conv." + ".".join(rest[5:])
                else:
                    new = f"{side}.down.{i}.block.{rest[3]}." + _sub(".".join(rest[4:]), _VAE_RESNET)
            elif rest[0] == "up_blocks":
                i = nblocks - 1 - int(rest[1])
                if rest[2] == "upsamplers":
                    new = f"{side}.up.{i}.upsample.conv." + ".".join(rest[5:])
                else:
                    new = f"{side}.up.{i}.block.{rest[3]}." + _sub(".".join(rest[4:]), _VAE_RESNET)
            elif rest[0] == "mid_block":
                if rest[1] == "attentions":
                    new = f"{side}.mid.attn_1." + _sub(".".join(rest[3:]), _VAE_ATTN)
                    if v.ndim == 2:
                        v = v[:, :, None, None]
                else:
                    new = f"{side}.mid.block_{int(rest[2]) + 1}." + _sub(".".join(rest[3:]), _VAE_RESNET)
            elif rest[0] == "conv_norm_out":
                new = f"{side}.norm_out." + ".".join(rest[1:])
            else:
                new = k
        out["first_stage_model." + new] = v
    return out


def pipeline_to_ldm(pipe) -> dict[str, torch.Tensor]:
    """All weights of an SD1-style pipeline in the single-file layout (UNet, VAE, text encoder)."""
    sd = {}
    sd.update(unet_to_ldm(pipe.unet.state_dict(), pipe.unet.config))
    sd.update(vae_to_ldm(pipe.vae.state_dict(), pipe.vae.config))
    for k, v in pipe.text_encoder.state_dict().items():
        # transformers >= 5.6 flattened CLIPTextModel; the file layout always has text_model.
        sd["cond_stage_model.transformer." + (k if k.startswith("text_model.") else "text_model." + k)] = v
    return {k: v.detach().clone().contiguous() for k, v in sd.items()}
