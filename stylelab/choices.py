"""Every list of choices a setting takes, written once: the library checks values against these, the config
schema makes its enums from them (stylelab.signatures.choice) and `stylelab --help` prints them. Nothing but the
standard library here, so the light tools (stylelab-summary, stylelab-figure) load no torch for them."""

from __future__ import annotations

import os
from typing import Literal

Device = Literal["auto", "cpu", "cuda"]  # device
Pooling = Literal["avg", "max"]  # model.pooling: avg replaces every max pool, as in the paper
Format = Literal["auto", "torchvision", "caffe", "matconvnet"]  # model.format: the input a weights file expects
Method = Literal["pca", "chol", "sym"]  # colour.method of colour=match
Propagation = Literal["simple", "inside", "all"]  # mask.propagation: how a mask reaches each layer
Corner = Literal["bottom_left", "bottom_right", "top_left", "top_right"]  # figure.inset, stylelab-figure --inset
Target = Literal["content", "style", "previous", "none"]  # what a loss term compares against (previous: earlier frames)
LineSearch = Literal["strong_wolfe"]  # optimizer.line_search of optimizer=lbfgs_torch
Preset = Literal["ultrafast", "fast", "medium"]  # video.flow.preset of video/flow=dis (OpenCV's DIS presets)
RaftSize = Literal["large", "small"]  # video.flow.size of video/flow=raft (torchvision's two RAFTs)
# a content that is one of these is a clip (a folder: its images, in name order), read frame by frame; a GIF stays
# an image (its first frame), as it always was
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def is_clip(spec) -> bool:
    """Whether a content names a clip: a folder (or a name ending in a slash), or a file whose suffix is a video's.
    Only the name and the kind of entry are looked at, nothing is read: the command line asks it of every image."""
    text = os.fspath(spec)
    if not text:
        return False  # "" is the working folder: an empty argument is not a clip of it
    return text.endswith(("/", os.sep)) or os.path.isdir(text) or os.path.splitext(text)[1].lower() in VIDEO_SUFFIXES
