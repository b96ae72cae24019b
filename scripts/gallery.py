"""The gallery (docs/gallery.md), remade on the trained stand-in VGG16 (../shared/weights/vgg16-hed.pth): one command.

    python scripts/gallery.py --c2f --figures        # everything but the 17-minute default (docs/gallery/*.jpg)
    python scripts/gallery.py --default              # the default command's picture too (512 px, 500 steps)
    python scripts/gallery.py --only colour_luminance losses_w2

Each entry is one run of stylelab's Python API, with the stand-in's three settings (model=vgg16, its file,
model.format=caffe) and the entry's own; the rest are the defaults (model=vgg16 starts from the photo, beta
from the weights' balance rule). Pictures are written as JPEG (quality 85) and listed, with their settings and
time and its three measures (stylelab.measures: edge correlation with the photo, palette distance to the
painting and to the photo, texture ratio), in docs/gallery/gallery.json, which docs/gallery.md shows.
The coarse-to-fine pair comes from
benchmarks/coarse_to_fine.py --save docs/gallery, the figures from the experiments (--figures).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
from PIL import Image

import stylelab
from stylelab import measures
from stylelab.cli.common import tool
from stylelab.io import images, samples

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STYLELAB_SHARED", REPO.parent / "shared"))
WEIGHTS = SHARED / "weights" / "vgg16-hed.pth"
STAND_IN = ["model=vgg16", f"model.weights={WEIGHTS}", "model.format=caffe", "log.progress=false"]
OUT = REPO / "docs" / "gallery"


def entries(size: int, steps: int, masks: tuple[Path, Path]) -> dict[str, tuple[str, list[str]]]:
    """name: (what it shows, its overrides); the content is Tübingen and the style The Starry Night unless the
    overrides say otherwise (`content=...`, `style=...`)."""
    common = [f"image.size={size}", f"steps={steps}"]
    sky, ground = masks
    out = {"default": ("the default command (512 px, 500 steps)", [])}
    for loss in ("gram", "mean_std", "w2", "sliced_w2"):
        out[f"losses_{loss}"] = (f"loss/style={loss}", [*common, f"loss/style={loss}"])
    for colour in ("none", "luminance", "match", "original"):
        out[f"colour_{colour}"] = (f"colour={colour}", [*common, f"colour={colour}"])
    out["blend"] = (
        "style=[starry_night,the_scream] style_blend=[0.5,0.5]",
        [*common, "style=[starry_night,the_scream]", "style_blend=[0.5,0.5]"],
    )
    out["masks"] = (
        "mask.content=[sky,ground] style=[starry_night,the_scream]",
        [*common, "style=[starry_night,the_scream]", f"mask.content=[{sky},{ground}]"],
    )
    out["noise"] = ("init=noise (the paper's start)", [*common, "init=noise"])
    out["noise_content"] = (
        "init=noise loss.beta=0: the content term alone from noise",
        [*common, "init=noise", "loss.beta=0"],
    )
    out["astronaut"] = ("content=astronaut (a second photo)", [*common, "content=astronaut"])
    out["astronaut_scream"] = ("content=astronaut style=the_scream", [*common, "content=astronaut", "style=the_scream"])
    for scale in ("0.5", "1", "2"):
        out[f"style_scale_{scale}"] = (f"style_scale={scale}", [*common, f"style_scale={scale}"])
    out["laplacian_off"] = ("loss.laplacian_weight=0 (the default)", [*common])
    out["laplacian_on"] = (
        "loss.laplacian_weight=<w> (w: the content term's weight at the end of the run "
        "without it, over the Laplacian term's)",
        [*common],
    )
    return out


def judged(picture: torch.Tensor, content: str, style: str) -> dict[str, float]:
    """A picture's measures (stylelab.measures.judged) against its photo and its painting, to 3 decimals."""
    photo, painting = (images.load_image(samples.resolve_image(name)) for name in (content, style))
    return {name: round(value, 3) for name, value in measures.judged(picture, photo, painting).items()}


def make_masks(size: int) -> tuple[Path, Path]:
    """Sky and the rest of the Tübingen photo: the top 40% of the picture and the bottom 60%."""
    photo = images.load_image(samples.resolve_image("tubingen"))
    h, w = photo.shape[-2:]
    sky = torch.zeros(1, 3, h, w)
    sky[..., : int(0.4 * h), :] = 1
    folder = REPO / "outputs" / "gallery" / "masks"  # made again each time, not committed
    return (images.save_image(sky, folder / "sky.png"), images.save_image(1 - sky, folder / "ground.png"))


def jpeg(picture: torch.Tensor, path: Path, width: int | None = None) -> Path:
    im = images.to_pil(picture)
    if width and im.width > width:
        im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, format="JPEG", quality=85, optimize=True)
    return path


def figures(size: int, steps: int) -> dict[str, str]:
    """The paper's figures that the stand-in can make here, as `stylelab -m` sweeps and `stylelab-figure`."""
    made = {}
    runs = {
        "fig1_content": ["+experiment=gatys2016/fig1_content"],
        "fig1_style": ["+experiment=gatys2016/fig1_style"],
        "fig3": [
            "+experiment=gatys2016/fig3",
            "inputs.picasso=woman_with_hat",  # not run: the panel is left out
            "experiment/gatys2016/fig3_panel=shipwreck,starry_night,the_scream,composition_vii",
        ],
        "colour_2017": ["+experiment=gatys2017/colour"],
    }
    for name, overrides in runs.items():
        sweep = REPO / "outputs" / "gallery" / name
        cmd = [
            sys.executable,
            "-m",
            "stylelab.cli",
            "-m",
            *overrides,
            *STAND_IN,
            f"image.size={size}",
            f"steps={steps}",
            f"hydra.sweep.dir={sweep}",
        ]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=REPO)
        subprocess.run(
            [str(Path(sys.executable).with_name("stylelab-figure")), str(sweep), "--panel", str(size)],
            check=True,
            cwd=REPO,
        )
        with Image.open(sweep / "figure.png") as im:
            im.convert("RGB").save(OUT / f"{name}.jpg", format="JPEG", quality=85, optimize=True)
        made[name] = f"{' '.join(overrides)} image.size={size} steps={steps}: {time.perf_counter() - start:.0f} s"
        print(f"{name}: {made[name]}", flush=True)
    return made


def coarse_to_fine() -> str:
    """benchmarks/coarse_to_fine.py's best schedule on the stand-in; its two pictures as JPEG."""
    folder = REPO / "outputs" / "gallery" / "c2f"
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "coarse_to_fine.py"),
        "--weights",
        str(WEIGHTS),
        "--option",
        "model=vgg16",
        "--option",
        "model.format=caffe",
        "--sizes",
        "128",
        "512",
        "--coarse-steps",
        "100",
        "--save",
        str(folder),
    ]
    printed = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO).stdout
    print(printed, flush=True)
    for name in ("c2f", "single_same_time"):
        jpeg(images.load_image(folder / f"{name}.png")[None], OUT / f"{name}.jpg", width=512)
    return printed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--only", nargs="+", help="entry names (see docs/gallery/gallery.json)")
    parser.add_argument("--default", action="store_true", help="also the default command's picture (slow)")
    parser.add_argument("--figures", action="store_true", help="also the paper's figures, as sweeps")
    parser.add_argument("--c2f", action="store_true", help="also coarse to fine beside a single run (5 min)")
    parser.add_argument("--figure-size", type=int, default=128)
    parser.add_argument("--figure-steps", type=int, default=200)
    args = parser.parse_args()
    if not WEIGHTS.is_file():
        sys.exit(
            f"gallery: the stand-in {WEIGHTS} is not there (set STYLELAB_SHARED to the folder that has "
            f"weights/vgg16-hed.pth)"
        )
    record_path = OUT / "gallery.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    record["machine"] = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    )
    todo = entries(args.size, args.steps, make_masks(args.size))
    names = args.only or [n for n in todo if n != "default" or args.default]
    laplacian_weight = None
    for name in names:
        label, overrides = todo[name]
        if name == "laplacian_on":
            if laplacian_weight is None:
                off = stylelab.transfer("tubingen", "starry_night", *STAND_IN, *todo["laplacian_off"][1])
                laplacian_weight = float(off.final.values["content"]) / float(off.final.values["laplacian"])
            overrides = [*overrides, f"loss.laplacian_weight={laplacian_weight:.3g}"]
            label = f"loss.laplacian_weight={laplacian_weight:.3g}"
        named = {key: value for key, _, value in (o.partition("=") for o in overrides) if key in ("content", "style")}
        content, style = named.get("content", "tubingen"), named.get("style", "starry_night")
        rest = [o for o in overrides if o.partition("=")[0] not in ("content", "style")]
        start = time.perf_counter()
        styles = style.strip("[]").split(",") if style.startswith("[") else style  # a list: blended or per region
        result = stylelab.transfer(content, styles, *STAND_IN, *rest)
        seconds = time.perf_counter() - start
        path = jpeg(result.image, OUT / f"{name}.jpg", width=512)
        record[name] = {
            "label": label,
            "overrides": overrides[:],
            "steps": result.steps_done,
            "size": list(result.image.shape[-2:]),
            "seconds": round(seconds),
            "measures": judged(result.image[0], content, styles[0] if isinstance(styles, list) else styles),
        }
        print(f"{name}: {label}, {result.steps_done} steps, {seconds:.0f} s -> {path}", flush=True)
        record_path.write_text(json.dumps(record, indent=1))
    if args.c2f:
        record["coarse_to_fine"] = coarse_to_fine()
        record_path.write_text(json.dumps(record, indent=1))
    if args.figures:
        record["figures"] = {**record.get("figures", {}), **figures(args.figure_size, args.figure_steps)}
        record_path.write_text(json.dumps(record, indent=1))
    total = sum(p.stat().st_size for p in OUT.glob("*.jpg"))
    print(f"docs/gallery: {total} bytes of JPEG")


if __name__ == "__main__":
    tool(Path(__file__).name, main)  # a user's mistake: one sentence, exit 2
