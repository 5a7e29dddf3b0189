"""How fast the course model generates on this machine: 4 images x 20 steps, batched.

    python benchmarks/bench_generate.py [--repeats 5]

Reports the median wall time of one batched call (4 prompts, 20 DPM-Solver steps, CFG 5) and,
as the named alternative measured in the same run, the same 4 images generated one call at a
time; the ratio is what batching buys. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from course_utils import model as cm  # noqa: E402

PROMPTS = ["a red circle", "a blue square", "a green triangle", "a yellow circle"]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    pipe = cm.load_pipeline()
    cm.generate(pipe, PROMPTS, seed=0, steps=20)  # warm-up
    batched, single = [], []
    for r in range(args.repeats):
        t = time.perf_counter()
        cm.generate(pipe, PROMPTS, seed=r, steps=20)
        batched.append(time.perf_counter() - t)
        t = time.perf_counter()
        for i, p in enumerate(PROMPTS):
            cm.generate(pipe, [p], seed=r + i, steps=20)
        single.append(time.perf_counter() - t)
    b, s = statistics.median(batched), statistics.median(single)
    print(f"4 images x 20 steps, one batched call: median {b:.2f} s over {args.repeats} runs (goal <= 2 s)")
    print(f"same 4 images, one call each:          median {s:.2f} s")
    print(f"batched is {s / b:.1f}x faster than one-by-one")


if __name__ == "__main__":
    main()
