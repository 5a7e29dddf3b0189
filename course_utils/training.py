"""Train a LoRA on the course model with peft + accelerate (the same loop scales to GPUs).

The pipeline passed in is never modified: the UNet and text encoder are copied, peft
``LoraConfig`` adapters are attached to the copies, and the trained adapter comes back as a
:class:`course_utils.lora.Lora` (save it with ``lora.save_kohya`` / ``lora.save_diffusers``).
Run under ``accelerate launch`` and the same code uses every GPU it is given.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from .lora.formats import Lora, UNET_ATTN_TARGETS, from_state_dict


@dataclass
class TrainResult:
    lora: Lora
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    settings: dict = field(default_factory=dict)


def encode_images(pipe, images, batch: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """VAE posterior mean and std for PIL images (cached once; sampled every step)."""
    from .shapes import to_tensor

    means, stds = [], []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            d = pipe.vae.encode(to_tensor(images[i:i + batch]).to(pipe.vae.dtype)).latent_dist
            means.append(d.mean.float())
            stds.append(d.std.float())
    return torch.cat(means), torch.cat(stds)


def train_lora(pipe, images: Sequence, captions: Sequence[str], rank: int = 4, alpha: float | None = None,
               steps: int = 300, lr: float = 1e-3, batch_size: int = 16,
               unet_targets: Sequence[str] = UNET_ATTN_TARGETS, text_encoder_targets: Sequence[str] | None = None,
               seed: int = 0, caption_dropout: float = 0.0, progress: bool = True,
               callback: Callable[[int, float], None] | None = None) -> TrainResult:
    """Train a rank-``rank`` LoRA on ``images``/``captions`` and return it with the loss history.

    ``alpha`` defaults to ``rank`` (scale 1). ``text_encoder_targets`` (e.g. ``TE_ATTN_TARGETS``)
    also trains the text encoder, which helps teach a new word. ``callback(step, loss)`` is
    called every step (the notebooks draw a live loss plot with it).
    """
    from accelerate import Accelerator
    from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model
    from tqdm.auto import tqdm

    alpha = float(rank if alpha is None else alpha)
    torch.manual_seed(seed)
    acc = Accelerator(cpu=not torch.cuda.is_available())
    lat_mean, lat_std = encode_images(pipe, list(images))
    sf = pipe.vae.config.scaling_factor
    tok = pipe.tokenizer
    ids_all = tok(list(captions), padding="max_length", max_length=tok.model_max_length, truncation=True,
                  return_tensors="pt").input_ids
    empty = tok([""], padding="max_length", max_length=tok.model_max_length, return_tensors="pt").input_ids[0]
    unet = copy.deepcopy(pipe.unet).float()
    te = copy.deepcopy(pipe.text_encoder).float()
    unet.requires_grad_(False)
    te.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(unet_targets), init_lora_weights=True))
    params = [p for p in unet.parameters() if p.requires_grad]
    if text_encoder_targets:
        # peft's own injection: transformers' add_adapter demands newer peft versions than Colab has
        inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(text_encoder_targets),
                                           init_lora_weights=True), te)
        params += [p for p in te.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 20) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / max(1, steps)))))
    unet, te, opt = acc.prepare(unet, te, opt)
    noise_sched = _ddpm()
    g = torch.Generator().manual_seed(seed + acc.process_index)  # each process draws its own batches
    losses: list[float] = []
    t0 = time.time()
    unet.train()
    te.train()
    bar = tqdm(range(steps), desc=f"training LoRA r={rank}", disable=_quiet(progress))
    for step in bar:
        idx = torch.randint(0, len(ids_all), (batch_size,), generator=g)
        lat = (lat_mean[idx] + lat_std[idx] * torch.randn(lat_mean[idx].shape, generator=g)) * sf
        ids = ids_all[idx].clone()
        if caption_dropout:
            ids[torch.rand(batch_size, generator=g) < caption_dropout] = empty
        noise = torch.randn(lat.shape, generator=g)
        t = torch.randint(0, noise_sched.config.num_train_timesteps, (batch_size,), generator=g)
        noisy = noise_sched.add_noise(lat, noise, t)
        dev = acc.device
        cond = te(ids.to(dev))[0]
        pred = unet(noisy.to(dev), t.to(dev), encoder_hidden_states=cond).sample
        loss = F.mse_loss(pred.float(), noise.to(dev))
        opt.zero_grad(set_to_none=True)
        acc.backward(loss)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % 10 == 0:
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.4f}")
        if callback:
            callback(step, losses[-1])
    unet, te = acc.unwrap_model(unet), acc.unwrap_model(te)
    sd = {f"unet.{k}": v.detach().cpu() for k, v in get_peft_model_state_dict(unet).items()}
    if text_encoder_targets:
        sd.update({f"text_encoder.{k}": v.detach().cpu() for k, v in get_peft_model_state_dict(te).items()})
    lora = from_state_dict(sd, {}, "trained", lora_alpha=alpha)
    settings = dict(rank=rank, alpha=alpha, steps=steps, lr=lr, batch_size=batch_size, seed=seed,
                    unet_targets=list(unet_targets), text_encoder_targets=list(text_encoder_targets or []),
                    num_images=len(images))
    return TrainResult(lora, losses, time.time() - t0, settings)


def _quiet(progress: bool) -> bool:
    """No progress bar if the caller says so or the environment does (TQDM_DISABLE, as in make test)."""
    import os

    return not progress or os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")


def _ddpm():
    from .model import make_scheduler

    return make_scheduler("ddpm")


def kohya_training_metadata(result: TrainResult, output_name: str, base_file=None, trigger: str = "",
                            title: str = "", description: str = "", started: float | None = None,
                            tag_frequency: dict | None = None) -> dict[str, str]:
    """The metadata sd-scripts writes for a trained LoRA: the ``ss_*`` minimum and training keys,
    ``modelspec.*`` (with the trigger phrase), and the base model's name and hashes."""
    import datetime
    import json
    import uuid
    from pathlib import Path

    from .hashes import file_hashes
    from .lora.formats import kohya_metadata

    s = result.settings
    now = time.time()
    extra = {
        "ss_session_id": str(uuid.UUID(int=s["seed"] * 7919 + s["steps"])),
        "ss_training_started_at": str(int(started if started else now - result.seconds)),
        "ss_training_finished_at": str(int(now)),
        "ss_output_name": output_name,
        "ss_learning_rate": s["lr"], "ss_unet_lr": s["lr"],
        "ss_text_encoder_lr": s["lr"] if s["text_encoder_targets"] else "None",
        "ss_num_train_images": s["num_images"], "ss_num_reg_images": 0,
        "ss_num_epochs": 1, "ss_epoch": 1, "ss_steps": s["steps"], "ss_max_train_steps": s["steps"],
        "ss_batch_size_per_device": s["batch_size"], "ss_total_batch_size": s["batch_size"],
        "ss_lr_scheduler": "cosine_with_warmup", "ss_optimizer": "torch.optim.AdamW",
        "ss_mixed_precision": "no", "ss_clip_skip": "None", "ss_seed": s["seed"], "ss_noise_offset": "None",
        "ss_resolution": "(32, 32)", "ss_network_dim": s["rank"], "ss_network_alpha": s["alpha"],
        "ss_training_comment": description or "trained with course_utils.training.train_lora (peft + accelerate)",
        "ss_tag_frequency": json.dumps(tag_frequency or {}),
        "ss_sd_scripts_commit_hash": "none (course_utils)",
        "modelspec.date": datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime("%Y-%m-%d"),
        "modelspec.description": description,
        "modelspec.license": "MIT (course material)",
        "modelspec.author": "AIGC in Practice course",
    }
    if trigger:
        extra["modelspec.trigger_phrase"] = trigger
    if not s["text_encoder_targets"]:
        extra["ss_network_train_unet_only"] = "True"
    if base_file is not None:
        h = file_hashes(base_file, progress=False)
        extra.update({"ss_sd_model_name": Path(base_file).name, "ss_new_sd_model_hash": h.sha256,
                      "ss_sd_model_hash": h.autov1 or "None"})
    return kohya_metadata(result.lora, title=title or output_name, extra=extra)


def finetune_unet(pipe, images: Sequence, captions: Sequence[str], steps: int = 150, lr: float = 3e-4,
                  batch_size: int = 16, name_filter: Sequence[str] = UNET_ATTN_TARGETS, seed: int = 0,
                  progress: bool = True):
    """Ordinary (full-weight) fine-tuning of the UNet layers whose names end with ``name_filter``.

    Returns ``(tuned_unet, losses)``; ``pipe`` is not modified. Notebook 09 extracts a LoRA from
    the difference between ``pipe.unet`` and ``tuned_unet``.
    """
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    lat_mean, lat_std = encode_images(pipe, list(images))
    sf = pipe.vae.config.scaling_factor
    tok = pipe.tokenizer
    ids_all = tok(list(captions), padding="max_length", max_length=tok.model_max_length, truncation=True,
                  return_tensors="pt").input_ids
    with torch.no_grad():
        cond_all = pipe.text_encoder(ids_all)[0]
    unet = copy.deepcopy(pipe.unet).float()
    unet.requires_grad_(False)
    params = []
    for n, p in unet.named_parameters():
        if n.endswith(".weight") and any(n[: -len(".weight")].endswith(t) for t in name_filter):
            p.requires_grad_(True)
            params.append(p)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    noise_sched = _ddpm()
    g = torch.Generator().manual_seed(seed)
    losses = []
    unet.train()
    for _ in tqdm(range(steps), desc="fine-tuning", disable=_quiet(progress)):
        idx = torch.randint(0, len(ids_all), (batch_size,), generator=g)
        lat = (lat_mean[idx] + lat_std[idx] * torch.randn(lat_mean[idx].shape, generator=g)) * sf
        noise = torch.randn(lat.shape, generator=g)
        t = torch.randint(0, noise_sched.config.num_train_timesteps, (batch_size,), generator=g)
        pred = unet(noise_sched.add_noise(lat, noise, t), t, encoder_hidden_states=cond_all[idx]).sample
        loss = F.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    unet.eval()
    unet.requires_grad_(False)
    return unet, losses
