"""Seconds from typing a command to its answer, for the commands that answer without optimising anything.

    python benchmarks/startup.py                      # this checkout's commands, 5 rounds each
    python benchmarks/startup.py --against /tmp/old   # the same commands with an older checkout, side by side

Each command is run --rounds times in a fresh process (the OS file cache warm after the first, as a user's
second command would find it); the figure is the median wall time. `python -c "import torch"` is printed as
the floor that any command needing torch pays; --help, --cfg job and a mistake on the command line need none.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

COMMANDS = {
    "import torch (floor)": ["-c", "import torch"],
    # torch.optim imports torch._dynamo the first time an optimizer is made (about a second): any run pays it
    "import torch, make an optimizer (floor of a run)": [
        "-c",
        "import torch; torch.optim.SGD([torch.zeros(1, requires_grad=True)])",
    ],
    "import stylelab": ["-c", "import stylelab"],
    "stylelab --help": ["-m", "stylelab.cli", "--help"],
    "stylelab --cfg job": ["-m", "stylelab.cli", "--cfg", "job"],
    "stylelab-summary --help": [
        "-c",
        "import sys; sys.argv[0] = 'stylelab-summary'; from stylelab.cli.summary import main; main()",
        "--help",
    ],
    "stylelab-figure --help": [
        "-c",
        "import sys; sys.argv[0] = 'stylelab-figure'; from stylelab.cli.figure import main; main()",
        "--help",
    ],
    "stylelab image.size=0 (a mistake)": ["-m", "stylelab.cli", "image.size=0"],
    "a 5-step 64 px run (random weights)": [
        "-m",
        "stylelab.cli",
        "content=a.png",
        "style=b.png",
        "model.weights=random",
        "image.size=64",
        "steps=5",
        "log.progress=false",
    ],
}


def seconds(args: list[str], env: dict, cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--against", type=Path, metavar="DIR", help="an older checkout to time alongside")
    args = parser.parse_args()
    checkouts = {"this": Path(__file__).resolve().parents[1]}
    if args.against:
        checkouts["before"] = args.against.resolve()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, median of {args.rounds} runs (s)")
    print(f"{'command':38}" + "".join(f"{name:>10}" for name in checkouts))
    with tempfile.TemporaryDirectory() as cwd:  # no outputs/ written into a checkout
        for name, seed in (("a.png", 0), ("b.png", 1)):  # the run's two pictures, made here: no download
            pixels = random.Random(seed).randbytes(64 * 48 * 3)
            Image.frombytes("RGB", (64, 48), pixels).save(Path(cwd) / name)
        for label, command in COMMANDS.items():
            row = []
            for root in checkouts.values():
                env = {**os.environ, "PYTHONPATH": str(root)}
                seconds(command, env, cwd)  # warm the file cache
                row.append(statistics.median(seconds(command, env, cwd) for _ in range(args.rounds)))
            print(f"{label:38}" + "".join(f"{s:10.2f}" for s in row), flush=True)


if __name__ == "__main__":
    main()
