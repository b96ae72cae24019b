"""Seconds per optimisation step of stylelab's trainer against the floor (one forward + backward of the
same truncated VGG19 to the input alone), per image size, optimizer and style loss, with peak memory.

    python benchmarks/bench.py                                   # 128, 256, 512 px; lbfgs, adam; gram; cpu (+cuda)
    python benchmarks/bench.py --sizes 256 512 --optimizers lbfgs --losses gram mean_std w2 sliced_w2
    python benchmarks/bench.py --sizes 256 512 --optimizers lbfgs --against /path/to/older/checkout
    python benchmarks/bench.py --sizes 2048 --optimizers lbfgs --steps 1 --rounds 1      # memory check
    python benchmarks/bench.py --json results.jsonl              # one JSON line per case, to compare runs

Each case runs in its own subprocess, so peak RSS belongs to that case alone, and the cases take turns
over --rounds rounds (figures are medians), so a slow spell of a shared machine hits them all alike.
--against DIR times the same cases with the stylelab checkout in DIR (its own benchmarks/bench.py --case,
gram only) in the same rounds: "before" rows. Random weights (the cost does not depend on the values) and
generated images at the exact size; logging at the CLI's default cadence (TensorBoard scalars every 10
steps, image every 50) into a temporary run folder, through api.run, the command's own code path.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

from stylelab.cli.common import tool


def _time(fn, n: int) -> float:
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    sync()
    return (time.perf_counter() - start) / n


def run_case(size: int, optimizer: str, loss: str, device: str, steps: int, warmup: int, options: list[str]) -> dict:
    from stylelab import api, build

    warnings.simplefilter("ignore")  # the random-weights warning: known, costs nothing here
    gen = torch.Generator().manual_seed(0)
    h = size * 3 // 4  # the default job's aspect (Tübingen, 4:3)
    pictures = {"content": torch.rand(3, h, size, generator=gen), "style": torch.rand(3, h, size, generator=gen)}
    overrides = [
        "model.weights=random",
        f"image.size={size}",
        f"optimizer={optimizer}",
        f"loss/style={loss}",
        f"device={device}",
        "log.progress=false",
        *options,
    ]
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()

    with tempfile.TemporaryDirectory() as tmp:

        def trainer_steps(n: int) -> None:
            # the command's own code path: api.run -> stylelab.loop.run, logging into a run folder
            cfg, choices = api.compose_with_choices(*overrides, f"steps={n}")
            api.run(cfg, Path(tmp) / f"run{time.monotonic_ns()}", choices=choices, pictures=pictures)

        # the loop's per-step time: (time of warmup+steps) - (time of warmup) removes the fixed costs
        # (network load, targets, the final evaluation, writer start-up) from the per-step figure. A first,
        # untimed run pays the process's one-time costs (torch.optim's first use imports torch._dynamo, about a
        # second; TensorBoard's writer module), which the first timed run would otherwise put on its steps
        trainer_steps(warmup)
        t_long = _time(lambda: trainer_steps(warmup + steps), 1)
        t_short = _time(lambda: trainer_steps(warmup), 1)
        step = (t_long - t_short) / steps

        cfg, choices = api.compose_with_choices(*overrides)
        parts = build.build(cfg, choices)
        network = parts.model.features(parts.objective.layers, device=device if device != "auto" else "cpu")
        x = torch.rand(1, 3, h, size, device=next(network.parameters()).device, requires_grad=True)

        def floor_step() -> None:  # one forward and backward of the same cut network, nothing else
            x.grad = None
            sum(r.sum() for r in network(x).values()).backward()

        _time(floor_step, warmup)
        floor = _time(floor_step, steps)

    kind = x.device.type
    if kind == "cuda":
        peak_mb, memory = torch.cuda.max_memory_allocated() / 2**20, "cuda_max_memory_allocated_mb"
    else:
        peak_mb, memory = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "peak_rss_mb"  # KiB on Linux
    return {
        "size": size,
        "height": h,
        "optimizer": optimizer,
        "loss": loss,
        "device": kind,
        "options": options,
        "s_per_step": round(step, 5),
        "floor_s": round(floor, 5),
        memory: round(peak_mb, 1),
        "steps": steps,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def _subprocess(cmd: list[str], env: dict) -> dict | str:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return (proc.stderr.strip().splitlines() or ["failed"])[-1]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--optimizers", nargs="+", default=["lbfgs", "adam"], choices=["lbfgs", "adam"])
    parser.add_argument("--losses", nargs="+", default=["gram"], help="options of loss/style (default gram)")
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda when present")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per case and round")
    parser.add_argument("--rounds", type=int, default=3, help="the cases take turns this many times")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override for every case, e.g. channels_last=false, compile=true",
    )
    parser.add_argument("--against", type=Path, metavar="DIR", help="also time gram with the stylelab checkout in DIR")
    parser.add_argument("--json", type=Path, help="append one JSON line per case to this file")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print its JSON
    args = parser.parse_args()

    if args.case:
        size, optimizer, loss, device = args.case.split(",")
        print(json.dumps(run_case(int(size), optimizer, loss, device, args.steps, args.warmup, args.option)))
        return

    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
        f", cuda: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}, options: {args.option}"
        f", {args.rounds} rounds of {args.steps} steps"
    )
    cases = [
        (d, s, o, loss, "this") for d in devices for s in args.sizes for o in args.optimizers for loss in args.losses
    ]
    if args.against:
        cases += [(d, s, o, "gram", "before") for d in devices for s in args.sizes for o in args.optimizers]
    results: dict[tuple, list[dict]] = {case: [] for case in cases}
    common = ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    for _ in range(args.rounds):
        for case in cases:
            device, size, optimizer, loss, which = case
            if which == "this":
                cmd = [
                    sys.executable,
                    __file__,
                    "--case",
                    f"{size},{optimizer},{loss},{device}",
                    *common,
                    *[f"--option={o}" for o in args.option],
                ]
                env = os.environ
            else:  # the older checkout's own benchmark, importing its own package
                cmd = [
                    sys.executable,
                    str(args.against / "benchmarks" / "bench.py"),
                    "--case",
                    f"{size},{optimizer},gram,{device}",
                    *common,
                ]
                env = {**os.environ, "PYTHONPATH": str(args.against)}
            results[case].append(_subprocess(cmd, env))

    print(
        f"{'device':6} {'size':>9} {'optimizer':9} {'loss':16} {'s/step':>8} {'floor s':>8} {'ratio':>6} "
        f"{'x gram':>7} {'peak MiB':>9}"
    )
    gram_step = {}
    for case in cases:
        device, size, optimizer, loss, which = case
        runs = [r for r in results[case] if isinstance(r, dict)]
        label = loss if which == "this" else f"{loss} (before)"
        if not runs:
            print(f"{device:6} {size:>9} {optimizer:9} {label:16} failed: {results[case][-1]}")
            continue
        step = statistics.median(r["s_per_step"] for r in runs)
        floor = statistics.median(r["floor_s"] for r in runs)
        peak = max(r.get("peak_rss_mb", r.get("cuda_max_memory_allocated_mb", 0)) for r in runs)
        if (loss, which) == ("gram", "this"):
            gram_step[(device, size, optimizer)] = step
        base = gram_step.get((device, size, optimizer))
        relative = f"{step / base:7.3f}" if base else f"{'':7}"
        dims = f"{size}x{size * 3 // 4}"
        print(
            f"{device:6} {dims:>9} {optimizer:9} {label:16} {step:8.4f} {floor:8.4f} {step / floor:6.3f} "
            f"{relative} {peak:9.0f}",
            flush=True,
        )
        if args.json:
            with args.json.open("a") as f:
                f.write(json.dumps({"case": list(case), "s_per_step": step, "floor_s": floor, "runs": runs}) + "\n")


if __name__ == "__main__":
    tool(Path(__file__).name, main)  # a user's mistake: one sentence, exit 2
