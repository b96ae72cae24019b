"""Optical flow between frames: OpenCV's DIS (fast) and DeepFlow (the paper's choice), torchvision's RAFT; the
Middlebury .flo file format; and a folder that keeps every flow computed once (FlowCache).

Every method is a small object with a `name` (its folder in a FlowCache) that is called as method(a, b) on two
frames (3, H, W) in [0, 1] and returns the flow from a to b, (2, H, W) float32: a(p) ~ b(p + flow(p)), the
convention of OpenCV's calcOpticalFlow(prev=a, next=b) (see stylelab.video.warp).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from stylelab import backend
from stylelab.choices import Device, Preset, RaftSize
from stylelab.controls.colour import luminance
from stylelab.errors import Download, NotDownloaded, StyleLabError
from stylelab.io.atomic import read_reason, write_atomic
from stylelab.io.samples import network_reason
from stylelab.video.warp import reliable

try:
    import cv2
except ImportError:  # DIS and DeepFlow then say what to install; RAFT and the rest work without OpenCV
    cv2 = None

OPENCV = "pip install opencv-contrib-python-headless"
DIS_PRESETS = {
    "ultrafast": "DISOPTICAL_FLOW_PRESET_ULTRAFAST",
    "fast": "DISOPTICAL_FLOW_PRESET_FAST",
    "medium": "DISOPTICAL_FLOW_PRESET_MEDIUM",
}
RAFT_SIZES = {"large": ("raft_large", "Raft_Large_Weights"), "small": ("raft_small", "Raft_Small_Weights")}
RAFT_MULTIPLE = 8  # RAFT works at 1/8 of the resolution: both sides must be multiples of 8
# its 4-level correlation pyramid halves the 1/8 map 3 times and needs 2 values at the top: torchvision refuses
# feature maps under 16, i.e. frames under 8 * 16 = 128 px
RAFT_MIN_SIDE = 128
FLO_MAGIC = 202021.25  # "PIEH" as a little-endian float: the first 4 bytes of every Middlebury .flo file


class FlowMethod(Protocol):
    name: str

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor: ...


def _frame(image: torch.Tensor) -> torch.Tensor:
    """A frame (3, H, W) or (1, 3, H, W) as (3, H, W) float32 on the CPU."""
    return image.detach().reshape(3, *image.shape[-2:]).float().cpu()


def grey(image: torch.Tensor) -> np.ndarray:
    """A frame as OpenCV's methods want it: luminance (the same weights as cv2.COLOR_RGB2GRAY), uint8 (H, W)."""
    y = luminance(_frame(image).clamp(0, 1))[0]  # (H, W)
    # + 0.5 and truncation round (y is in [0, 1]); torch.round takes milliseconds on a frame on some CPUs
    return (y * 255 + 0.5).to(torch.uint8).numpy()


def _from_opencv(flow: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(flow, dtype=np.float32)).permute(2, 0, 1).contiguous()  # (2, H, W)


def _need_opencv(method: str, contrib: bool = False) -> None:
    if cv2 is None:
        raise StyleLabError(f"flow={method} needs OpenCV: {OPENCV}")
    if contrib and not hasattr(cv2, "optflow"):
        raise StyleLabError(f"flow={method} needs OpenCV's contrib modules: {OPENCV} (in place of opencv-python)")


class DIS:
    """OpenCV's Dense Inverse Search (Kroeger et al. 2016): a fraction of a second a frame on a CPU."""

    def __init__(self, preset: Preset = "medium"):
        if preset not in DIS_PRESETS:
            raise StyleLabError(f"DIS has no preset '{preset}'; choose one of {', '.join(DIS_PRESETS)}")
        _need_opencv("dis")
        self.preset = preset
        self.name = f"dis-{preset}"
        self._dis = cv2.DISOpticalFlow_create(getattr(cv2, DIS_PRESETS[preset]))

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return _from_opencv(self._dis.calc(grey(a), grey(b), None))


class DeepFlow:
    """OpenCV contrib's DeepFlow (Weinzaepfel et al. 2013), the flow the paper used; seconds a frame."""

    name = "deepflow"

    def __init__(self):
        _need_opencv("deepflow", contrib=True)
        self._deepflow = cv2.optflow.createOptFlow_DeepFlow()

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return _from_opencv(self._deepflow.calc(grey(a), grey(b), None))


def raft_cache_file(size: str = "large") -> Path:
    """Where torchvision's loader caches RAFT's weights ($TORCH_HOME/hub/checkpoints/...)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(_raft_weights(size).url)


def _optical_flow():
    """torchvision's optical flow models, imported here, where RAFT is used, as stylelab.models.arch imports
    torchvision: importing it takes a second or more (it loads torch._dynamo), which a run with DIS or DeepFlow,
    and `stylelab --help` (whose API imports the video run), need not pay."""
    import torchvision.models.optical_flow

    return torchvision.models.optical_flow


def _check_size(size: str) -> None:
    if size not in RAFT_SIZES:
        raise StyleLabError(f"RAFT comes in sizes {' and '.join(RAFT_SIZES)}, not '{size}'")


def _raft_weights(size: str):
    """RAFT's DEFAULT weights entry of torchvision (their URL, and the loader that downloads and checks them)."""
    _check_size(size)
    return getattr(_optical_flow(), RAFT_SIZES[size][1]).DEFAULT


def _raft_state_dict(size: str, progress: bool) -> dict[str, torch.Tensor]:
    """RAFT's weights through torchvision's loader (a hash-checked download into torch.hub's cache, or the cached
    file), as stylelab.models.weights fetches VGG's; offline: NotDownloaded, naming the file."""
    weights, target = _raft_weights(size), raft_cache_file(size)
    try:
        return weights.get_state_dict(progress=progress)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:  # the last two: a bad file
        if target.exists():
            raise StyleLabError(
                f"the cached RAFT ({size}) weights {target} cannot be read ({exc}); delete it to re-download"
            ) from None
        prefix = target.stem.rsplit("-", 1)[-1]  # torch.hub's names end in the first digits of the sha256
        raise NotDownloaded([Download(target.name, weights.url, target.parent, prefix, network_reason(exc))]) from None


class RAFT:
    """torchvision's RAFT (Teed & Deng 2020) with its DEFAULT weights (FlyingChairs, FlyingThings, Sintel, KITTI,
    HD1K); `weights=None`: random weights, for tests of shapes only. The network is loaded at the first call."""

    def __init__(
        self,
        size: RaftSize = "large",
        device: Device = "auto",
        *,
        weights: str | None = "default",
        progress: bool = True,
        updates: int = 12,
    ):
        _check_size(size)
        if weights not in ("default", None):
            raise StyleLabError(f"RAFT takes weights='default' or None (random, for tests), not {weights!r}")
        self.size, self.weights, self.progress, self.updates = size, weights, progress, updates
        self.device = backend.resolve_device(str(device))  # auto: CUDA where there is a GPU
        self.name = f"raft-{size}" if weights else f"raft-{size}-random"  # random flows never share a cache folder
        self._model: torch.nn.Module | None = None

    def download(self, progress: bool = True) -> list[Download]:
        """The weights fetched into torch.hub's cache now, if they are not there yet; what could not be downloaded,
        so that a run names every missing file at once."""
        if self.weights is None or raft_cache_file(self.size).exists():
            return []
        try:
            _raft_state_dict(self.size, progress)
        except NotDownloaded as exc:
            return exc.downloads
        return []

    def network(self) -> torch.nn.Module:
        if self._model is None:
            builder = getattr(_optical_flow(), RAFT_SIZES[self.size][0])
            model = builder(weights=None, progress=False)
            if self.weights is not None:
                model.load_state_dict(_raft_state_dict(self.size, self.progress))
            self._model = model.eval().to(self.device)
        return self._model

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        model = self.network()
        pair = torch.stack([_frame(a), _frame(b)]).to(self.device) * 2 - 1  # (2, 3, H, W) in RAFT's [-1, 1]
        h, w = pair.shape[-2:]
        # replicate padding, split between both sides, to multiples of 8 (and at least 128 px); cropped back after
        pad_h = max(-h % RAFT_MULTIPLE, RAFT_MIN_SIDE - h)
        pad_w = max(-w % RAFT_MULTIPLE, RAFT_MIN_SIDE - w)
        top, left = pad_h // 2, pad_w // 2
        pair = F.pad(pair, (left, pad_w - left, top, pad_h - top), mode="replicate")  # (2, 3, H', W')
        with torch.no_grad():
            flow = model(pair[:1], pair[1:], num_flow_updates=self.updates)[-1]  # (1, 2, H', W'): the last update
        return flow[0, :, top : top + h, left : left + w].float().cpu().contiguous()  # (2, H, W)


def write_flo(path: str | os.PathLike, flow: torch.Tensor) -> None:
    """A flow (2, H, W) as a Middlebury .flo file: the float 202021.25, the width and the height as int32, then the
    rows of interleaved float32 (u, v), all little-endian. Written atomically."""
    flow = flow.detach().reshape(2, *flow.shape[-2:]).float().cpu()
    h, w = flow.shape[-2:]
    body = flow.permute(1, 2, 0).numpy().astype("<f4")  # (H, W, 2): u, v interleaved along each row

    def write(f: BinaryIO) -> None:
        f.write(np.array([FLO_MAGIC], dtype="<f4").tobytes())
        f.write(np.array([w, h], dtype="<i4").tobytes())
        f.write(body.tobytes())

    write_atomic(path, write)


def read_flo(path: str | os.PathLike) -> torch.Tensor:
    """A Middlebury .flo file as a flow (2, H, W) float32; a file that is not one: StyleLabError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StyleLabError(f"cannot read the flow file '{path}': {read_reason(exc)}") from None
    if len(data) < 12 or np.frombuffer(data[:4], dtype="<f4")[0] != np.float32(FLO_MAGIC):
        raise StyleLabError(f"'{path}' is not a Middlebury .flo file: it does not start with the float 202021.25")
    w, h = (int(v) for v in np.frombuffer(data[4:12], dtype="<i4"))
    expected = 12 + 8 * w * h
    if w <= 0 or h <= 0 or len(data) != expected:
        raise StyleLabError(
            f"the flow file '{path}' is damaged: its header says {w} x {h} pixels ({expected} bytes), "
            f"but it has {len(data)} bytes"
        )
    body = np.frombuffer(data[12:], dtype="<f4").reshape(h, w, 2)
    return torch.from_numpy(body.astype(np.float32)).permute(2, 0, 1).contiguous()  # (2, H, W)


class Files:
    """Flows given as files, not computed (`video/flow=files video.flow.folder=<folder>`): ground truth (a synthetic
    clip's, a dataset's), or another tool's. The flow from frame i to frame j (numbered from 1) is
    <folder>/{i:05d}_{j:05d}.flo in the Middlebury format, the layout FlowCache writes: a run reads both directions
    between the frames it compares (00002_00001.flo and 00001_00002.flo for frames 1 and 2)."""

    name = "files"

    def __init__(self, folder: str = ""):
        if not folder:
            raise StyleLabError(
                "video/flow=files needs video.flow.folder=<a folder of .flo files, 00002_00001.flo ...>"
            )
        self.folder = Path(folder)

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        raise StyleLabError(f"video/flow=files computes no flow: every flow is read from {self.folder}")


class FlowCache:
    """Flows between a clip's frames, each computed once with `method` and kept as a .flo file in
    folder / method.name / "{i+1:05d}_{j+1:05d}.flo" (frame numbers from 1 in file names, from 0 in calls), so
    that runs over the same clip (a sweep over loss weights) share them and never compute one twice."""

    def __init__(self, folder: str | os.PathLike, method: FlowMethod):
        self.folder = Path(folder)
        self.method = method

    def path(self, i: int, j: int) -> Path:
        folder = self.method.folder if isinstance(self.method, Files) else self.folder / self.method.name
        return folder / f"{i + 1:05d}_{j + 1:05d}.flo"

    def flow(self, i: int, j: int, frame_i: torch.Tensor, frame_j: torch.Tensor) -> torch.Tensor:
        """The flow from frame i to frame j, (2, H, W): read back if it was computed before, else computed now and
        stored."""
        path = self.path(i, j)
        h, w = frame_i.shape[-2:]
        if path.is_file():
            flow = read_flo(path)
            if tuple(flow.shape[-2:]) != (h, w):
                raise StyleLabError(
                    f"the cached flow '{path}' is {flow.shape[-1]} x {flow.shape[-2]} pixels but the frames are "
                    f"{w} x {h}; delete the folder {path.parent} to compute the flows again"
                )
            return flow
        if isinstance(self.method, Files):
            raise StyleLabError(
                f"video/flow=files: there is no flow file '{path}' (the flow from frame {i + 1} to {j + 1})"
            )
        flow = self.method(frame_i, frame_j).detach().float().cpu()  # (2, H, W)
        write_flo(path, flow)
        return flow

    def weights(self, i: int, j: int, frame_i: torch.Tensor, frame_j: torch.Tensor) -> torch.Tensor:
        """Ruder et al.'s weights c, (1, H, W), for bringing frame j into frame i: reliable(flow(i, j), flow(j, i))."""
        return reliable(self.flow(i, j, frame_i, frame_j), self.flow(j, i, frame_j, frame_i))
