"""Every list of choices a setting takes, written once: the library checks values against these, the config
schema makes its enums from them (stylelab.signatures.choice) and `stylelab --help` prints them. Nothing but the
standard library here, so the light tools (stylelab-summary, stylelab-figure) load no torch for them."""

from __future__ import annotations

from typing import Literal

Device = Literal["auto", "cpu", "cuda"]  # device
Pooling = Literal["avg", "max"]  # model.pooling: avg replaces every max pool, as in the paper
Format = Literal["auto", "torchvision", "caffe", "matconvnet"]  # model.format: the input a weights file expects
Method = Literal["pca", "chol", "sym"]  # colour.method of colour=match
Propagation = Literal["simple", "inside", "all"]  # mask.propagation: how a mask reaches each layer
Corner = Literal["bottom_left", "bottom_right", "top_left", "top_right"]  # figure.inset, stylelab-figure --inset
Target = Literal["content", "style", "none"]  # what a loss term compares against
LineSearch = Literal["strong_wolfe"]  # optimizer.line_search of optimizer=lbfgs_torch
