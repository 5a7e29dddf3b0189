"""The course model: a tiny text-to-image model with Stable Diffusion 1.x's architecture.

It is built from the real classes (diffusers ``UNet2DConditionModel`` with
``CrossAttnDownBlock2D``/``CrossAttnUpBlock2D``, ``AutoencoderKL``, transformers
``CLIPTextModel``/``CLIPTokenizer``) so every module is named as in SD 1.x
(``down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q``, ...), and LoRA files made
for it have real key names. It draws 32 x 32 images from 8 x 8 x 4 latents.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .errors import CourseError
from . import paths

UNET_CONFIG = dict(
    sample_size=8,
    in_channels=4,
    out_channels=4,
    layers_per_block=1,
    block_out_channels=(32, 64),
    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=32,
    attention_head_dim=8,
    norm_num_groups=32,
)
VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 3,
    up_block_types=("UpDecoderBlock2D",) * 3,
    block_out_channels=(32, 64, 64),
    latent_channels=4,
    layers_per_block=1,
    norm_num_groups=32,
    sample_size=32,
)
TEXT_CONFIG = dict(
    hidden_size=32,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    projection_dim=32,
)
# Stable Diffusion 1.x's noise schedule.
SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    prediction_type="epsilon",
    steps_offset=1,
    timestep_spacing="leading",
)
IMAGE_SIZE = 32

_BOS, _EOS = "<|startoftext|>", "<|endoftext|>"


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def build_tokenizer_files(folder: str | os.PathLike, words: list[str] | None = None) -> Path:
    """Write a CLIP-compatible BPE tokenizer (``vocab.json``, ``merges.txt``) for the course words.

    Follows CLIP's conventions (byte-level alphabet, ``</w>`` end-of-word suffix, every
    ``<byte></w>`` entry, ``<|startoftext|>``/``<|endoftext|>`` last) so that
    ``CLIPTokenizer.from_pretrained(folder)`` loads it offline. Unknown words fall back to
    byte pieces, as in the real CLIP tokenizer.
    """
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

    from .shapes import vocabulary

    words = sorted(set(words or vocabulary()))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(end_of_word_suffix="</w>", continuing_subword_prefix=""))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"),
                             behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    trainer = trainers.BpeTrainer(vocab_size=100_000, min_frequency=1, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  end_of_word_suffix="</w>", special_tokens=[])
    tok.train_from_iterator([" ".join(words)] * 4, trainer=trainer)
    merges = json.loads(tok.to_str())["model"]["merges"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    byte_chars = list(_bytes_to_unicode().values())
    vocab_list = byte_chars + [c + "</w>" for c in byte_chars]
    seen = set(vocab_list)
    for m in merges:
        t = m.replace(" ", "")
        if t not in seen:
            vocab_list.append(t)
            seen.add(t)
    vocab_list += [_BOS, _EOS]
    vocab = {t: i for i, t in enumerate(vocab_list)}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=0), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    cfg = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "bos_token": _BOS,
        "eos_token": _EOS,
        "unk_token": _EOS,
        "pad_token": _EOS,
        "do_lower_case": True,
        "clean_up_tokenization_spaces": False,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    (folder / "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": _BOS, "eos_token": _EOS, "unk_token": _EOS, "pad_token": _EOS}, indent=2),
        encoding="utf-8")
    return folder


def build_pipeline(tokenizer_dir: str | os.PathLike | None = None, seed: int = 0):
    """A randomly initialised course pipeline (for tests and for training from scratch).

    ``tokenizer_dir`` defaults to the shipped tokenizer; if that does not exist yet a fresh
    one is built in a temporary folder.
    """
    import tempfile

    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    if tokenizer_dir is None:
        try:
            tokenizer_dir = paths.model_dir() / "tokenizer"
        except CourseError:
            tokenizer_dir = None
        if tokenizer_dir is None or not Path(tokenizer_dir).is_dir():
            tokenizer_dir = build_tokenizer_files(tempfile.mkdtemp(prefix="course-tok-"))
    tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_dir))
    torch.manual_seed(seed)
    vocab = tokenizer.get_vocab()
    text_cfg = CLIPTextConfig(vocab_size=len(vocab), bos_token_id=vocab[_BOS],
                              eos_token_id=vocab[_EOS], pad_token_id=vocab[_EOS], **TEXT_CONFIG)
    text_encoder = CLIPTextModel(text_cfg)
    unet = UNet2DConditionModel(**UNET_CONFIG)
    vae = AutoencoderKL(**VAE_CONFIG)
    scheduler = make_scheduler("dpm")
    return StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   unet=unet, scheduler=scheduler, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)


SCHEDULERS = {
    "dpm": "DPMSolverMultistepScheduler",
    "ddim": "DDIMScheduler",
    "pndm": "PNDMScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler_a": "EulerAncestralDiscreteScheduler",
    "ddpm": "DDPMScheduler",
}


def make_scheduler(name: str = "dpm", config: dict | None = None):
    """A diffusers scheduler by short name (``dpm``, ``ddim``, ``pndm``, ``euler``, ``euler_a``, ``ddpm``)
    with the course model's (= SD 1.x's) noise schedule."""
    import diffusers

    if name not in SCHEDULERS:
        raise CourseError(f"Unknown scheduler {name!r}. Choose one of: {', '.join(SCHEDULERS)}.")
    cls = getattr(diffusers, SCHEDULERS[name])
    cfg = dict(SCHEDULER_CONFIG)
    if config:
        cfg.update({k: v for k, v in config.items() if not k.startswith("_")})
    extra = {"pndm": {"skip_prk_steps": True}, "ddim": {"set_alpha_to_one": False, "clip_sample": False},
             "ddpm": {"clip_sample": False}}.get(name, {})
    cfg.update(extra)
    return cls.from_config(cfg)


class quiet_loading:
    """Hide diffusers/transformers loading progress bars and deprecation chatter for a moment."""

    def __enter__(self):
        import warnings

        from diffusers.utils import logging as dlog
        from transformers.utils import logging as tlog

        self._d, self._t = dlog.is_progress_bar_enabled(), tlog.is_progress_bar_enabled()
        dlog.disable_progress_bar()
        tlog.disable_progress_bar()
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.filterwarnings("ignore", category=FutureWarning)
        return self

    def __exit__(self, *exc):
        from diffusers.utils import logging as dlog
        from transformers.utils import logging as tlog

        self._w.__exit__(*exc)
        if self._d:
            dlog.enable_progress_bar()
        if self._t:
            tlog.enable_progress_bar()
        return False


def load_pipeline(device: str = "cpu", dtype: torch.dtype = torch.float32, folder=None):
    """Load the shipped course model from ``data/course-model`` fully offline.

    Returns a ``diffusers.StableDiffusionPipeline`` with no safety checker.
    """
    from diffusers import StableDiffusionPipeline

    folder = Path(folder) if folder is not None else paths.model_dir()
    if not (folder / "model_index.json").is_file():
        raise CourseError(
            f"No course model at {folder} (model_index.json missing). The weights ship in the "
            "repository's data/ folder: run from a clone, or re-run scripts/train_course_model.py.")
    kw = {} if dtype == torch.float32 else {"torch_dtype": dtype}
    with quiet_loading():
        pipe = StableDiffusionPipeline.from_pretrained(
            str(folder), local_files_only=True, safety_checker=None, requires_safety_checker=False, **kw)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def generate(pipe, prompts, seed: int | list[int] = 0, steps: int = 20, guidance_scale: float = 5.0,
             negative_prompt=None, lora=None, lora_scale: float = 1.0, output_type: str = "pil",
             progress: bool = False, **kw):
    """Generate images with ``pipe``; returns a list of PIL images (one per prompt).

    ``seed`` is one int for all prompts (seed, seed+1, ...) or one per prompt, so an image
    depends only on its own prompt and seed. ``lora`` is a path, state dict or a list of
    ``(lora, strength)``; it is merged for this call and removed afterwards (the pipeline is
    left exactly as it was). ``progress=True`` shows diffusers' step progress bar.
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = list(prompts)
    seeds = list(seed) if isinstance(seed, (list, tuple)) else [seed + i for i in range(len(prompts))]
    if len(seeds) != len(prompts):
        raise CourseError(f"Got {len(prompts)} prompts but {len(seeds)} seeds: give one seed per prompt.")
    gens = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    pipe.set_progress_bar_config(disable=not progress)
    backup = None
    if lora is not None:
        from . import lora as lora_mod

        pairs = lora if isinstance(lora, list) else [(lora, lora_scale)]
        backup = lora_mod.merge(pipe, pairs)
    try:
        with torch.no_grad():
            out = pipe(prompts, num_inference_steps=steps, guidance_scale=guidance_scale,
                       negative_prompt=([negative_prompt] * len(prompts)) if isinstance(negative_prompt, str)
                       else negative_prompt, generator=gens, output_type=output_type, **kw)
    finally:
        if backup is not None:
            from . import lora as lora_mod

            lora_mod.unmerge(pipe, backup)
    return out.images
