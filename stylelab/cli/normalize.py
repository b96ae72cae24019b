"""`stylelab-normalize`: write the paper's normalised network (the work is in stylelab.models.normalize)."""

from __future__ import annotations

import argparse
from pathlib import Path

from stylelab.backend import DEVICES, resolve_device
from stylelab.cli.common import tool
from stylelab.models import formats
from stylelab.models.arch import ARCHS, POOLINGS
from stylelab.models.normalize import calibration_images, normalize_vgg, save_normalized
from stylelab.models.weights import load_weights


def normalize(argv: list[str] | None = None) -> Path:
    """The command; a StyleLabError comes out as one line and exit code 2 (see main)."""
    parser = argparse.ArgumentParser(
        prog="stylelab-normalize",
        description="Write the paper's normalised VGG: each conv filter rescaled so that its mean rectified "
        "response over the images and positions is 1 (same function up to a positive per-channel scale). "
        "The output loads with model.weights=<out>, with the right input convention and no other flag.",
    )
    parser.add_argument("--model", default="vgg19", choices=list(ARCHS), help="the network (default vgg19)")
    parser.add_argument("--weights", default="imagenet", help="imagenet, random (tests only) or a .pth/.mat file")
    parser.add_argument("--format", default="auto", choices=formats.FORMATS, help="the input the weights expect")
    parser.add_argument("--images", nargs="+", required=True, help="image files and/or folders of images")
    parser.add_argument("--size", type=int, default=256, help="longest side the images are scaled to (default 256)")
    parser.add_argument("--pooling", default="max", choices=POOLINGS, help="while measuring (default max)")
    parser.add_argument("--device", default="auto", choices=DEVICES)
    parser.add_argument("--seed", type=int, default=0, help="for --weights random")
    parser.add_argument("--out", help="output file (default <model>-normalised.pth)")
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    pictures = calibration_images(args.images, args.size)  # before the (large) weights: fail fast
    loaded = load_weights(args.model, args.weights, format=args.format, seed=args.seed, progress=True)
    result = normalize_vgg(
        loaded.state, loaded.convention, pictures, arch=args.model, pooling=args.pooling, device=device
    )
    note = f"mean rectified response 1 over {len(pictures)} images at longest side {args.size}, {args.pooling} pooling"
    out = save_normalized(args.out or f"{args.model}-normalised.pth", result, loaded.convention, loaded.format, note)

    low = min((float(m[m > 0].min()) for m in result.means.values() if (m > 0).any()), default=0.0)
    high = max(float(m.max()) for m in result.means.values())
    dead = ", ".join(f"{name} {n}" for name, n in result.dead.items() if n) or "none"
    print(
        f"stylelab-normalize: wrote {out} ({loaded.format} input convention, {note}); filter means before were "
        f"{low:.3g} to {high:.3g}; dead filters (mean 0, left unscaled): {dead}",
        flush=True,
    )
    return out


def main(argv: list[str] | None = None) -> None:
    tool("stylelab-normalize", lambda: normalize(argv))
