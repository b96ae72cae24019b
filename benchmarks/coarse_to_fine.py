"""Time to quality: coarse to fine (e.g. 256 then 512 px) against a single run at the final size.

    python benchmarks/coarse_to_fine.py                                # 256 -> 512 px vs 512 px, L-BFGS
    python benchmarks/coarse_to_fine.py --sizes 256 512 --steps 200 --coarse-steps 200
    python benchmarks/coarse_to_fine.py --option model=vgg16 --option model.weights=../shared/weights/vgg16-hed.pth \
        --option model.format=caffe --save docs/gallery           # on the trained stand-in, pictures kept

The single run does --steps steps at the final size; its final total loss L* is the quality to reach. The
coarse-to-fine run does --coarse-steps at each coarser size, then goes on at the final size until its total
loss is at most L* (or --steps more steps), and stops there. Printed: the wall time of each to reach L*, their
ratio, and both pictures' edge correlation with the photo and texture ratio (stylelab.measures): equal losses
need not mean equal pictures. Losses are read every step (no logging otherwise); the last level's are at
the final size, so the two are comparable. With --save DIR: c2f.png (the coarse-to-fine picture when it reached L*) and
single_same_time.png (the single run's picture at that same wall time), side by side in docs/gallery.md.
--option KEY=VALUE (repeatable) is an override for both runs; --coarse-option only for the coarse-to-fine one
(init=noise, optimizer.lr=...). Default weights random: the figures are then about the optimisation's speed,
not about art; say so when you report them.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import torch

from stylelab import api, build, loop, measures
from stylelab.cli.common import tool
from stylelab.io import images, samples
from stylelab.observers import Observer


class Clock(Observer):
    """Watches the loop: (seconds since start, step, total) at every step, and each step's image if asked."""

    def __init__(self, keep_images: bool = False, target: float | None = None, first_counted: int = 0):
        self.start, self.points, self.images = time.perf_counter(), [], []
        self.keep_images, self.target, self.first_counted = keep_images, target, first_counted

    def on_losses(self, step: int, evaluation) -> None:
        self.points.append((time.perf_counter() - self.start, step, float(evaluation.total)))

    def on_image(self, step: int, image: torch.Tensor) -> None:
        if self.keep_images:
            self.images.append((time.perf_counter() - self.start, step, image.detach().cpu().clone()))

    def reached(self) -> tuple[float, int] | None:
        """(seconds, step) of the first step at the final size whose total is at most the target."""
        return next(
            ((t, step) for t, step, total in self.points if step >= self.first_counted and total <= self.target), None
        )

    def stop(self) -> str | None:  # asked by the loop before every update
        return "reached the target" if self.target is not None and self.reached() else None


def run(overrides: list[str], clock: Clock) -> loop.RunResult:
    cfg, choices = api.compose_with_choices(*overrides)
    parts = build.build(cfg, choices)
    clock.start = time.perf_counter()
    return loop.run(parts, None, observers=(clock,), stop=clock.stop)


def judged(picture: torch.Tensor, content: str, style: str) -> str:
    """A picture's edge correlation with the photo and texture ratio (stylelab.measures.judged), as one phrase:
    equal losses need not mean equal pictures (an upsampled coarse result can have the loss and lack the detail)."""
    photo, painting = (images.load_image(samples.resolve_image(name)) for name in (content, style))
    found = measures.judged(picture.reshape(3, *picture.shape[-2:]), photo, painting)
    return f"edges {found['edges']:.3f}, texture {found['texture']:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="coarse ..., final")
    parser.add_argument("--steps", type=int, default=200, help="steps of the single run at the final size")
    parser.add_argument("--coarse-steps", type=int, nargs="+", default=[200], help="steps at each coarser size")
    parser.add_argument("--weights", default="random")
    parser.add_argument("--content", default="tubingen")
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--coarse-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--save", type=Path, help="a folder for the two pictures")
    parser.add_argument("--single-total", type=float, help="the single run's L*, from an earlier run (skips it)")
    parser.add_argument("--single-seconds", type=float, help="its time, with --single-total")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    common = [
        f"model.weights={args.weights}",
        f"content={args.content}",
        f"style={args.style}",
        "log.progress=false",
        *args.option,
    ]
    final = args.sizes[-1]

    single_result = None
    if args.single_total is None:
        single = Clock(keep_images=args.save is not None)
        single_result = run([*common, f"image.size={final}", f"steps={args.steps}"], single)
        target, t_single = single.points[-1][2], single.points[-1][0]
    else:
        single, target, t_single = None, args.single_total, args.single_seconds
    coarse = args.coarse_steps * (len(args.sizes) - 1) if len(args.coarse_steps) == 1 else args.coarse_steps
    sizes = ",".join(map(str, args.sizes))
    c2f = Clock(target=target, first_counted=sum(coarse))
    result = run(
        [
            *common,
            *args.coarse_option,
            f"schedule.sizes=[{sizes}]",
            f"schedule.steps=[{','.join(map(str, coarse + [args.steps]))}]",
        ],
        c2f,
    )
    print(
        f"weights {args.weights}, {args.content} in the style of {args.style}, options {args.option} "
        f"{args.coarse_option}"
    )
    print(f"single {final} px: {args.steps} steps, final total {target:.6g} after {t_single:.1f} s")
    reached = c2f.reached()
    if reached is None:
        best = min(total for t, step, total in c2f.points if step >= c2f.first_counted)
        print(
            f"coarse to fine {sizes} px: did not reach {target:.6g} within {args.steps} final steps "
            f"(best {best:.6g}, {c2f.points[-1][0]:.1f} s)"
        )
        return
    t, step = reached
    print(
        f"coarse to fine {sizes} px ({coarse} coarse steps): reached it at step {step} "
        f"({step - c2f.first_counted} at {final} px) after {t:.1f} s"
    )
    print(f"time to the single run's quality: {t / t_single:.2f} x the single run's")
    if single_result is not None:
        print(f"pictures: the single run's last {judged(single_result.image, args.content, args.style)}; ", end="")
    print(f"coarse to fine's at that loss {judged(result.image, args.content, args.style)}")
    if args.save is not None:
        images.save_image(result.image, args.save / "c2f.png")
        if single is not None:
            seconds, at, image = [entry for entry in single.images if entry[0] <= t][-1]
            images.save_image(image, args.save / "single_same_time.png")
            print(
                f"saved {args.save / 'c2f.png'} and {args.save / 'single_same_time.png'} (single run at step "
                f"{at}, {seconds:.1f} s)"
            )


if __name__ == "__main__":
    tool(Path(__file__).name, main)  # a user's mistake: one sentence, exit 2
