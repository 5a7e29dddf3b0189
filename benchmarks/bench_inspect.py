"""Header-only ``inspect`` vs loading every tensor, on a >= 1 GB safetensors file made on the fly.

    python benchmarks/bench_inspect.py [--gb 1.0] [--repeats 3]

The named alternative, measured in the same run: ``safetensors.torch.load_file`` followed by
touching every tensor (a sum), which is what "open the file and look" costs without a
header-only reader. Each is measured twice: with the file in the OS page cache (warm: a file
you just opened) and with it evicted first via posix_fadvise(DONTNEED) (cold: a file just
downloaded or on a network disk). Reports medians and ratios (goal >= 100x). Run on an idle
machine; the file is deleted afterwards.
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
        results = {}
        for cache in ("warm", "cold"):
            t_ins, t_load = [], []
            for _ in range(args.repeats):
                if cache == "cold":
                    evict(path)
                weights._read_header_cached.cache_clear()  # measure a real parse, not a cache hit
                t = time.perf_counter()
                rep = weights.inspect(path)
                t_ins.append(time.perf_counter() - t)
                if cache == "cold":
                    evict(path)
                t = time.perf_counter()
                sd = load_file(str(path))
                total = sum(float(v.sum()) for v in sd.values())
                t_load.append(time.perf_counter() - t)
                del sd
            assert rep.tensors == n_tensors and total > 0
            results[cache] = (statistics.median(t_ins), statistics.median(t_load))
    print(f"file: {size / 1e9:.2f} GB, {n_tensors} tensors, {rep.parameters:,} parameters, {args.repeats} repeats")
    for cache, (a, b) in results.items():
        print(f"[{cache} page cache] inspect (header only): {a * 1e3:8.2f} ms   load_file + touch: {b * 1e3:9.1f} ms"
              f"   -> inspect {b / a:,.0f}x faster")
    print("goal: >= 100x")


def evict(path: Path) -> None:
    """Drop the file's pages from the OS page cache (Linux; a no-op elsewhere)."""
    import os

    if hasattr(os, "posix_fadvise"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


if __name__ == "__main__":
    main()
