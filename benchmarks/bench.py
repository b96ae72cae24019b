"""Seconds per optimisation step of stylelab's trainer against the floor (one forward + backward of the
same truncated VGG19 to the input alone), per image size and optimizer, with peak memory.

    python benchmarks/bench.py                               # 128, 256, 512 px; lbfgs, adam; cpu (+cuda)
    python benchmarks/bench.py --sizes 2048 --optimizers lbfgs --steps 1 --repeats 1    # memory check
    python benchmarks/bench.py --json results.jsonl          # one JSON line per case, to compare runs

Each case runs in its own subprocess so peak RSS belongs to that case alone. Random weights (the cost does
not depend on the values) and generated images at the exact size; logging at the CLI's default cadence
(TensorBoard scalars every 10 steps, image every 50) into a temporary folder.
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


def _time(fn, n: int) -> float:
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    sync()
    return (time.perf_counter() - start) / n


def run_case(size: int, optimizer: str, device: str, steps: int, repeats: int, warmup: int, options: dict) -> dict:
    from stylelab.api import Settings, prepare
    from stylelab.monitor import TensorBoard
    from stylelab.trainer import OptimizerSpec, optimize

    warnings.simplefilter("ignore")  # the random-weights warning: known, costs nothing here
    gen = torch.Generator().manual_seed(0)
    h = size * 3 // 4  # the default job's aspect (Tübingen, 4:3)
    content, style = torch.rand(3, h, size, generator=gen), torch.rand(3, h, size, generator=gen)
    lr = 1.0 if optimizer == "lbfgs" else 0.02
    settings = Settings(size=size, steps=steps, weights="random", device=device,
                        optimizer=OptimizerSpec(optimizer, lr=lr), **options)
    p = prepare(content, style, settings, progress=False)
    if p.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    with tempfile.TemporaryDirectory() as tmp:
        def trainer_steps(n: int) -> None:
            tb = TensorBoard(Path(tmp) / f"tb{time.monotonic_ns()}", steps=n, every=10, image_every=50)
            optimize(p.init, p.features, p.loss, steps=n, optimizer=settings.optimizer, callbacks=[tb])
            tb.close()

        # the trainer's per-step time: (time of warmup+steps) - (time of warmup) removes the fixed costs
        # (optimizer creation, the final evaluation, writer start-up) from the per-step figure
        def per_step() -> float:
            t_long = _time(lambda: trainer_steps(warmup + steps), 1)
            t_short = _time(lambda: trainer_steps(warmup), 1)
            return (t_long - t_short) / steps

        net, normalize = p.extractor.net, p.extractor.normalize
        x = p.init.detach().clone().requires_grad_(True)

        def floor_step() -> None:
            x.grad = None
            net(normalize(x)).sum().backward()

        _time(floor_step, warmup)
        # interleaved, so a slow spell of a shared machine hits both figures alike
        step_times, floor_times = [], []
        for _ in range(repeats):
            step_times.append(per_step())
            floor_times.append(_time(floor_step, steps))

    step, floor = statistics.median(step_times), statistics.median(floor_times)
    if p.device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
        memory = "cuda_max_memory_allocated_mb"
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        memory = "peak_rss_mb"
    return {
        "size": size, "height": h, "optimizer": optimizer, "device": p.device.type, "options": options,
        "s_per_step": round(step, 5), "floor_s": round(floor, 5), "ratio": round(step / floor, 4),
        memory: round(peak_mb, 1), "steps": steps, "repeats": repeats,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--optimizers", nargs="+", default=["lbfgs", "adam"], choices=["lbfgs", "adam"])
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda when present")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a stylelab.Settings field for every case, e.g. channels_last=false, compile=true")
    parser.add_argument("--json", type=Path, help="append one JSON line per case to this file")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print its JSON
    args = parser.parse_args()
    options = {k: json.loads(v) if v in ("true", "false") or v[:1].isdigit() else v
               for k, v in (o.split("=", 1) for o in args.option)}

    if args.case:
        size, optimizer, device = args.case.split(",")
        print(json.dumps(run_case(int(size), optimizer, device, args.steps, args.repeats, args.warmup, options)))
        return

    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
          f", cuda: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}, options: {options}")
    print(f"{'device':6} {'size':>9} {'optimizer':9} {'s/step':>8} {'floor s':>8} {'ratio':>6} {'peak MiB':>9}")
    for device in devices:
        for size in args.sizes:
            for optimizer in args.optimizers:
                cmd = [sys.executable, __file__, "--case", f"{size},{optimizer},{device}", "--steps", str(args.steps),
                       "--repeats", str(args.repeats), "--warmup", str(args.warmup)]
                cmd += [f"--option={o}" for o in args.option]
                proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
                if proc.returncode != 0:
                    print(f"{device:6} {size:>9} {optimizer:9} failed: {proc.stderr.strip().splitlines()[-1:]}")
                    continue
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                peak = r.get("peak_rss_mb", r.get("cuda_max_memory_allocated_mb"))
                dims = f"{size}x{r['height']}"
                print(f"{device:6} {dims:>9} {optimizer:9} {r['s_per_step']:8.4f} "
                      f"{r['floor_s']:8.4f} {r['ratio']:6.3f} {peak:9.0f}", flush=True)
                if args.json:
                    with args.json.open("a") as f:
                        f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
