"""Time to quality: coarse to fine (e.g. 256 then 512 px) against a single run at the final size.

    python benchmarks/coarse_to_fine.py                                # 256 -> 512 px vs 512 px, L-BFGS
    python benchmarks/coarse_to_fine.py --sizes 256 512 --steps 200 --coarse-steps 200

The single run does --steps steps at the final size; its final total loss L* is the quality to reach. The
coarse-to-fine run does --coarse-steps at each coarser size, then goes on at the final size until its total
loss is at most L* (or --steps more steps). Printed: the wall time of each to reach L*, and their ratio.
Losses are read every step (no logging otherwise), from the objective at the final size, so the two are
comparable. Uses stylelab's own job code with the given weights (default random: the figures are about
the optimisation's speed, not about art; say so when you report them) and the tubingen / starry_night
samples when they are cached or downloadable.
"""

from __future__ import annotations

import argparse
import time
import warnings


class Clock:
    """A watcher of the loop: (seconds since start, step, total) at every evaluation logged."""

    def __init__(self):
        self.start, self.points = time.perf_counter(), []

    def on_losses(self, step: int, evaluation) -> None:
        self.points.append((time.perf_counter() - self.start, step, float(evaluation.total)))

    def on_image(self, step: int, image) -> None:
        pass


def run(overrides: list[str]) -> Clock:
    from stylelab import api, job

    cfg, choices = api.compose_with_choices(*overrides)
    clock = Clock()
    job.run(cfg, None, choices=choices, callbacks=[clock])
    return clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="coarse ..., final")
    parser.add_argument("--steps", type=int, default=200, help="steps of the single run at the final size")
    parser.add_argument("--coarse-steps", type=int, default=200, help="steps at each coarser size")
    parser.add_argument("--weights", default="random")
    parser.add_argument("--optimizer", default="lbfgs")
    parser.add_argument("--content", default="tubingen")
    parser.add_argument("--style", default="starry_night")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    common = [f"model.weights={args.weights}", f"optimizer={args.optimizer}", f"content={args.content}",
              f"style={args.style}", "log.progress=false"]
    final = args.sizes[-1]

    single = run([*common, f"image.size={final}", f"steps={args.steps}"])
    target = single.points[-1][2]
    t_single = single.points[-1][0]
    coarse = [args.coarse_steps] * (len(args.sizes) - 1)
    sizes = ",".join(map(str, args.sizes))
    c2f = run([*common, f"schedule.sizes=[{sizes}]", f"schedule.steps=[{','.join(map(str, coarse + [args.steps]))}]"])
    first_final = sum(coarse)  # the losses of the last level are at the final size
    reached = next(((t, step) for t, step, total in c2f.points if step >= first_final and total <= target), None)
    print(f"weights {args.weights}, {args.optimizer}, {args.content} in the style of {args.style}")
    print(f"single {final} px: {args.steps} steps, final total {target:.6g} after {t_single:.1f} s")
    if reached is None:
        best = min(total for t, step, total in c2f.points if step >= first_final)
        print(f"coarse to fine {sizes} px: did not reach {target:.6g} within {args.steps} final steps "
              f"(best {best:.6g}, {c2f.points[-1][0]:.1f} s)")
        return
    t, step = reached
    print(f"coarse to fine {sizes} px ({coarse} coarse steps): reached it at step {step} "
          f"({step - first_final} at {final} px) after {t:.1f} s")
    print(f"time to the single run's quality: {t / t_single:.2f} x the single run's")


if __name__ == "__main__":
    main()
