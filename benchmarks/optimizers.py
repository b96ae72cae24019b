"""stylelab's L-BFGS against torch's and scipy's, on the same objective from the same start.

    python benchmarks/optimizers.py                                   # every case, 64 px, 60 evaluations
    python benchmarks/optimizers.py --evals 200 --size 96             # longer, larger
    python benchmarks/optimizers.py --cases noise texture --curves 20 # two cases, with their first 20 values
    python benchmarks/optimizers.py --cases vgg19_noise vgg19_content # no trained weights needed

Three optimisers minimise one objective, built exactly as a run builds it (stylelab.loop: the composed config,
build.build, levels.read_pictures and prepare, the weights' balance for loss.beta=null, the init), each from the same
x0 and for the same number of objective evaluations (--evals, default 60):
- stylelab: `optimizer=lbfgs` (stylelab.optim.ScaleFreeLBFGS), `opt.step(closure)` until N evaluations;
- torch: `optimizer=lbfgs_torch` (torch.optim.LBFGS as stylelab builds it: one evaluation per step);
- scipy: scipy.optimize.minimize(method="L-BFGS-B") (the optimiser of Gatys et al.'s own code, More-Thuente
  line search), no bounds (stylelab does not clamp), maxcor 100 (stylelab's history_size), gtol = ftol = 0;
  its function evaluates the same float32 torch objective and hands scipy the value and a float64 copy of the
  gradient. Only its first N evaluations count (it is stopped at the next one).
Every evaluation's total is recorded. The table gives, per optimiser, the BEST total among its N evaluated
points (a line search's rejected trial is an evaluated point too, and scipy's and stylelab's last evaluation
may be one), its ratio to scipy's, and "stall" where that best is above 0.9 x the starting total (the
optimiser has not moved the image). A second table gives the total at each one's N-th (last) evaluation.
Cases where stylelab's best is above 1.05 x scipy's print the first --curves values (default 20) of both;
--curves K prints them for every case.

The stand-in is the trained VGG16 in ../shared/weights/vgg16-hed.pth (Caffe input; not the paper's VGG19, see
its README); the vgg19_* cases use random weights (`model.weights=random`) and are a smoke test of the
optimisers on another network, not about pictures. `texture` (a tiled style of four flat colours, texture
synthesis from noise, loss.alpha=0) is always 64 px: the setting where torch's L-BFGS stalls
(tests/test_trained.py). Images come from ../shared/images (STYLELAB_SHARED overrides ../shared). CPU,
seed 0, deterministic: a second run prints the same numbers. --option KEY=VALUE (repeatable) is one more
override for every case.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from stylelab import api, backend, build, levels
from stylelab.cli.common import tool
from stylelab.errors import StyleLabError
from stylelab.io import images
from stylelab.losses import balance as balancing

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STYLELAB_SHARED", REPO.parent / "shared"))
WEIGHTS = SHARED / "weights" / "vgg16-hed.pth"
PICTURES = SHARED / "images"
STAND_IN = ["model=vgg16", f"model.weights={WEIGHTS}", "model.format=caffe"]
RANDOM19 = ["model=vgg19", "model.weights=random"]
STALL = 0.9  # best total above this fraction of the start: the optimiser did not move the image
WORSE = 1.05  # stylelab's best above this multiple of scipy's: its curves are printed


def tiles() -> torch.Tensor:
    """A 16 px tile of four flat colours, repeated to (3, 48, 64) (as tests/test_trained.py's)."""
    colours = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.7, 0.2], [0.15, 0.2, 0.9], [0.95, 0.85, 0.1]])
    tile = torch.zeros(3, 16, 16)
    for (y, x), colour in zip([(0, 0), (0, 8), (8, 0), (8, 8)], colours):
        tile[:, y : y + 8, x : x + 8] = colour[:, None, None]
    return tile.repeat(1, 3, 4)


def sky_and_ground(folder: Path, content: Path) -> list[Path]:
    """Two masks at the content's size: the top 40% (sky) and the rest (ground)."""
    height, width = images.load_image(content).shape[-2:]
    sky = torch.zeros(1, 3, height, width)
    sky[..., : round(0.4 * height), :] = 1
    return [images.save_image(sky, folder / "sky.png"), images.save_image(1 - sky, folder / "ground.png")]


@dataclass
class Case:
    """One objective: overrides (content, style and the rest), in-memory pictures, a size of its own."""

    what: str
    trained: bool  # needs the stand-in's weights file
    overrides: Callable[[Path], list[str]]  # (a temporary folder) -> overrides
    given: Callable[[], dict] = dict  # levels.read_pictures's in-memory pictures
    size: int | None = None  # fixed, whatever --size


def _pair(content: str, style: str, *rest: str) -> Callable[[Path], list[str]]:
    return lambda tmp: [f"content={PICTURES / content}", f"style={PICTURES / style}", *rest]


def _masks(tmp: Path) -> list[str]:
    sky, ground = sky_and_ground(tmp, PICTURES / "tubingen.jpg")
    styles = f"{PICTURES / 'starry_night.jpg'},{PICTURES / 'the_scream.jpg'}"
    return [
        f"content={PICTURES / 'tubingen.jpg'}",
        f"style=[{styles}]",
        f"mask.content=[{sky},{ground}]",
        "init=content",
    ]


CASES = {
    "content": Case(
        "stand-in, tubingen x starry_night, colour none, from the photo",
        True,
        _pair("tubingen.jpg", "starry_night.jpg", "colour=none", "init=content"),
    ),
    "noise": Case(
        "stand-in, tubingen x starry_night, colour none, from noise",
        True,
        _pair("tubingen.jpg", "starry_night.jpg", "colour=none", "init=noise"),
    ),
    "luminance_content": Case(
        "stand-in, tubingen x starry_night, colour luminance, from the photo",
        True,
        _pair("tubingen.jpg", "starry_night.jpg", "colour=luminance", "init=content"),
    ),
    "luminance_noise": Case(
        "stand-in, tubingen x starry_night, colour luminance, from noise",
        True,
        _pair("tubingen.jpg", "starry_night.jpg", "colour=luminance", "init=noise"),
    ),
    "masks": Case("stand-in, tubingen: sky starry_night, ground the_scream, from the photo", True, _masks),
    "texture": Case(
        "stand-in, tiled texture of four colours (alpha 0), from noise, 64 px",
        True,
        lambda tmp: [f"content={PICTURES / 'tubingen.jpg'}", "loss.alpha=0", "init=noise"],
        given=lambda: {"style": tiles()},
        size=64,
    ),
    "shipwreck": Case(
        "stand-in, shipwreck x composition_vii, from the picture",
        True,
        _pair("shipwreck.jpg", "composition_vii.jpg", "init=content"),
    ),
    "vgg19_noise": Case(
        "vgg19 RANDOM weights (smoke), tubingen x starry_night, from noise",
        False,
        _pair("tubingen.jpg", "starry_night.jpg", "colour=none", "init=noise"),
    ),
    "vgg19_content": Case(
        "vgg19 RANDOM weights (smoke), tubingen x starry_night, from the photo",
        False,
        _pair("tubingen.jpg", "starry_night.jpg", "colour=none", "init=content"),
    ),
}


@dataclass
class Problem:
    """A case's objective as a run builds it, and its start x0 (1, 3, h, w)."""

    objective: object
    features: Callable
    seen: Callable  # what the loss sees of x (colour=luminance: its Y), as in a run
    x0: torch.Tensor
    seed: int
    optimizers: dict[str, Callable]  # name -> params -> torch optimizer, from the config
    values: list[float] = field(default_factory=list)  # every evaluation's total, of the optimiser running

    def evaluate(self, x: torch.Tensor) -> torch.Tensor:
        """The total at x, its gradient left in x.grad; recorded."""
        x.grad = None
        seen = self.seen(x)
        total = self.objective(self.features(seen), seen).total
        total.backward()
        value = float(total.detach())
        self.values.append(value if math.isfinite(value) else math.inf)
        return total


def problem(case: Case, size: int, options: list[str], tmp: Path) -> Problem:
    """Follows stylelab.loop._run up to the first step: config, pictures, network, targets, balance, x0."""
    overrides = [
        *(STAND_IN if case.trained else RANDOM19),
        *case.overrides(tmp),
        f"image.size={case.size or size}",
        "log.progress=false",
        "device=cpu",
        "seed=0",
        *options,
    ]
    given = case.given()
    if "style" in given:  # the config names what the run was given, as stylelab.api.transfer does
        overrides.append("style='<in-memory Tensor>'")
    factories = {}
    for name, option in (("stylelab", "lbfgs"), ("torch", "lbfgs_torch")):
        cfg, choices = api.compose_with_choices(*overrides, f"optimizer={option}")
        parts = build.build(cfg, choices)
        factories[name] = parts.optimizer
    # parts: the last one built (lbfgs_torch); everything but the optimizer is the same for both
    torch.manual_seed(parts.seed)
    read = levels.read_pictures(parts.inputs, parts.colour, given)
    weights = parts.model.load(seed=parts.seed, progress=False)
    network = parts.model.extractor(parts.objective.layers, weights, "cpu")
    objective, level = parts.objective, parts.levels[0]
    images_k = levels.prepare(level, read, network, objective, parts.model, parts.inputs, torch.device("cpu"))
    features = backend.fast(network, parts.channels_last, parts.compile)
    if None in objective.weights.values():
        balancing.balance(objective, balancing.rule_for(weights), features, images_k.content)
    objective.start_step(0)  # one objective for every optimiser (terms that draw random numbers draw step 0's)
    x0 = parts.init(images_k.content, images_k.styles[0], seed=parts.seed).detach().clone()
    return Problem(objective, features, parts.colour.seen, x0, parts.seed, factories)


def run_torch(p: Problem, name: str, n: int) -> list[float]:
    """stylelab's or torch's L-BFGS, built from the config, stepped until n evaluations: their totals."""
    torch.manual_seed(p.seed)
    p.values = []
    x = p.x0.clone().requires_grad_(True)
    opt = p.optimizers[name]([x])

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        return p.evaluate(x)

    while len(p.values) < n:
        opt.step(closure)
    return p.values[:n]


class _Enough(Exception):
    """Raised in scipy's function at its (n+1)-th call: the n evaluations are made."""


def run_scipy(p: Problem, n: int) -> list[float]:
    """scipy's L-BFGS-B on the same float32 objective: the totals of its first n evaluations."""
    from scipy.optimize import minimize

    torch.manual_seed(p.seed)
    p.values = []
    x = p.x0.clone().requires_grad_(True)

    def fun(z):
        if len(p.values) >= n:
            raise _Enough
        with torch.no_grad():
            x.copy_(torch.from_numpy(z).view_as(x))
        total = p.evaluate(x)
        return float(total.detach()), x.grad.double().numpy().ravel()

    try:
        minimize(
            fun,
            p.x0.double().numpy().ravel(),
            jac=True,
            method="L-BFGS-B",
            options={"maxfun": n, "maxiter": 10**6, "maxcor": 100, "gtol": 0, "ftol": 0},
        )
    except _Enough:
        pass
    return p.values[:n]


def cell(value: float, start: float) -> str:
    return f"{value:.4g}" + (" stall" if value > STALL * start else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evals", type=int, default=60, help="objective evaluations per optimiser")
    parser.add_argument("--size", type=int, default=64, help="image.size (texture is always 64)")
    parser.add_argument("--cases", nargs="+", default=list(CASES), metavar="CASE", help=", ".join(CASES))
    parser.add_argument(
        "--curves",
        type=int,
        default=None,
        metavar="K",
        help="print the first K totals of every optimiser in every case",
    )
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        print(f"unknown case {', '.join(unknown)}: the cases are {', '.join(CASES)}", file=sys.stderr)
        return 2
    if args.evals < 2:
        print(f"--evals must be at least 2, not {args.evals}", file=sys.stderr)
        return 2
    try:
        import scipy.optimize  # noqa: F401
    except ImportError:
        print("scipy is not installed, and it is the reference optimiser here: pip install scipy", file=sys.stderr)
        return 2
    trained = [c for c in args.cases if CASES[c].trained]
    if trained and not WEIGHTS.is_file():
        random = [c for c in args.cases if not CASES[c].trained] or ["vgg19_noise", "vgg19_content"]
        which = f"the cases {', '.join(trained)} need" if len(trained) > 1 else f"the case {trained[0]} needs"
        print(
            f"{which} the trained stand-in {WEIGHTS}, which is not there (set "
            f"STYLELAB_SHARED to the folder that holds weights/vgg16-hed.pth, or run the random-weight ones: "
            f"--cases {' '.join(random)})",
            file=sys.stderr,
        )
        return 2
    if not PICTURES.is_dir():
        print(
            f"the images are read from {PICTURES}, which is not there (set STYLELAB_SHARED to the folder that "
            f"holds images/)",
            file=sys.stderr,
        )
        return 2
    warnings.simplefilter("ignore")  # the random-weights warning: known, and said in the table
    n, rows, last_rows, curves, clock = args.evals, [], [], [], time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name in args.cases:
                case = CASES[name]
                p = problem(case, args.size, args.option, Path(tmp))
                runs = {
                    "scipy": run_scipy(p, n),
                    "stylelab": run_torch(p, "stylelab", n),
                    "torch": run_torch(p, "torch", n),
                }
                start = runs["scipy"][0]
                best = {k: min(v) for k, v in runs.items()}
                made = {k: len(v) for k, v in runs.items()}
                evals = (
                    str(n)
                    if all(m == n for m in made.values())
                    else f"{n} ({', '.join(f'{k} {m}' for k, m in made.items() if m != n)})"
                )
                ratio = {k: best[k] / best["scipy"] if best["scipy"] > 0 else math.nan for k in ("stylelab", "torch")}
                rows.append((name, evals, start, best, ratio))
                last_rows.append((name, start, {k: v[-1] for k, v in runs.items()}))
                if args.curves or ratio["stylelab"] > WORSE:
                    curves.append((name, runs, args.curves or 20, ratio["stylelab"]))
                print(f"  {name}: {case.what} ({time.perf_counter() - clock:.0f} s)", file=sys.stderr, flush=True)
    except StyleLabError as exc:
        print(exc, file=sys.stderr)
        return 2
    seconds = time.perf_counter() - clock

    print(
        f"\nBest total among the first {n} evaluations of each optimiser (same objective, same start; "
        f'size {args.size} px; "stall": above {STALL} x the start)\n'
    )
    print("| case | evals | start | scipy (best) | stylelab (best) | torch (best) | stylelab/scipy | torch/scipy |")
    print("|---|---|---|---|---|---|---|---|")
    for name, evals, start, best, ratio in rows:
        print(
            f"| {name} | {evals} | {start:.4g} | {cell(best['scipy'], start)} | {cell(best['stylelab'], start)} | "
            f"{cell(best['torch'], start)} | {ratio['stylelab']:.3f} | {ratio['torch']:.3g} |"
        )
    print(f"\nTotal at the last ({n}-th) evaluation\n")
    print("| case | start | scipy (last) | stylelab (last) | torch (last) |")
    print("|---|---|---|---|---|")
    for name, start, last in last_rows:
        print(f"| {name} | {start:.4g} | {last['scipy']:.4g} | {last['stylelab']:.4g} | {last['torch']:.4g} |")
    stalls = sum(best[k] > STALL * start for _, _, start, best, _ in rows for k in best)
    stalled = [f"{name} {k}" for name, _, start, best, _ in rows for k in best if best[k] > STALL * start]
    worst = max(rows, key=lambda row: row[4]["stylelab"])
    print(
        f"\nworst stylelab/scipy {worst[4]['stylelab']:.3f} ({worst[0]}); stalls: {stalls}"
        + (f" ({', '.join(stalled)})" if stalled else "")
        + f"; {seconds:.0f} s"
    )
    for name, runs, k, ratio in curves:
        why = "" if ratio <= WORSE else f" (stylelab/scipy {ratio:.3f} > {WORSE})"
        print(f"\n{name}: the first {k} totals{why}")
        for opt, values in runs.items():
            if args.curves or opt != "torch":
                print(f"  {opt:8s} " + " ".join(f"{v:.4g}" for v in values[:k]))
    return 0


if __name__ == "__main__":
    tool(Path(__file__).name, lambda: sys.exit(main()))  # a user's mistake: one sentence, exit 2
