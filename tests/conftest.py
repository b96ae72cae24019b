"""Shared fixtures and helpers: small generated images, a TORCH_HOME holding random weights under torchvision's
name, composing and running jobs in-process, running the real CLI in a subprocess, reading TensorBoard."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from stylelab import api, backend, build, levels, loop
from stylelab.io.folders import events_dir
from stylelab.losses import balance as balancing
from stylelab.models.weights import imagenet_cache_file, random_state_dict

REPO = Path(__file__).resolve().parents[1]
# a tiny run on random weights (tests and smoke runs only: not meaningful art)
SMOKE = ["model.weights=random", "image.size=48", "log.progress=false"]
# two shallow layers keep runs short where the layers do not matter
SHALLOW = ["loss.style_layers=[relu1_1,relu2_1]", "loss.content_layers=[relu2_1]"]
PAPER_STYLE = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


def compose_cfg(*overrides: str):
    """The config `stylelab OVERRIDES` runs with (through the API's compose: the same files and schema)."""
    return api.compose(*overrides)


def run_job(run_dir: Path | None, *overrides: str, **kwargs):
    """Run `stylelab OVERRIDES` in this process, as the CLI's app does, writing into run_dir."""
    cfg, choices = api.compose_with_choices(*overrides)
    return loop.run(build.build(cfg, choices), run_dir, resume=bool(cfg.resume), **kwargs)


class FirstLevel:
    """A config's parts, its network as the run uses it, and its first level's images with every target set."""

    def __init__(self, *overrides: str, pictures: dict | None = None):
        cfg, choices = api.compose_with_choices(*overrides)
        self.parts = build.build(cfg, choices)
        device = backend.resolve_device(self.parts.device)
        read = levels.read_pictures(self.parts.inputs, self.parts.colour, pictures)
        self.weights = self.parts.model.load(seed=self.parts.seed, progress=False)
        network = self.parts.model.extractor(self.parts.objective.layers, self.weights, device)
        self.images = levels.prepare(
            self.parts.levels[0], read, network, self.parts.objective, self.parts.model, self.parts.inputs, device
        )
        self.network = network
        self.features = backend.fast(network, self.parts.channels_last, self.parts.compile)
        if None in self.parts.objective.weights.values():  # the weights' own balance, as the run sets it
            balancing.balance(
                self.parts.objective, balancing.rule_for(self.weights), self.features, self.images.content
            )
        self.init = self.parts.init(self.images.content, self.images.styles[0], seed=self.parts.seed)

    def losses(self, image=None):
        image = self.init if image is None else image
        self.parts.objective.start_step(0)
        return self.parts.objective(self.features(image), image)


def events(folder) -> EventAccumulator:
    """A run folder's TensorBoard events (in the folder itself; an older run's in its tb/)."""
    acc = EventAccumulator(str(events_dir(folder)), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def hparams_of(folder) -> dict:
    content = events(folder).PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {
        k: (
            v.string_value
            if v.HasField("string_value")
            else v.number_value
            if v.HasField("number_value")
            else v.bool_value
        )
        for k, v in info.hparams.items()
    }


def differing_hparams(folder) -> set[str]:
    """The settings a run's HParams record marks as differing between the runs of its sweep (shown first)."""
    content = events(folder).PluginTagToContent("hparams")["_hparams_/experiment"]
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content).experiment
    return {info.name for info in experiment.hparam_infos if info.differs}


def interrupt_after(k: int):
    """Stands in for StopSignals.reason: a SIGINT that arrives after k updates (real signals: subprocess tests)."""
    asked = iter(range(10**6))
    return lambda self: "interrupted" if next(asked) >= k else None


def steps_of(acc: EventAccumulator, tag: str, kind: str = "Scalars") -> list[int]:
    return [e.step for e in getattr(acc, kind)(tag)]


def written(folder: Path) -> dict[Path, int]:
    """Every file under `folder` with its modification time, leaving out the run lock (taking a lock to look at a
    folder is not writing to it)."""
    return {p: p.stat().st_mtime_ns for p in Path(folder).rglob("*") if p.is_file() and p.name != ".stylelab.lock"}


def make_image(path: Path, size=(48, 40), seed: int = 0) -> Path:
    """A smooth colour gradient with noise: structure for content, texture for style."""
    gen = torch.Generator().manual_seed(seed)
    w, h = size
    ys = torch.linspace(0, 1, h).view(h, 1).expand(h, w)
    xs = torch.linspace(0, 1, w).view(1, w).expand(h, w)
    rgb = torch.stack([xs, ys, (xs + ys) / 2]) * 0.7 + 0.3 * torch.rand(3, h, w, generator=gen)
    array = (rgb.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(array, "RGB").save(path)
    return path


@pytest.fixture
def content_png(tmp_path) -> Path:
    return make_image(tmp_path / "content.png", seed=1)


@pytest.fixture
def style_png(tmp_path) -> Path:
    return make_image(tmp_path / "style.png", size=(40, 56), seed=2)


@pytest.fixture(scope="session")
def random_weights_file(tmp_path_factory) -> Path:
    """Seeded random VGG19 weights in torchvision's full-model layout (features + a classifier key)."""
    path = tmp_path_factory.mktemp("weights") / "vgg19-random.pth"
    state = random_state_dict(seed=123)
    state["classifier.6.bias"] = torch.zeros(1000)
    torch.save(state, path)
    return path


@pytest.fixture
def torch_home_with_weights(tmp_path, monkeypatch, random_weights_file) -> Path:
    """TORCH_HOME in tmp with random weights under the file name torchvision's ImageNet loader looks for."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    target = imagenet_cache_file()
    target.parent.mkdir(parents=True)
    os.symlink(random_weights_file, target)
    return home


# For subprocesses: no network, every HTTP(S) request goes to a closed port on loopback and fails at once.
# (Only for a fresh process: urllib reads the proxy variables once per process.)
OFFLINE_ENV = {
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "no_proxy": "",
    "NO_PROXY": "",
}


def signal_mid_run(args: list[str], run_dir: Path, sig: int, after: int = 2) -> subprocess.CompletedProcess:
    """Start `stylelab ARGS hydra.run.dir=RUN_DIR`, wait until it has made `after` steps (its step PNGs are the
    readiness signal, however loaded the machine is), send it `sig` and wait for it to end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "stylelab.cli", *args, "save_every=1", f"hydra.run.dir={run_dir}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    deadline = time.time() + 600
    while not (run_dir / f"step_{after:05d}.png").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


STYLELAB = Path(sys.executable).with_name("stylelab")  # the console script, as installed


def run_cli(
    *args: str, env: dict | None = None, timeout: float = 600, cwd: Path | None = None, script: bool = False
) -> subprocess.CompletedProcess:
    """Run `stylelab ARGS` in a subprocess, as a user would (script: the console script, which, unlike
    `python -m`, does not put the folder it runs in on sys.path by itself)."""
    full_env = {**os.environ, **(env or {})}
    command = [str(STYLELAB)] if script else [sys.executable, "-m", "stylelab.cli"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env=full_env, timeout=timeout, cwd=cwd or REPO
    )


def pytest_collection_modifyitems(config, items):
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU (none here)")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
