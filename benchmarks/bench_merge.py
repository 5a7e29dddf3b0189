"""Merging a rank-32 SD 1.5 LoRA (264 modules, kohya file) into full-size UNet + text encoder on CPU.

    python benchmarks/bench_merge.py [--repeats 3]

Compares, in one run, ``course_utils.lora.merge`` (read the file, W += s·(α/r)·up@down in
fp32, keep a backup for unmerge) with the named alternative: diffusers
``load_lora_weights`` + ``fuse_lora(lora_scale=s)`` (+ ``unload_lora_weights`` so the result is
a plain model again). Also reports course_utils' time against the memory-bandwidth floor:
(bytes of touched weights read + written + backed up + LoRA bytes read) / measured copy bandwidth.
Run on an idle machine; it needs about 6 GB of memory.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from course_utils import lora as L  # noqa: E402
from course_utils import model as cm  # noqa: E402
from course_utils.lora import sd15  # noqa: E402


def copy_bandwidth(nbytes: int = 512 * 2**20) -> float:
    """Bytes per second of a large tensor copy (read + write counted)."""
    src = torch.ones(nbytes // 4)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - t)
    return 2 * nbytes / best


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    from diffusers import StableDiffusionPipeline

    unet, te = sd15.sd15_unet(), sd15.sd15_text_encoder()
    lo = sd15.kohya_lora_for({"unet": unet, "text_encoder": te}, rank=32, alpha=16.0)
    tmp = Path(tempfile.mkdtemp())
    path = L.save_kohya(lo, tmp / "sd15_r32.safetensors", L.kohya_metadata(lo))
    tiny = cm.load_pipeline()
    pipe = StableDiffusionPipeline(vae=tiny.vae, text_encoder=te, tokenizer=tiny.tokenizer, unet=unet,
                                   scheduler=tiny.scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    ours, ours_nb, theirs = [], [], []
    touched = 0
    for _ in range(args.repeats):
        t = time.perf_counter()
        rep = L.merge(pipe, [(path, 0.8)])
        ours.append(time.perf_counter() - t)
        touched = sum(v.numel() * v.element_size() for v in rep.backup.values())
        L.unmerge(pipe, rep)
        t = time.perf_counter()
        rep2 = L.merge(pipe, [(path, 0.8)], backup=False)
        ours_nb.append(time.perf_counter() - t)
        L.merge(pipe, [(path, -0.8)], backup=False)   # take it out again (not bit-exact; fine for timing)
        del rep2
        gc.collect()
        t = time.perf_counter()
        pipe.load_lora_weights(str(path), adapter_name="bench")
        pipe.fuse_lora(lora_scale=0.8)
        pipe.unload_lora_weights()
        theirs.append(time.perf_counter() - t)
        gc.collect()
    a, b = statistics.median(ours), statistics.median(theirs)
    # the arithmetic alone: every W += s·up@down with nothing else (no file, no backup)
    lo2 = L.read_lora(path)
    params = {"unet": dict(unet.named_parameters()), "text_encoder": dict(te.named_parameters())}
    def weight(m):
        ps = params[m.component]
        return ps[m.path + ".weight"] if m.path + ".weight" in ps else ps[m.path.removeprefix("text_model.") + ".weight"]

    pairs = [(weight(m), m.up.reshape(m.up.shape[0], -1), m.down.reshape(m.rank, -1)) for m in lo2]
    flops = sum(2 * u.shape[0] * d.shape[1] * d.shape[0] for _, u, d in pairs)
    with torch.no_grad():
        t = time.perf_counter()
        for w, u, d in pairs:
            w.view(w.shape[0], -1).addmm_(u, d, alpha=1e-12)
        compute = time.perf_counter() - t
    bw = copy_bandwidth()
    lora_bytes = path.stat().st_size
    floor = (4 * touched + lora_bytes) / bw  # read W, write W, read+write the backup copy; read the LoRA
    print(f"LoRA: {len(lo)} modules, rank 32, {lora_bytes / 1e6:.1f} MB; touched weights {touched / 1e6:.0f} MB (fp32)")
    print(f"course_utils.lora.merge (incl. backup for unmerge): median {a:.2f} s over {args.repeats} runs")
    c = statistics.median(ours_nb)
    print(f"course_utils.lora.merge(backup=False), one-way:     median {c:.2f} s")
    print(f"diffusers load_lora_weights + fuse_lora + unload:  median {b:.2f} s")
    print(f"course_utils is {b / a:.1f}x faster than diffusers with the backup, {b / c:.1f}x without (goal >= 2x)")
    print(f"memory-bandwidth floor: {floor * 1e3:.0f} ms at {bw / 1e9:.1f} GB/s copy bandwidth; "
          f"course_utils takes {a / floor:.1f}x the floor (goal <= 3x)")
    print(f"arithmetic alone (264 in-place addmm, {flops / 1e9:.1f} GFLOP): {compute * 1e3:.0f} ms "
          f"= {flops / compute / 1e9:.0f} GFLOP/s; course_utils takes {a / compute:.1f}x that "
          f"({c / compute:.1f}x without the backup)")


if __name__ == "__main__":
    main()
