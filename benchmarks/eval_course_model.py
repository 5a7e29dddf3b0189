"""Quality report for the course model and its LoRAs, judged by tests/judge.py (no model in the judge).

    python benchmarks/eval_course_model.py [--preview data/preview.png]

Prints the numbers data/README.md reports; the same bars are asserted in tests/test_course_model.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_utils import model as cm, paths, plots, shapes  # noqa: E402
from tests.judge import dark_fraction, judge, shape_of  # noqa: E402

SEEDS = 10_000


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preview", default=None, help="also write an image grid (PNG) here")
    args = ap.parse_args(argv)
    pipe = cm.load_pipeline()
    want = [(c, s) for c in shapes.COLOURS for s in shapes.BASE_SHAPES for _ in range(3)]
    ims = cm.generate(pipe, [f"a {c} {s}" for c, s in want], seed=[SEEDS + i for i in range(len(want))], steps=20)
    js = [judge(i) for i in ims]
    print(f"base model, {len(want)} prompt x seed images, 20 steps, CFG 5: "
          f"colour {sum(j['colour'] == c for j, (c, _) in zip(js, want)) / len(want):.1%}, "
          f"shape {sum(j['shape'] == s for j, (_, s) in zip(js, want)) / len(want):.1%}")
    prompts = [f"a {c} {s}" for c in shapes.COLOURS for s in shapes.BASE_SHAPES][:16]
    seeds = [SEEDS + 500 + i for i in range(len(prompts))]
    for s in (0.0, 0.5, 1.0):
        out = cm.generate(pipe, prompts, seed=seeds, steps=20, lora=[(paths.loras_dir() / "outline.safetensors", s)])
        print(f"outline LoRA strength {s}: dark-outline pixel fraction {sum(map(dark_fraction, out)) / len(out):.4f}")
    rp = [f"a {c} ring" for c in shapes.COLOURS] * 4
    rs = [SEEDS + 900 + i for i in range(len(rp))]
    for s in (0.0, 1.0):
        out = cm.generate(pipe, rp, seed=rs, steps=20, lora=[(paths.loras_dir() / "ring.safetensors", s)])
        print(f"ring LoRA strength {s}: rings detected in {sum(shape_of(i) == 'ring' for i in out) / len(out):.0%} "
              f"of {len(out)} images")
    if args.preview:
        row_p = ["a red circle", "a blue square", "a green triangle", "a yellow circle", "a purple square", "a orange triangle"]
        grid, labels = [], []
        for name, s in [(None, 0), ("outline", 0.5), ("outline", 1.0), ("ring", 1.0)]:
            p = row_p if name != "ring" else [f"a {c} ring" for c in shapes.COLOURS]
            lo = None if name is None else [(paths.loras_dir() / f"{name}.safetensors", s)]
            grid += cm.generate(pipe, p, seed=[SEEDS + 50 + i for i in range(6)], steps=20, lora=lo)
            labels.append("base" if name is None else f"{name} {s}")
        fig = plots.image_grid(grid, cols=6, row_labels=labels, suptitle="Course model: base and LoRAs (20 steps)")
        fig.savefig(args.preview, dpi=80)
        print("wrote", args.preview)


if __name__ == "__main__":
    main()
