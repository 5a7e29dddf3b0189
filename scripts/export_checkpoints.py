"""Write the course model's single-file checkpoints from data/course-model (seconds).

    python scripts/export_checkpoints.py

- ``data/checkpoints/course-model.safetensors``: original LDM / A1111 key layout
  (``model.diffusion_model.*``, ``first_stage_model.*``, ``cond_stage_model.*``), as Civitai
  checkpoints are; loads offline with ``from_single_file(..., config=data/course-model)``.
- ``data/checkpoints/course-model.ckpt``: the same weights as a pickled Lightning-style
  checkpoint ``{"state_dict": …, "global_step": …, "epoch": …}`` for the loading/safety lessons.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_utils import ldm, model as cm  # noqa: E402
from course_utils.fileio import save_safetensors_atomic  # noqa: E402


def main() -> None:
    pipe = cm.load_pipeline(folder=ROOT / "data" / "course-model")
    sd = ldm.pipeline_to_ldm(pipe)
    out = ROOT / "data" / "checkpoints"
    out.mkdir(parents=True, exist_ok=True)
    info = json.loads((ROOT / "data" / "training" / "course_model_train.json").read_text())
    meta = {
        "modelspec.sai_model_spec": "1.0.1",
        "modelspec.architecture": "stable-diffusion-v1",
        "modelspec.implementation": "https://github.com/Stability-AI/generative-models",
        "modelspec.title": "AIGC course model (tiny SD 1.x architecture, 32x32 shapes)",
        "modelspec.resolution": "32x32",
        "modelspec.license": "MIT (course material)",
        "modelspec.description": "Trained from scratch by scripts/train_course_model.py on procedurally drawn shapes.",
        "course.unet_steps": str(info["unet_steps"]),
        "course.vae_steps": str(info["vae_steps"]),
    }
    save_safetensors_atomic(sd, out / "course-model.safetensors", meta)
    tmp = out / "course-model.ckpt.tmp"
    torch.save({"state_dict": sd, "global_step": int(info["unet_steps"]), "epoch": 0,
                "pytorch-lightning_version": "1.9.0"}, tmp)
    tmp.replace(out / "course-model.ckpt")
    for p in sorted(out.iterdir()):
        print(f"{p.relative_to(ROOT)}: {p.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
