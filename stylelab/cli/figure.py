"""`stylelab-figure SWEEP`: a finished sweep as one labelled grid PNG (the work is in stylelab.sweeps.figure)."""

from __future__ import annotations

import argparse
from pathlib import Path

from stylelab.cli.common import tool
from stylelab.cli.sweep import plan_of
from stylelab.errors import StyleLabError
from stylelab.sweeps import figure as figures


def main(argv: list[str] | None = None) -> None:
    """`stylelab-figure SWEEP`: a finished sweep as one labelled grid PNG."""
    parser = argparse.ArgumentParser(
        prog="stylelab-figure",
        description="Lay out the final images of a `stylelab -m` sweep as one labelled grid, as the paper's "
        "figures: rows and columns are the values of two swept keys. Experiments declare their layout "
        "(figure.rows, figure.cols, figure.inset, figure.title); the options below override it.",
        epilog="Example: stylelab-figure outputs/multirun/2026-01-01/12-00-00 --rows loss.style_layers "
        "--cols loss.beta",
    )
    parser.add_argument("sweep", type=Path, help="the sweep folder (hydra.sweep.dir), or one run's folder")
    parser.add_argument("--rows", metavar="KEY", help="override key whose values make the rows")
    parser.add_argument("--cols", metavar="KEY", help="override key whose values make the columns")
    parser.add_argument("--inset", choices=[*figures.CORNERS, "none"], help="put the style image small in a corner")
    parser.add_argument("--title", help="text above the grid")
    parser.add_argument(
        "--panel",
        type=int,
        metavar="PX",
        help="the longest side of every picture in the grid "
        f"(default: as the jobs made them, at least {figures.MIN_PANEL})",
    )
    parser.add_argument("--out", type=Path, metavar="PATH", help="the PNG to write (default: SWEEP/figure.png)")
    args = parser.parse_args(argv)

    def make_figure() -> None:
        if args.panel is not None and not 16 <= args.panel <= 4096:
            raise StyleLabError(f"--panel must be between 16 and 4096 pixels, not {args.panel}")
        fig = figures.sweep_figure(
            args.sweep,
            args.rows,
            args.cols,
            args.inset,
            args.title,
            panel=args.panel,
            planned=plan_of(args.sweep) if args.sweep.is_dir() else None,
        )
        out = figures.save_figure(fig, args.out or args.sweep / "figure.png", source=args.sweep.resolve())
        rows, cols = fig.layout.shape
        print(
            f"stylelab-figure: wrote {out} ({rows} x {cols} grid; {fig.finished} of {fig.total} jobs finished)",
            flush=True,
        )

    tool("stylelab-figure", make_figure)
