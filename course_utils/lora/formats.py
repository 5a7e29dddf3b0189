"""Read LoRA files in any common layout into one normalised form, and write kohya / diffusers files.

Conventions followed (see the course's reference notes):

- **kohya** (sd-scripts ``networks/lora.py``): ``lora_unet_<path with _>.lora_down.weight`` /
  ``.lora_up.weight`` / ``.alpha``; text encoder ``lora_te_`` (SD1/2) or ``lora_te1_``/``lora_te2_``
  (SDXL). Scale = alpha / rank, alpha missing → scale 1.
- **diffusers** (``save_lora_weights``): ``unet.<path>.lora_A.weight`` / ``.lora_B.weight``,
  ``text_encoder.<path>…``; no alpha tensors, alpha in the ``lora_adapter_metadata`` header JSON
  (``unet.lora_alpha``…); old files use ``.lora.down.weight``/``.lora.up.weight``.
- **PEFT** (``save_pretrained``): ``base_model.model.<path>.lora_A.weight``, alpha in adapter_config.json.

Module names in the normalised form are diffusers paths with a component prefix:
``unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q`` or
``text_encoder.text_model.encoder.layers.0.self_attn.q_proj``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import torch

from ..errors import CourseError, FormatError
from ..fileio import save_safetensors_atomic  # noqa: F401  (re-exported)

KOHYA_PREFIXES = {"lora_unet": "unet", "lora_te": "text_encoder", "lora_te1": "text_encoder",
                  "lora_te2": "text_encoder_2"}
# Words joined by "_" inside one diffusers / transformers / SGM module-path segment.
_COMPOUNDS = sorted({
    "down_blocks", "up_blocks", "mid_block", "transformer_blocks", "to_q", "to_k", "to_v", "to_out",
    "proj_in", "proj_out", "text_model", "self_attn", "q_proj", "k_proj", "v_proj", "out_proj",
    "time_emb_proj", "conv_shortcut", "conv_in", "conv_out", "conv_norm_out", "time_embedding",
    "linear_1", "linear_2", "final_layer_norm", "layer_norm1", "layer_norm2", "add_embedding",
    "add_k_proj", "add_v_proj", "token_embedding", "position_embedding", "input_blocks",
    "middle_block", "output_blocks", "in_layers", "out_layers", "emb_layers", "skip_connection",
    "text_projection", "norm_out", "conv_act",
}, key=lambda s: -s.count("_"))
LYCORIS_SUFFIXES = {
    "hada_w1_a": "LoHa", "hada_w1_b": "LoHa", "hada_w2_a": "LoHa", "hada_w2_b": "LoHa",
    "hada_t1": "LoHa", "hada_t2": "LoHa", "lokr_w1": "LoKr", "lokr_w2": "LoKr", "lokr_w1_a": "LoKr",
    "lokr_w1_b": "LoKr", "lokr_w2_a": "LoKr", "lokr_w2_b": "LoKr", "lokr_t2": "LoKr",
    "on_input": "(IA)^3", "diff": "full-diff", "diff_b": "full-diff", "oft_blocks": "OFT",
    "oft_diag": "OFT", "w_norm": "norm", "b_norm": "norm", "lora_mid.weight": "LoCon (Tucker, lora_mid)",
    "dora_scale": "DoRA",
}


@dataclass
class LoraModule:
    """One adapted layer: ΔW = (alpha / rank) · up @ down (reshaped for convolutions)."""

    name: str                 # "unet.<path>" or "text_encoder.<path>"
    down: torch.Tensor        # A, lora_down: [r, in] or [r, in, kh, kw]
    up: torch.Tensor          # B, lora_up:   [out, r] or [out, r, 1, 1]
    alpha: float | None = None

    @property
    def rank(self) -> int:
        return int(self.down.shape[0])

    @property
    def scale(self) -> float:
        return 1.0 if not self.alpha else float(self.alpha) / self.rank

    @property
    def component(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def path(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def kind(self) -> str:
        if self.down.ndim == 2:
            return "linear"
        return "conv1x1" if self.down.shape[-1] == 1 and self.down.shape[-2] == 1 else f"conv{self.down.shape[-2]}x{self.down.shape[-1]}"

    def delta(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """ΔW without the scale, in ``dtype``: [out, in] or [out, in, kh, kw]."""
        up, down = self.up.to(dtype), self.down.to(dtype)
        d = up.reshape(up.shape[0], -1) @ down.reshape(down.shape[0], -1)
        if self.down.ndim == 4:
            d = d.reshape(up.shape[0], *down.shape[1:])
        return d

    def num_params(self) -> int:
        return self.down.numel() + self.up.numel()


@dataclass
class Lora:
    """A LoRA in normalised form: modules by name, the file's metadata, the format it came from."""

    modules: dict[str, LoraModule] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    format: str = "unknown"
    source: str = ""

    def __len__(self) -> int:
        return len(self.modules)

    def __iter__(self):
        return iter(self.modules.values())

    @property
    def ranks(self) -> list[int]:
        return sorted({m.rank for m in self})

    @property
    def alphas(self) -> list[float]:
        return sorted({float(m.alpha) if m.alpha else float(m.rank) for m in self})

    def components(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for m in self:
            out[m.component] = out.get(m.component, 0) + 1
        return out

    def num_params(self) -> int:
        return sum(m.num_params() for m in self)


def kohya_to_path(name: str) -> str:
    """``down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q`` → ``down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q``.

    A rule-based inverse of kohya's "replace . with _": words that belong together in
    diffusers/transformers module names (``to_q``, ``self_attn``, …) are kept joined.
    """
    parts = name.split("_")
    out, i = [], 0
    while i < len(parts):
        for comp in _COMPOUNDS:
            n = comp.count("_") + 1
            if "_".join(parts[i:i + n]) == comp:
                out.append(comp)
                i += n
                break
        else:
            out.append(parts[i])
            i += 1
    return ".".join(out)


def path_to_kohya(name: str, sdxl: bool = False) -> str:
    """``unet.down_blocks.0…to_q`` → ``lora_unet_down_blocks_0_…_to_q`` (``lora_te1_`` for SDXL's first encoder)."""
    comp, path = name.split(".", 1)
    prefix = {"unet": "lora_unet", "text_encoder": "lora_te1" if sdxl else "lora_te",
              "text_encoder_2": "lora_te2"}.get(comp)
    if prefix is None:
        raise CourseError(f"Cannot name {name!r} in kohya format: unknown component {comp!r} "
                          "(expected unet, text_encoder or text_encoder_2).")
    return f"{prefix}_{path.replace('.', '_')}"


def _lycoris_kinds(keys: Iterable[str]) -> set[str]:
    kinds = set()
    for k in keys:
        for suf, kind in LYCORIS_SUFFIXES.items():
            if k.endswith("." + suf) or k.endswith("." + suf + ".weight"):
                kinds.add(kind)
    return kinds


def canonical_name(component: str, path: str) -> str:
    """``component.path`` with text-encoder paths in the standard ``text_model.…`` form.

    transformers ≥ 5.6 flattened ``CLIPTextModel`` (its modules are ``encoder.layers.…``), while
    LoRA files everywhere use ``text_model.encoder.layers.…``; names are stored the file way.
    """
    if component.startswith("text_encoder") and path.startswith(("encoder.", "embeddings.", "final_layer_norm")):
        path = "text_model." + path
    return f"{component}.{path}"


def _guess_component(path: str) -> str:
    return "text_encoder" if path.startswith(("text_model", "encoder.layers")) else "unet"


def _float_meta(meta: Mapping[str, str], key: str) -> float | None:
    try:
        return float(meta[key])
    except (KeyError, TypeError, ValueError):
        return None


def _diffusers_alphas(meta: Mapping[str, str]) -> dict[str, tuple[float | None, dict]]:
    """component → (lora_alpha, alpha_pattern) from diffusers' ``lora_adapter_metadata`` header entry."""
    raw = meta.get("lora_adapter_metadata")
    if not raw:
        return {}
    try:
        d = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    out = {}
    for comp in ("unet", "text_encoder", "text_encoder_2"):
        a = d.get(f"{comp}.lora_alpha")
        if a is not None:
            out[comp] = (float(a), d.get(f"{comp}.alpha_pattern") or {})
    if not out and "lora_alpha" in d:
        out["*"] = (float(d["lora_alpha"]), d.get("alpha_pattern") or {})
    return out


def from_state_dict(sd: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None,
                    source: str = "", lora_alpha: float | None = None, unsupported: str = "raise") -> Lora:
    """Normalise a LoRA state dict in kohya, diffusers (new or old) or PEFT layout.

    ``lora_alpha`` applies to PEFT/diffusers files that carry no alpha (the adapter config's
    value). LyCORIS algorithms other than plain LoRA raise a ``CourseError`` naming them
    (``unsupported="ignore"`` skips them instead, for inspection).
    """
    meta = dict(metadata or {})
    keys = list(sd.keys())
    if not keys:
        raise FormatError(f"{source or 'This state dict'} holds no tensors, so it is not a LoRA.")
    lyco = _lycoris_kinds(keys)
    if lyco and unsupported == "raise":
        raise CourseError(
            f"{source or 'This file'} uses LyCORIS / extended algorithms ({', '.join(sorted(lyco))}), "
            "not plain LoRA (lora_down/lora_up). course_utils merges plain LoRA and LoCon only; load it in "
            "A1111, ComfyUI or the LyCORIS library, or ask for a plain LoRA version.")
    groups: dict[str, dict[str, torch.Tensor]] = {}
    fmt = None
    for k in keys:
        t = sd[k]
        m = re.match(r"^(lora_unet|lora_te1|lora_te2|lora_te)_(.+?)\.(lora_down\.weight|lora_up\.weight|alpha)$", k)
        if m:
            fmt = fmt or "kohya"
            comp = KOHYA_PREFIXES[m.group(1)]
            name = canonical_name(comp, kohya_to_path(m.group(2)))
            groups.setdefault(name, {})[{"lora_down.weight": "down", "lora_up.weight": "up", "alpha": "alpha"}[m.group(3)]] = t
            continue
        m = re.match(r"^(.+?)\.(lora_A|lora_B|lora\.down|lora\.up|lora_down|lora_up)(\.[^.]+)?\.weight$", k) \
            or re.match(r"^(.+?)\.(alpha)$", k)
        if m:
            path = m.group(1)
            if path.startswith("base_model.model."):
                fmt = fmt or "peft"
                path = path[len("base_model.model."):]
            else:
                fmt = fmt or ("diffusers-old" if ".lora." in k else "diffusers")
            comp, rest = (path.split(".", 1) if path.split(".", 1)[0] in ("unet", "text_encoder", "text_encoder_2")
                          else (_guess_component(path), path))
            role = {"lora_A": "down", "lora.down": "down", "lora_down": "down", "lora_B": "up",
                    "lora.up": "up", "lora_up": "up", "alpha": "alpha"}[m.group(2)]
            groups.setdefault(canonical_name(comp, rest), {})[role] = t
            continue
        if lyco or k.endswith(("dora_scale", "lora_mid.weight")):
            continue
        raise FormatError(
            f"{source or 'This file'}: key {k!r} is not a LoRA key (expected kohya lora_down/lora_up/alpha, "
            "diffusers/PEFT lora_A/lora_B). Is this a full model checkpoint rather than a LoRA?")
    d_alphas = _diffusers_alphas(meta)
    lora = Lora(metadata=meta, format=fmt or "unknown", source=source)
    for name, g in groups.items():
        if "down" not in g or "up" not in g:
            if unsupported == "ignore":
                continue
            missing = "lora_up (B)" if "up" not in g else "lora_down (A)"
            raise FormatError(f"{source or 'This LoRA'}: module {name} has no {missing} tensor; the file is incomplete.")
        alpha = float(g["alpha"]) if "alpha" in g else None
        if alpha is None and d_alphas:
            comp = name.split(".", 1)[0]
            base_alpha, pattern = d_alphas.get(comp, d_alphas.get("*", (None, {})))
            path = name.split(".", 1)[1]
            alpha = next((float(v) for pat, v in pattern.items() if path.endswith(pat) or re.search(pat, path)), base_alpha)
        if alpha is None and lora_alpha is not None:
            alpha = float(lora_alpha)
        down, up = g["down"], g["up"]
        if up.shape[1] != down.shape[0]:
            raise FormatError(f"{source or 'This LoRA'}: module {name} has lora_up {tuple(up.shape)} and lora_down "
                              f"{tuple(down.shape)}: their ranks ({up.shape[1]} vs {down.shape[0]}) differ.")
        lora.modules[name] = LoraModule(name, down, up, alpha)
    return lora


def read_lora(src, lora_alpha: float | None = None, unsupported: str = "raise") -> Lora:
    """Read a LoRA from a path (``.safetensors``, or a pickle via ``torch.load(weights_only=True)``),
    a state dict, or pass a :class:`Lora` through unchanged."""
    if isinstance(src, Lora):
        return src
    if isinstance(src, Mapping):
        return from_state_dict(src, {}, "state dict", lora_alpha, unsupported)
    path = Path(src)
    if path.is_dir():
        for cand in ("pytorch_lora_weights.safetensors", "adapter_model.safetensors"):
            if (path / cand).is_file():
                if cand == "adapter_model.safetensors" and lora_alpha is None and (path / "adapter_config.json").is_file():
                    lora_alpha = json.loads((path / "adapter_config.json").read_text()).get("lora_alpha")
                path = path / cand
                break
        else:
            raise CourseError(f"{src} is a folder without pytorch_lora_weights.safetensors or adapter_model.safetensors.")
    if not path.is_file():
        raise CourseError(f"No LoRA file at {src}. Check the path (A1111 keeps LoRAs in models/Lora).")
    from ..weights import load_state_dict, read_safetensors_metadata  # lazy: weights is a lower layer

    meta = read_safetensors_metadata(path)
    sd = load_state_dict(path)
    return from_state_dict(sd, meta, path.name, lora_alpha, unsupported)


def to_kohya(lora, sdxl: bool = False) -> dict[str, torch.Tensor]:
    """Kohya-format tensors: ``lora_down``/``lora_up`` as stored, ``alpha`` as a 0-d tensor.

    Alpha is kept exactly (modules without alpha get alpha = rank, the same scale 1.0), so
    ``read_lora(to_kohya(x))`` gives back the same modules and scales.
    """
    lora = read_lora(lora)
    out: dict[str, torch.Tensor] = {}
    for m in lora:
        k = path_to_kohya(m.name, sdxl=sdxl)
        out[f"{k}.lora_down.weight"] = m.down.contiguous()
        out[f"{k}.lora_up.weight"] = m.up.contiguous()
        out[f"{k}.alpha"] = torch.tensor(float(m.alpha if m.alpha else m.rank), dtype=torch.float32)
    return out


def to_diffusers(lora) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """diffusers ``pytorch_lora_weights.safetensors`` tensors plus the header metadata.

    diffusers files store no alpha tensors; a scale other than 1 is written in
    ``lora_adapter_metadata`` (``{component}.lora_alpha`` with an ``alpha_pattern`` for
    modules that differ) so diffusers ≥ 0.33 and course_utils read it back exactly.
    """
    lora = read_lora(lora)
    out: dict[str, torch.Tensor] = {}
    adapter_meta: dict[str, object] = {}
    by_comp: dict[str, list[LoraModule]] = {}
    for m in lora:
        out[f"{m.name}.lora_A.weight"] = m.down.contiguous()
        out[f"{m.name}.lora_B.weight"] = m.up.contiguous()
        by_comp.setdefault(m.component, []).append(m)
    for comp, mods in by_comp.items():
        ranks = {m.rank for m in mods}
        r = max(ranks, key=lambda x: sum(m.rank == x for m in mods))
        alphas = [float(m.alpha if m.alpha else m.rank) for m in mods]
        a = max(set(alphas), key=alphas.count)
        adapter_meta[f"{comp}.r"] = r
        adapter_meta[f"{comp}.lora_alpha"] = a
        # full module paths (peft matches them as suffixes), without "text_model." so they also
        # match the flattened CLIPTextModel of transformers >= 5.6
        adapter_meta[f"{comp}.target_modules"] = sorted(m.path.removeprefix("text_model.") for m in mods)
        adapter_meta[f"{comp}.rank_pattern"] = {m.path: m.rank for m in mods if m.rank != r}
        adapter_meta[f"{comp}.alpha_pattern"] = {m.path: float(m.alpha if m.alpha else m.rank) for m in mods
                                                 if float(m.alpha if m.alpha else m.rank) != a}
    meta = {"format": "pt", "lora_adapter_metadata": json.dumps(adapter_meta, indent=2, sort_keys=True)}
    return out, meta


def kohya_metadata(lora, base_version: str = "sd_v1", architecture: str = "stable-diffusion-v1/lora",
                   title: str = "", extra: Mapping[str, object] | None = None) -> dict[str, str]:
    """The metadata kohya sd-scripts writes: the ``ss_*`` minimum keys, ``modelspec.*`` and, once
    the tensors are known, ``sshs_model_hash``/``sshs_legacy_hash`` (see :func:`save_kohya`).

    ``extra`` adds or overrides keys (training info: ``ss_steps``, ``ss_learning_rate``, …;
    ``modelspec.trigger_phrase``); every value is stored as a string, as sd-scripts does.
    """
    lora = read_lora(lora)
    ranks, alphas = lora.ranks, lora.alphas
    meta: dict[str, object] = {
        "ss_v2": "False",
        "ss_base_model_version": base_version,
        "ss_network_module": "networks.lora",
        "ss_network_dim": ranks[0] if len(ranks) == 1 else max(ranks),
        "ss_network_alpha": alphas[0] if len(alphas) == 1 else max(alphas),
        "ss_network_args": json.dumps({}),
        "modelspec.sai_model_spec": "1.0.1",
        "modelspec.architecture": architecture,
        "modelspec.implementation": "https://github.com/Stability-AI/generative-models",
        "modelspec.title": title or "LoRA",
        "modelspec.resolution": "32x32",
    }
    if "text_encoder" not in lora.components():
        meta["ss_network_train_unet_only"] = "True"
    meta.update(dict(extra or {}))
    return {k: (json.dumps(v) if isinstance(v, (dict, list)) else str(v)) for k, v in meta.items()}


def save_kohya(lora, path, metadata: Mapping[str, object] | None = None, sdxl: bool = False):
    """Write a kohya-format ``.safetensors`` LoRA atomically, with ``sshs_model_hash``/``sshs_legacy_hash``
    computed the way sd-scripts does (the hash of the tensor data, independent of the header)."""
    import hashlib

    from ..hashes import safetensors_data_hash

    tensors = to_kohya(lora, sdxl=sdxl)
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta["sshs_model_hash"] = safetensors_data_hash(tensors)
    from safetensors.torch import save

    blob = save(tensors, metadata={k: v for k, v in meta.items() if k.startswith("ss_")})
    meta["sshs_legacy_hash"] = hashlib.sha256(blob[0x100000:0x110000]).hexdigest()[:8]
    return save_safetensors_atomic(tensors, path, meta)


def save_diffusers(lora, folder) -> Path:
    """Write ``folder/pytorch_lora_weights.safetensors`` in diffusers' layout (alpha in the header)."""
    tensors, meta = to_diffusers(lora)
    return save_safetensors_atomic(tensors, Path(folder) / "pytorch_lora_weights.safetensors", meta)


UNET_ATTN_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
TE_ATTN_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")


def synthetic_lora(components: Mapping[str, torch.nn.Module], rank: int = 4, alpha: float | None = None,
                   targets: Iterable[str] = UNET_ATTN_TARGETS + TE_ATTN_TARGETS, seed: int = 0,
                   std: float = 0.02) -> Lora:
    """A random LoRA with the right names and shapes for ``components`` (``{"unet": unet, …}``).

    For tests and demonstrations only (no training): up and down are random, so the change is
    visible. Works on modules built on the ``meta`` device (then the tensors are real, on CPU).
    """
    g = torch.Generator().manual_seed(seed)
    targets = tuple(targets)
    lora = Lora(format="synthetic")
    for comp, mod in components.items():
        for name, m in mod.named_modules():
            if not any(name == t or name.endswith("." + t) for t in targets):
                continue
            factors = random_factors(m, rank, g, std)
            if factors is None:
                continue
            full = canonical_name(comp, name)
            lora.modules[full] = LoraModule(full, *factors, alpha)
    return lora


def random_factors(m: torch.nn.Module, rank: int, g: torch.Generator, std: float):
    """Random (down, up) with the shapes a kohya LoRA uses for ``m`` (Linear or Conv2d), else None."""
    if isinstance(m, torch.nn.Linear):
        return (torch.randn(rank, m.in_features, generator=g) * std, torch.randn(m.out_features, rank, generator=g) * std)
    if isinstance(m, torch.nn.Conv2d):
        return (torch.randn(rank, m.in_channels, *m.kernel_size, generator=g) * std,
                torch.randn(m.out_channels, rank, 1, 1, generator=g) * std)
    return None
