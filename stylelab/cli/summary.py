"""`stylelab-summary SWEEP`: a sweep's table and contact sheet (the work is in stylelab.sweeps.summary)."""

from __future__ import annotations

import argparse
from pathlib import Path

from stylelab.cli.common import tool
from stylelab.cli.sweep import plan_of
from stylelab.sweeps.summary import summarize


def summarize_command(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="stylelab-summary",
        description="Summarise a `stylelab -m` sweep: a table (summary.csv, summary.md) of each job's "
        "overrides, status (done, stopped, failed and why, running or killed, not started), steps, wall time "
        "and final losses, and contact_sheet.png of the final images. Every job of the sweep is listed, "
        "from its multirun.yaml.",
        epilog="Example: stylelab-summary outputs/multirun/2026-01-01/12-00-00",
    )
    parser.add_argument("sweep", type=Path, help="the sweep folder (hydra.sweep.dir)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="where to write the three files (default: SWEEP)")
    args = parser.parse_args(argv)
    planned = plan_of(args.sweep) if args.sweep.is_dir() else None
    written = summarize(args.sweep, args.out, planned)
    for what, path in written.items():
        print(f"stylelab-summary: wrote {path} ({what})")


def main(argv: list[str] | None = None) -> None:
    tool("stylelab-summary", lambda: summarize_command(argv))
