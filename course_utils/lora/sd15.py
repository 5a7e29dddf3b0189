"""Full-size Stable Diffusion 1.5 shapes built locally (no download), and kohya LoRAs made for them.

Used by tests and benchmarks to show course_utils works unchanged on real SD 1.x sizes.
"""

from __future__ import annotations

import torch

from .formats import Lora, LoraModule, canonical_name, random_factors

# kohya's default LoRA targets (networks/lora.py): Linear and 1x1 Conv inside Transformer2DModel
# blocks of the UNet, and the attention + MLP of every CLIP text-encoder layer.
KOHYA_UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2")
KOHYA_TE_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")


def sd15_unet(device: str = "cpu", seed: int = 0):
    """SD 1.5's UNet: ``UNet2DConditionModel(cross_attention_dim=768)``, 859,520,964 parameters, random init."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    with torch.device(device):
        return UNet2DConditionModel(cross_attention_dim=768)


def sd15_text_encoder(device: str = "cpu", seed: int = 0):
    """SD 1.x's CLIP ViT-L/14 text encoder: hidden 768, 12 layers, 123,060,480 parameters, random init."""
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    with torch.device(device):
        return CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                            num_attention_heads=12, max_position_embeddings=77, projection_dim=768))


def kohya_lora_for(components: dict, rank: int = 32, alpha: float = 16.0, seed: int = 0, std: float = 0.01) -> Lora:
    """A random rank-``rank`` LoRA on kohya's default targets of ``components`` (``{"unet": …, "text_encoder": …}``).

    For SD 1.5 that is 192 UNet + 72 text-encoder modules = 264; ``proj_in``/``proj_out`` are
    1×1 convolutions in SD 1.x, so their LoRA tensors are 4-D, exactly as in kohya files.
    """
    g = torch.Generator().manual_seed(seed)
    lora = Lora(format="synthetic-kohya")
    for comp, mod in components.items():
        targets = KOHYA_UNET_TARGETS if comp == "unet" else KOHYA_TE_TARGETS
        for name, m in mod.named_modules():
            if comp == "unet" and ".attentions." not in f".{name}":
                continue
            if not any(name.endswith("." + t) for t in targets):
                continue
            if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1):
                continue  # kohya's default (LierLa) adapts 1x1 convs only
            factors = random_factors(m, rank, g, std)
            if factors is None:
                continue
            full = canonical_name(comp, name)
            lora.modules[full] = LoraModule(full, *factors, alpha)
    return lora
