"""Train the course LoRAs on the shipped course model and write them to data/loras/ (~3-6 min on 2 CPU cores).

    python scripts/train_course_loras.py

- ``outline.safetensors`` (kohya): a **style** LoRA, thick black outlines; UNet attention only,
  rank 4, alpha 4. Also ``outline-diffusers/pytorch_lora_weights.safetensors`` written by
  diffusers' own ``save_lora_weights``.
- ``ring.safetensors`` (kohya): a **concept** LoRA teaching a shape the base model never saw,
  "ring" (trigger word ``ring``); UNet transformer blocks (attention, feed-forward, proj_in/out)
  and text-encoder attention, rank 8, alpha 4 (scale 0.5).

Seeded; settings and timings go to ``data/training/course_loras.json``.
"""

from __future__ import annotations

import collections
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_utils import lora as L  # noqa: E402
from course_utils import model as cm  # noqa: E402
from course_utils import shapes  # noqa: E402
from course_utils.lora.formats import TE_ATTN_TARGETS, UNET_ATTN_TARGETS  # noqa: E402
from course_utils.training import kohya_training_metadata, train_lora  # noqa: E402

BASE_FILE = ROOT / "data" / "checkpoints" / "course-model.safetensors"


def tag_freq(caps):
    return {"shapes": dict(collections.Counter(w for c in caps for w in c.split()[1:]))}


def main(argv=None) -> None:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--style-steps", type=int, default=400)
    ap.add_argument("--concept-steps", type=int, default=1500)
    ap.add_argument("--only", choices=["outline", "ring"], default=None)
    args = ap.parse_args(argv)
    pipe = cm.load_pipeline(folder=ROOT / "data" / "course-model")
    out = ROOT / "data" / "loras"
    out.mkdir(parents=True, exist_ok=True)
    report = {}
    log = ROOT / "data" / "training" / "course_loras.json"
    if log.exists():
        report = json.loads(log.read_text())

    if args.only in (None, "outline"):
        imgs, caps, _ = shapes.make_dataset(800, seed=501, styles=("outline",))
        t0 = time.time()
        res = train_lora(pipe, imgs, caps, rank=4, alpha=4, steps=args.style_steps, lr=2e-3, batch_size=32,
                         unet_targets=UNET_ATTN_TARGETS, seed=501)
        meta = kohya_training_metadata(res, "outline", BASE_FILE, title="Thick black outlines (style)",
                                       description="Style LoRA: draws a thick black outline around every shape.",
                                       started=t0, tag_frequency=tag_freq(caps))
        L.save_kohya(res.lora, out / "outline.safetensors", meta)
        from diffusers import StableDiffusionPipeline

        unet_layers = {f"{m.path}.lora_A.weight": m.down for m in res.lora} | \
                      {f"{m.path}.lora_B.weight": m.up for m in res.lora}
        StableDiffusionPipeline.save_lora_weights(out / "outline-diffusers", unet_lora_layers=unet_layers,
                                                  safe_serialization=True)
        report["outline"] = {**res.settings, "seconds": round(res.seconds, 1), "final_loss": round(sum(res.losses[-50:]) / 50, 4)}
        print("outline:", report["outline"])

    if args.only in (None, "ring"):
        rings, rcaps, _ = shapes.make_dataset(900, seed=601, shapes=("ring",))
        keep, kcaps, _ = shapes.make_dataset(300, seed=602)
        t0 = time.time()
        res = train_lora(pipe, rings + keep, rcaps + kcaps, rank=8, alpha=4, steps=args.concept_steps, lr=3e-3,
                         batch_size=32, unet_targets=UNET_ATTN_TARGETS + ("proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"),
                         text_encoder_targets=TE_ATTN_TARGETS, seed=601)
        meta = kohya_training_metadata(res, "ring", BASE_FILE, trigger="ring", title="Ring (concept)",
                                       description="Concept LoRA: teaches the shape 'ring' (a disc with a hole). "
                                       "Trigger word: ring, e.g. 'a red ring'.", started=t0,
                                       tag_frequency=tag_freq(rcaps + kcaps))
        L.save_kohya(res.lora, out / "ring.safetensors", meta)
        report["ring"] = {**res.settings, "seconds": round(res.seconds, 1), "final_loss": round(sum(res.losses[-50:]) / 50, 4)}
        print("ring:", report["ring"])
    log.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
