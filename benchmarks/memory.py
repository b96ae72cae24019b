"""The largest picture that fits: peak memory of a coarse-to-fine run whose last level is each size.

    python benchmarks/memory.py --sizes 2048 3072 4096                         # Adam, 512 px first
    python benchmarks/memory.py --sizes 3072 4096 --option model.checkpointing=true

Each size runs in its own process: a level at 512 px, then one step at the size (the steps at the largest
size are what cost memory; their count does not change the peak). Printed per size: peak RSS on the CPU
(max_memory_allocated on CUDA), the estimate the run checks before it starts (stylelab.memory) and its error,
the seconds of the run, and bytes per pixel of the last level.
Random weights (the memory does not depend on them) and generated 4:3 images.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from stylelab.cli.common import tool


def case(size: int, optimizer: str, device: str, options: list[str]) -> dict:
    import warnings

    import torch

    from stylelab import api, backend, build, levels, memory

    warnings.simplefilter("ignore")
    gen = torch.Generator().manual_seed(0)
    h = size * 3 // 4
    pictures = {"content": torch.rand(3, h, size, generator=gen), "style": torch.rand(3, h, size, generator=gen)}
    cfg, choices = api.compose_with_choices(
        "model.weights=random",
        f"optimizer={optimizer}",
        f"device={device}",
        "log.progress=false",
        f"schedule.sizes=[512,{size}]",
        "schedule.steps=[2,1]",
        *options,
    )
    # the estimate the run checks before anything heavy, made the same way
    parts = build.build(cfg, choices)
    found = memory.estimate_for(parts, levels.read_pictures(parts.inputs, parts.colour, pictures))
    start = time.perf_counter()
    result = api.run(cfg, None, choices=choices, pictures=pictures)
    seconds = time.perf_counter() - start
    if backend.resolve_device(result.device).type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "size": size,
        "height": h,
        "optimizer": optimizer,
        "options": options,
        "peak_mib": round(peak),
        "estimate_mib": round(found.total / 2**20),
        "seconds": round(seconds, 1),
        "bytes_per_pixel": round(peak * 2**20 / (size * h)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 3072])
    parser.add_argument("--optimizer", default="adam", choices=["adam", "lbfgs"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="a config override")
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(case(args.case, args.optimizer, args.device, args.option)))
        return
    print(
        f"{'size':>10} {'peak MiB':>9} {'estimate':>9} {'error':>7} {'B/pixel':>8} {'run s':>7}  "
        f"options {args.option}, {args.optimizer}"
    )
    for size in args.sizes:
        cmd = [
            sys.executable,
            __file__,
            "--case",
            str(size),
            "--optimizer",
            args.optimizer,
            "--device",
            args.device,
            *[f"--option={o}" for o in args.option],
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{size:>10} failed (exit {proc.returncode}): {(proc.stderr.strip().splitlines() or [''])[-1]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        error = (r["estimate_mib"] - r["peak_mib"]) / r["peak_mib"]
        print(
            f"{size}x{r['height']:<5} {r['peak_mib']:>9} {r['estimate_mib']:>9} {error:>+7.1%} "
            f"{r['bytes_per_pixel']:>8} {r['seconds']:>7}",
            flush=True,
        )


if __name__ == "__main__":
    tool(Path(__file__).name, main)  # a user's mistake: one sentence, exit 2
