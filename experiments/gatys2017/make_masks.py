"""Masks of the sky and the ground of the Tübingen photo (the `tubingen` sample), for gatys2017/spatial.

    python experiments/gatys2017/make_masks.py masks/        # -> masks/sky.png, masks/ground.png

The sky is what is blue and bright and reaches the top edge of the picture unbroken (column by column),
smoothed by a small closing; the ground is the rest. Any photo works: --photo <file>.
"""

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from stylelab.io import images, samples


def sky_mask(photo: torch.Tensor) -> torch.Tensor:
    """(3, H, W) -> (H, W) bool: blue-dominated bright pixels connected to the top edge within their column."""
    r, g, b = photo
    blue = (b > r + 0.08) & (b > 0.45)
    from_top = torch.cumprod(blue.float(), dim=0)  # 1 until the first non-sky pixel of each column
    close = F.max_pool2d(from_top[None, None], 5, stride=1, padding=2)  # closing: dilate, then erode
    close = -F.max_pool2d(-close, 5, stride=1, padding=2)
    return close[0, 0] > 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder for sky.png and ground.png")
    parser.add_argument("--photo", default="tubingen", help="a sample name or an image file (default tubingen)")
    args = parser.parse_args()
    photo = images.load_image(samples.resolve_image(args.photo))
    sky = sky_mask(photo).float()
    for name, mask in (("sky", sky), ("ground", 1 - sky)):
        path = images.save_image(mask.expand(3, *mask.shape), args.out / f"{name}.png")
        print(f"wrote {path} ({mask.mean():.0%} of the picture)")


if __name__ == "__main__":
    main()
