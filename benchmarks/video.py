"""Ruder et al.'s method against independent per-frame stylisation, on a clip whose motion is known exactly.

    python benchmarks/video.py                          # the stand-in, 6 frames of 96x128, 100 steps per frame
    python benchmarks/video.py --frames 8 --steps 200   # longer
    python benchmarks/video.py --gammas 0.1 0.25 1      # loss.temporal_weight values side by side
    python benchmarks/video.py --flows-only             # only the flow methods' end-point error and time

The clip (stylelab.video.synthetic.pan_and_zoom): the Tübingen photo under a camera that pans 2 px right and 1 px
down and zooms 2% per frame, with a textured square crossing it (disocclusions), so every backward flow and every
pixel's visibility are exact. Both runs use the stand-in VGG16 (../shared/weights/vgg16-hed.pth, Caffe input; not
the paper's VGG19) with The Starry Night and, by default, the exact flows (video/flow=files; --flow dis or deepflow:
estimated, as a user's run); the measures use the exact flow:
- flicker: stylelab.measures.temporal_error over the clip, with the exact flows and c = the exact visibility;
- quality: each frame's weighted content and style losses at its end (their mean over the frames), and the
  texture ratio and edge correlation of stylelab.measures.judged (mean over frames);
- time: steps for a later frame to reach the content + style loss that the same frame reaches alone in --steps
  (the independent run's), and the whole clip's optimisation time.
independent: loss.temporal_weight=0 init=content, --steps every frame. ruder: the defaults for a clip (init=warped,
the temporal term at loss.temporal_weight), --steps for the first frame and video.later_steps (--later, default half)
for the others. Every figure is printed; nothing is asserted. CPU, seed 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from stylelab import api, measures
from stylelab.errors import StyleLabError
from stylelab.io import images
from stylelab.video import flow as flows
from stylelab.video.synthetic import pan_and_zoom
from stylelab.video.warp import endpoint_error

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STYLELAB_SHARED", REPO.parent / "shared"))
WEIGHTS = SHARED / "weights" / "vgg16-hed.pth"
STAND_IN = ["model=vgg16", f"model.weights={WEIGHTS}", "model.format=caffe", "log.progress=false", "device=cpu"]


def synthetic(frames: int, folder: Path):
    """The clip as PNG frames in `folder`, and its exact flows and visibility (as written: 8-bit frames)."""
    photo = images.load_image(SHARED / "images" / "tubingen.jpg")
    clip = pan_and_zoom(images.resize_longest(photo, 256), frames=frames, size=(96, 128))
    folder.mkdir(parents=True, exist_ok=True)
    for k, frame in enumerate(clip.frames):
        images.save_image(frame[None], folder / f"{k + 1:03d}.png")
    exact = folder.parent / "exact_flows"  # as video/flow=files reads them: frame k+1 to k and back (from 1)
    for k in range(1, frames):
        flows.write_flo(exact / f"{k + 1:05d}_{k:05d}.flo", clip.backward[k])
        flows.write_flo(exact / f"{k:05d}_{k + 1:05d}.flo", clip.forward[k])
    return clip


def flow_table(clip) -> None:
    methods = [("dis (ultrafast)", flows.DIS("ultrafast")), ("dis (medium)", flows.DIS("medium"))]
    methods += [("deepflow", flows.DeepFlow()), ("raft (large)", flows.RAFT("large", progress=False))]
    print("\n| flow | end-point error (px, visible pixels) | seconds per frame |\n|---|---|---|")
    for name, method in methods:
        try:
            begin, errors = time.perf_counter(), []
            for k in range(1, len(clip.frames)):
                estimate = method(clip.frames[k], clip.frames[k - 1])
                errors.append(endpoint_error(estimate, clip.backward[k], clip.visible[k]))
            seconds = (time.perf_counter() - begin) / (len(clip.frames) - 1)
            print(f"| {name} | {sum(errors) / len(errors):.3f} | {seconds:.3f} |", flush=True)
        except StyleLabError as exc:
            print(f"| {name} | not run: {exc} | |", flush=True)


def steps_to(curve: list[tuple[int, float]], goal: float) -> int | None:
    return next((step for step, value in curve if value <= goal), None)


def quality(result) -> tuple[list[float], list[list[tuple[int, float]]]]:
    """Per frame: final weighted content + style; and its curve of the same."""
    finals = [f["loss/weighted/content"] + f["loss/weighted/style"] for f in result.losses]
    curves = []
    for c in result.curves:
        content, style = dict(c["loss/weighted/content"]), dict(c["loss/weighted/style"])
        curves.append([(s, content[s] + style[s]) for s in sorted(content)])
    return finals, curves


def run(name: str, overrides: list[str], folder: Path, clip, photo_folder: Path, style: Path) -> dict:
    cfg = api.compose(f"content={photo_folder}", f"style={style}", *STAND_IN, *overrides)
    begin = time.perf_counter()
    result = api.run(cfg, folder / name)
    wall = time.perf_counter() - begin
    written = [images.load_image(p) for p in result.frames]
    error = measures.temporal_error(written, clip.backward[1:], clip.visible[1:])
    finals, curves = quality(result)
    painting = images.load_image(style)
    judged = [measures.judged(x, clip.frames[k], painting) for k, x in enumerate(written)]
    return {
        "name": name,
        "error": error,
        "finals": finals,
        "curves": curves,
        "seconds": result.seconds,
        "wall": wall,
        "texture": sum(j["texture"] for j in judged) / len(judged),
        "edges": sum(j["edges"] for j in judged) / len(judged),
        "steps": result.steps_done,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--later", type=int, default=None, help="video.later_steps (default: half of --steps)")
    parser.add_argument("--gammas", type=float, nargs="+", default=[0.25], help="loss.temporal_weight values")
    parser.add_argument("--flow", default="exact", help="the runs' flow: exact (video/flow=files), dis, deepflow")
    parser.add_argument("--flows-only", action="store_true")
    parser.add_argument("--keep", type=Path, help="write the runs' folders here (default: a temporary folder)")
    parser.add_argument("--save", type=Path, help="write video_strip.jpg and video.gif (the gallery's row) here")
    args = parser.parse_args()
    if not WEIGHTS.is_file():
        sys.exit(f"video.py: the stand-in {WEIGHTS} is not there (set STYLELAB_SHARED to the folder holding weights/)")
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        clip = synthetic(args.frames, folder / "clip")
        flow_table(clip)
        if args.flows_only:
            return 0
        style = SHARED / "images" / "starry_night.jpg"
        later = args.later if args.later is not None else args.steps // 2
        common = ["image.size=128", f"steps={args.steps}"]
        if args.flow == "exact":
            common += ["video/flow=files", f"video.flow.folder={folder / 'exact_flows'}"]
        else:
            common += [f"video/flow={args.flow}"]
        rows = [
            run(
                "independent", [*common, "loss.temporal_weight=0", "init=content"], folder, clip, folder / "clip", style
            )
        ]
        for gamma in args.gammas:
            overrides = [*common, f"loss.temporal_weight={gamma}", f"video.later_steps={later}"]
            rows.append(run(f"ruder {gamma:g}", overrides, folder, clip, folder / "clip", style))
        base = rows[0]
        print(
            f"\n{args.frames} frames of 128x96, {args.steps} steps per frame (ruder: {later} after the first), "
            f"stand-in VGG16, The Starry Night, flow {args.flow} in the runs, exact flow in the measures\n"
        )
        print(
            "| run | temporal error | x independent | content + style (mean) | x independent | texture | edges | "
            "later frames: steps to the independent frame's loss, to within 2%, within 5% (mean, reached) | "
            "optimisation s | x independent |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for row in rows:
            mean = sum(row["finals"]) / len(row["finals"])
            # a later frame's quality: its content + style loss against the same frame's after --steps alone
            cells = []
            for slack in (1.0, 1.02, 1.05):
                reach = [steps_to(c, slack * goal) for c, goal in zip(row["curves"][1:], base["finals"][1:])]
                reached = [r for r in reach if r is not None]
                cells.append(f"{sum(reached) / len(reached):.0f} ({len(reached)}/{len(reach)})" if reached else "never")
            to = ", ".join(cells)
            print(
                f"| {row['name']} | {row['error']:.5f} | {row['error'] / base['error']:.2f} | {mean:.4g} | "
                f"{mean / (sum(base['finals']) / len(base['finals'])):.3f} | {row['texture']:.3f} | "
                f"{row['edges']:.3f} | {to} | {row['seconds']:.1f} | {row['seconds'] / base['seconds']:.2f} |",
                flush=True,
            )
        if args.save:
            save(args.save, clip, folder, [row["name"] for row in rows[:2]])
    return 0


def save(folder: Path, clip, runs: Path, names: list[str]) -> None:
    """The gallery's row: a strip (photo frames, then each run's, one row each) and a GIF of the runs side by side
    (where flicker shows), both small."""
    rows = [[f[None] for f in clip.frames]]
    rows += [[images.load_image(p)[None] for p in sorted((runs / name / "frames").glob("*.png"))] for name in names]
    strip = torch.cat([torch.cat(row, dim=-1) for row in rows], dim=-2)  # (1, 3, rows * h, frames * w)
    folder.mkdir(parents=True, exist_ok=True)
    images.to_pil(strip).save(folder / "video_strip.jpg", format="JPEG", quality=85, optimize=True)
    pairs = [images.to_pil(torch.cat([a, b], dim=-1)) for a, b in zip(rows[1], rows[2])]
    pairs[0].save(folder / "video.gif", save_all=True, append_images=pairs[1:], duration=200, loop=0)
    print(f"wrote {folder / 'video_strip.jpg'} and {folder / 'video.gif'} ({', '.join(names)})")


if __name__ == "__main__":
    sys.exit(main())
