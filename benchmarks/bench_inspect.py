"""Header-only ``inspect`` vs loading every tensor, on a >= 1 GB safetensors file made on the fly.

    python benchmarks/bench_inspect.py [--gb 1.0] [--repeats 3]

The named alternative, measured in the same run: ``safetensors.torch.load_file`` followed by
touching every tensor (a sum), which is what "open the file and look" costs without a
header-only reader. Reports medians and the ratio (goal >= 100x). Run on an idle machine; the
file is deleted afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from course_utils import weights  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    from safetensors.torch import load_file, save_file

    n_tensors = 256
    per = int(args.gb * 1e9 / 4 / n_tensors)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "big.safetensors"
        save_file({f"layer.{i}.weight": torch.full((per,), float(i)) for i in range(n_tensors)}, str(path))
        size = path.stat().st_size
        t_ins, t_load = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            rep = weights.inspect(path)
            t_ins.append(time.perf_counter() - t)
            t = time.perf_counter()
            sd = load_file(str(path))
            total = sum(float(v.sum()) for v in sd.values())
            t_load.append(time.perf_counter() - t)
            del sd
        assert rep.tensors == n_tensors and total > 0
    a, b = statistics.median(t_ins), statistics.median(t_load)
    print(f"file: {size / 1e9:.2f} GB, {n_tensors} tensors, {rep.parameters:,} parameters")
    print(f"course_utils.weights.inspect (header only):      median {a * 1e3:8.2f} ms")
    print(f"safetensors load_file + touch every tensor:       median {b * 1e3:8.1f} ms")
    print(f"header-only inspect is {b / a:,.0f}x faster (goal >= 100x)")


if __name__ == "__main__":
    main()
