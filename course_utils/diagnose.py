"""``diagnose(path, base=None)``: the one call for "my LoRA / checkpoint won't load".

Runs, in order: does the file exist; what is it really (format by content, extension check);
is it safe (pickle scan); is it intact (safetensors header, ``sshs_model_hash`` vs the data);
what LoRA is it (format, algorithm, rank, base model); and, given a base, does it fit (match
report). Stops at the first blocking problem and prints a short verdict with the fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CourseError


@dataclass
class DiagnoseReport:
    path: str
    ok: bool = True
    verdict: str = ""
    fix: str = ""
    checks: list[tuple[str, str, str]] = field(default_factory=list)  # (check, OK/WARN/FAIL, detail)
    kind: str = ""
    lora: dict | None = None

    def add(self, check: str, status: str, detail: str) -> None:
        self.checks.append((check, status, detail))
        if status == "FAIL":
            self.ok = False

    def as_dict(self) -> dict:
        return {"path": self.path, "ok": self.ok, "verdict": self.verdict, "fix": self.fix, "kind": self.kind,
                "checks": [{"check": c, "status": s, "detail": d} for c, s, d in self.checks], "lora": self.lora}

    def __str__(self) -> str:
        w = max([len(c) for c, _, _ in self.checks] + [5])
        lines = [f"{c:<{w}}  {s:<4}  {d}" for c, s, d in self.checks]
        lines.append(f"verdict: {self.verdict}")
        if self.fix:
            lines.append(f"fix:     {self.fix}")
        return "\n".join(lines)


def _fail(rep: DiagnoseReport, check: str, detail: str, verdict: str, fix: str) -> DiagnoseReport:
    rep.add(check, "FAIL", detail)
    rep.verdict, rep.fix = verdict, fix
    return rep


def _load_base(base):
    if base is None or not isinstance(base, (str, os.PathLike)):
        return base
    p = Path(base)
    if p.is_dir():
        from .model import load_pipeline

        return load_pipeline(folder=p)
    from .weights import load_state_dict

    return load_state_dict(p)


def diagnose(path: str | os.PathLike, base=None, verbose: bool = True) -> DiagnoseReport:
    """Check a weights or LoRA file step by step; print and return a :class:`DiagnoseReport`.

    ``base`` (a pipeline, a state dict, a diffusers folder or a weights file) adds the match
    check: does every LoRA module find a layer of the right shape?
    """
    rep = _diagnose(DiagnoseReport(str(path)), Path(path), base)
    if verbose:
        print(rep)
    return rep


def _diagnose(rep: DiagnoseReport, p: Path, base) -> DiagnoseReport:
    from .hashes import file_hashes
    from .safety import scan_pickle
    from .weights import detect_format, read_safetensors_header

    if not p.exists():
        near = sorted(x.name for x in p.parent.glob("*")) if p.parent.is_dir() else []
        return _fail(rep, "file exists", f"no file at {p}", "the path is wrong",
                     "check the file name and folder" + (f"; that folder holds: {', '.join(near[:6])}" if near else
                                                         f"; the folder {p.parent} does not exist either") +
                     ". A1111 wants LoRAs in models/Lora and checkpoints in models/Stable-diffusion.")
    if p.is_dir():
        return _fail(rep, "file exists", f"{p} is a folder", "a folder, not a file",
                     "pass the .safetensors file inside it (diffusers folders load with from_pretrained)")
    rep.add("file exists", "OK", f"{p.stat().st_size:,} bytes")
    fi = detect_format(p)
    if fi.format == "truncated":
        return _fail(rep, "format", f"{fi.description}: {fi.detail}", "the file is corrupt or incomplete (truncated download)",
                     fi.advice)
    if fi.format not in ("safetensors", "torch-zip", "torch-legacy", "pickle"):
        return _fail(rep, "format", fi.description, f"not a weights file: {fi.description}", fi.advice)
    rep.add("format", "OK" if fi.extension_ok else "WARN", fi.description +
            ("" if fi.extension_ok else f" (but named {p.suffix}: {fi.advice})"))
    if fi.format != "safetensors":
        scan = scan_pickle(p)
        if scan.verdict == "dangerous":
            return _fail(rep, "safety", f"pickle imports {', '.join(scan.dangerous[:4])}", "DANGEROUS: do not load this file",
                         "delete it; ask for a .safetensors version from a source you trust")
        if fi.format == "pickle":
            return _fail(rep, "safety", "bare pickle, not a PyTorch checkpoint", "not a weights file",
                         "ask for a .safetensors file")
        rep.add("safety", "OK" if scan.verdict == "safe" else "WARN",
                f"pickle scan: {scan.verdict}" + (f" ({', '.join(scan.suspicious[:3])})" if scan.suspicious else ""))
    meta = {}
    if fi.format == "safetensors":
        try:
            tensors, meta, _ = read_safetensors_header(p)
        except CourseError as e:
            return _fail(rep, "integrity", str(e), "the file is corrupt or incomplete",
                         "download it again and compare its SHA-256 with the one the site shows")
        want = meta.get("sshs_model_hash")
        if want:
            got = file_hashes(p, progress=False).autov3
            if got != want:
                return _fail(rep, "integrity", f"tensor data hash {got[:12]} != sshs_model_hash {want[:12]} in the metadata",
                             "the tensor data changed after the file was saved (corrupt or tampered)",
                             "download it again; if it persists, the file on the site is damaged")
            rep.add("integrity", "OK", f"header valid; data hash matches sshs_model_hash ({want[:12]})")
        else:
            rep.add("integrity", "OK", "header valid (no sshs_model_hash to compare)")
        keys = list(tensors)
    else:
        from .weights import load_state_dict

        try:
            keys = list(load_state_dict(p))
        except CourseError as e:
            return _fail(rep, "integrity", str(e).split(". ")[0], "cannot be loaded", str(e))
        rep.add("integrity", "OK", "loads with torch.load(weights_only=True)")
    is_lora = any(k.endswith(("lora_down.weight", "lora_A.weight", "lora.down.weight", ".hada_w1_a", ".lokr_w1",
                              ".lokr_w1_a", ".diff", ".oft_blocks", ".on_input")) for k in keys)
    if not is_lora:
        rep.kind = "checkpoint"
        rep.add("kind", "OK", f"full weights, {len(keys)} tensors (not a LoRA)")
        rep.verdict = rep.verdict or "looks fine: a full weights file (put it with the checkpoints, not the LoRAs)"
        return rep
    rep.kind = "lora"
    from .lora import describe, merge, read_lora, unmerge
    from .lora.formats import _lycoris_kinds

    lyco = _lycoris_kinds(keys)
    try:
        lo = read_lora(p)
    except CourseError as e:
        if lyco:
            return _fail(rep, "LoRA", f"LyCORIS algorithm(s): {', '.join(sorted(lyco))}",
                         f"a LyCORIS file ({', '.join(sorted(lyco))}), not plain LoRA",
                         "load it in A1111 (built-in Lora extension) or ComfyUI, which read LyCORIS; diffusers' "
                         "load_lora_weights and course_utils only take plain LoRA/LoCon")
        return _fail(rep, "LoRA", str(e), "not a readable LoRA", str(e))
    d = describe(lo)
    rep.lora = d
    rep.add("LoRA", "OK", f"{d['format']}, {d['modules']} modules {d['components']}, rank {d['ranks']}, "
            f"alpha {d['alphas']}" + (f", trigger: {', '.join(d['trigger_words'])}" if d["trigger_words"] else ""))
    rep.add("made for", "OK", f"{d['base']} ({'; '.join(d['evidence'][:2])})")
    if base is not None:
        model = _load_base(base)
        mr = merge(model, [(lo, 1.0)], strict=False)
        unmerge(model, mr)
        if mr.shape_mismatches or not mr.matched:
            what = (f"{len(mr.shape_mismatches)} modules have the wrong shape" if mr.shape_mismatches
                    else f"none of its {len(mr.unmatched)} modules exist in the base")
            return _fail(rep, "fits base", what, f"wrong base model: this LoRA was made for {d['base']}",
                         f"use it with {'an' if d['base'].startswith('SD') else 'a'} {d['base']} checkpoint, or find a version of the LoRA for your base")
        rep.add("fits base", "OK" if not mr.unmatched else "WARN",
                f"{len(mr.matched)} modules match" + (f", {len(mr.unmatched)} have no target" if mr.unmatched else ""))
    rep.verdict = "looks fine: " + ("it fits the base" if base is not None else f"a LoRA for {d['base']}")
    return rep


def make_broken_files(folder: str | os.PathLike) -> dict[str, Path]:
    """Real broken or mismatched files, made from the course's own data, for notebook 10 and its tests.

    Returns name -> path: ``truncated``, ``lfs_pointer``, ``html_page``, ``renamed_ckpt``,
    ``lora_in_checkpoint_folder``, ``sdxl_lora``, ``loha_lora``, ``tampered``.
    """
    import torch

    from . import paths
    from .lora.formats import save_kohya, kohya_metadata, synthetic_lora

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ring = (paths.loras_dir() / "ring.safetensors").read_bytes()
    out: dict[str, Path] = {}

    def write(name, data):
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return p

    out["truncated"] = write("downloads/ring.safetensors", ring[: len(ring) * 2 // 5])
    out["lfs_pointer"] = write("clone/ring.safetensors", (
        "version https://git-lfs.github.com/spec/v1\n"
        f"oid sha256:{__import__('hashlib').sha256(ring).hexdigest()}\nsize {len(ring)}\n").encode())
    out["html_page"] = write("browser/ring.safetensors", b"<!DOCTYPE html>\n<html><head><title>Log in to continue"
                             b"</title></head><body>Please log in to download this model.</body></html>\n")
    out["renamed_ckpt"] = write("renamed/ring.ckpt", ring)
    out["lora_in_checkpoint_folder"] = write("webui/models/Stable-diffusion/ring.safetensors", ring)
    tampered = bytearray(ring)
    tampered[-100] ^= 0x40
    out["tampered"] = write("tampered/ring.safetensors", bytes(tampered))
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.device("meta"):
        xl_unet = UNet2DConditionModel(block_out_channels=(320, 640), cross_attention_dim=2048, layers_per_block=1,
                                       down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                       up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
        te1 = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=1, num_attention_heads=12))
        te2 = CLIPTextModel(CLIPTextConfig(hidden_size=1280, intermediate_size=5120, num_hidden_layers=1, num_attention_heads=20))
    xl = synthetic_lora({"unet": xl_unet, "text_encoder": te1, "text_encoder_2": te2}, rank=4,
                        targets=("to_k", "to_v", "q_proj"), seed=1)
    out["sdxl_lora"] = save_kohya(xl, folder / "civitai" / "xl_style.safetensors",
                                  kohya_metadata(xl, base_version="sdxl_base_v1-0",
                                                 architecture="stable-diffusion-xl-v1-base/lora", title="an SDXL LoRA"),
                                  sdxl=True)
    g = torch.Generator().manual_seed(2)
    loha = {}
    for mod in ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q",
                "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_k"):
        for k, shape in (("hada_w1_a", (32, 4)), ("hada_w1_b", (4, 32)), ("hada_w2_a", (32, 4)), ("hada_w2_b", (4, 32))):
            loha[f"{mod}.{k}"] = torch.randn(*shape, generator=g) * 0.1
        loha[f"{mod}.alpha"] = torch.tensor(4.0)
    from .fileio import save_safetensors_atomic

    out["loha_lora"] = save_safetensors_atomic(loha, folder / "lycoris" / "loha_style.safetensors",
                                               {"ss_network_module": "lycoris.kohya",
                                                "ss_network_args": '{"algo": "loha"}'})
    return out
