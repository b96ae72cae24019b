"""What watches a run: TensorBoard, the progress bar and intermediate PNGs. Observers are told what happens
(stylelab.run calls them) and never steer: nothing they do changes the picture or the steps."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import torch
from tqdm import tqdm

from stylelab.errors import StyleLabError
from stylelab.io import images
from stylelab.io.atomic import read_reason
from stylelab.io.folders import events_dir
from stylelab.losses.base import Evaluation


@dataclass
class RunEnd:
    """How a run ended, as its observers are told once at the end."""

    step: int  # the step of the picture
    settings: dict  # the run's settings as HParams shows them, with the weights a balance chose
    final: Evaluation | None  # the losses of the last image (None when the run diverged)
    picture: torch.Tensor  # the picture written, (1, 3, H, W)
    recoloured: bool  # a colour control made the picture from the optimised image
    seconds_per_step: float
    diverged: str | None = None  # why the loss stopped being finite, when it did


class Observer:
    """A watcher of a run. Every method does nothing here; a watcher overrides what it needs."""

    def on_level(self, k: int, level, images, step: int) -> None:
        """Level k (stylelab.build.Level) begins at `step`; `images` are its content and styles at its size."""

    def on_losses(self, step: int, evaluation: Evaluation) -> None:
        """The losses of the image at `step` (evaluated at the start of the update that follows it)."""

    def on_image(self, step: int, image: torch.Tensor) -> None:
        """The image at `step`, (1, 3, h, w): a level's first one, then the one after every update."""

    def on_level_end(self, k: int, level, step: int, evaluation: Evaluation, image: torch.Tensor) -> None:
        """Level k ends at `step` (its last step, or earlier when a tolerance or a signal ended it), with the
        losses of its last image at its size."""

    def on_run_end(self, end: RunEnd) -> None:
        """The run is over and its picture written (a run stopped by a signal ends too; one that raised does
        not)."""

    def close(self) -> None:
        """The run is over (whatever way it ended): release files and the terminal."""


def _due(step: int, every: int, last: int) -> bool:
    return step == last or (every > 0 and step % every == 0)


def hparams(settings: dict[str, Any]) -> dict[str, Any]:
    """What the HParams tab shows: the option chosen in every config group (loss/style: w2, optimizer: adam),
    every setting that changes the picture, as TensorBoard takes them (numbers, strings, booleans), and the
    paper's alpha/beta."""
    out: dict[str, Any] = {}
    alpha, beta = settings.get("loss.alpha"), settings.get("loss.beta")
    if isinstance(alpha, (int, float)) and isinstance(beta, (int, float)):
        out["alpha/beta"] = alpha / beta if beta else float("inf")  # the paper's ratio
    for key, value in settings.items():
        if not key.endswith(("._target_", "._partial_")):  # the group's option names it
            out[key] = _hparam_value(value)
    return out


def _hparam_value(value: Any):
    """Numbers, strings and booleans as they are; lists as the command line writes them ([relu1_1,relu2_1])."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return "[" + ",".join(str(_hparam_value(v)) for v in value) + "]"
    return "null" if value is None else str(value)


class TensorBoard(Observer):
    """Scalars every `every` steps, the image every `image_every` steps, and both at every level's first step
    and at its end, so a coarse-to-fine run shows each level's first and last image and losses at the level's
    own size; the content and style at every level's size; HParams at the end.

    Tags, for every term of the objective (content, style, tv, laplacian, ...): loss/total, loss/<term>
    (before its weight), loss/weighted/<term>, loss/<term>/<layer> (unweighted: L_content,l, E_l);
    level/size (the longest side of each level, at its first step); image/generated, image/content,
    image/style (image/style_2, ... for more styles).
    """

    def __init__(
        self,
        folder: Path,
        *,
        steps: int,
        every: int = 10,
        image_every: int = 50,
        purge_step: int | None = None,
        varying: Mapping[str, str] = MappingProxyType({}),
    ):
        self.logdir = events_dir(Path(folder))
        self.steps, self.every, self.image_every, self.purge_step = steps, every, image_every, purge_step
        # the settings the run's sweep varies, with their values as typed (`1e3`, shown so: TensorBoard would
        # write 1000.0 next to 1.0000e+5); HParams shows those columns first
        self.varying = varying
        self._writer = None
        self._first: int | None = None  # the first step of the level that begins (not a resumed run's step)
        self._shown: int | None = None  # the step whose image this level has logged last

    @property
    def writer(self):
        """The events file, opened when the first thing is logged: a run refused before it begins writes none."""
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter  # tensorboard is only needed when logging

            with self.io():
                self._writer = SummaryWriter(str(self.logdir), purge_step=self.purge_step)
        return self._writer

    @contextlib.contextmanager
    def io(self):
        """A failed write (a full disk) as one sentence; TensorBoard's writer thread hands its error on to here."""
        try:
            yield
        except OSError as exc:
            raise StyleLabError(
                f"cannot write TensorBoard's events into '{self.logdir}': {read_reason(exc, writing=True)}"
            ) from None

    def on_level(self, k: int, level, images, step: int) -> None:
        self._shown = None
        self._first = step if step == level.first else None  # a resumed run logged the level's start before
        if self._first is None:
            return
        with self.io():
            self.writer.add_scalar("level/size", level.size, step)
            self.writer.add_image("image/content", images.content[0].clamp(0, 1), step)
            for i, style in enumerate(images.styles):
                self.writer.add_image("image/style" if i == 0 else f"image/style_{i + 1}", style[0].clamp(0, 1), step)

    def on_losses(self, step: int, evaluation: Evaluation) -> None:
        if _due(step, self.every, self.steps) or step == self._first:
            self._scalars(step, evaluation)

    def on_image(self, step: int, image: torch.Tensor) -> None:
        if _due(step, self.image_every, self.steps) or step == self._first:
            self._image(step, image)

    def on_level_end(self, k: int, level, step: int, evaluation: Evaluation, image: torch.Tensor) -> None:
        self._scalars(step, evaluation)
        if self._shown != step:
            self._image(step, image)

    def _image(self, step: int, image: torch.Tensor, tag: str = "image/generated") -> None:
        with self.io():
            self.writer.add_image(tag, image[0].detach().clamp(0, 1), step)
        self._shown = step

    def _scalars(self, step: int, evaluation: Evaluation) -> None:
        with self.io():
            for tag, value in evaluation.scalars().items():
                self.writer.add_scalar(tag, value, step)

    def on_run_end(self, end: RunEnd) -> None:
        if end.recoloured:
            self.final(end.step, end.picture)
        if end.diverged:
            self.failed(end.settings, end.diverged)
        else:
            self.hparams(end.settings, end.final, end.step, {"summary/seconds_per_step": end.seconds_per_step})

    def notes(self, step: int, texts: dict[str, str]) -> None:
        """Text for the Text tab, one card per entry (text/command, text/overrides, text/config): the exact
        command and config, so the run can be read, and remade, from TensorBoard alone."""
        with self.io():
            for name, text in texts.items():
                self.writer.add_text(f"text/{name}", text, step)

    def final(self, step: int, picture: torch.Tensor) -> None:
        """The picture written, when a colour control made it from the optimised image."""
        self._image(step, picture, "image/final")

    def hparams(
        self,
        settings: dict,
        final: Evaluation,
        step: int,
        extra_metrics: dict[str, float] | None = None,
    ) -> None:
        """The HParams tab's record of this run: its settings, and its final losses as summary/* metrics."""
        scalars = final.scalars()
        metrics = {f"summary/{k.removeprefix('loss/')}": v for k, v in scalars.items() if k.count("/") == 1}
        metrics.update(extra_metrics or {})
        # "summary/..." sorts after "loss/..." in TensorBoard, so the one-point metric cards come last
        self._session(hparams(settings), metrics, "STATUS_SUCCESS")
        with self.io():
            for tag, value in metrics.items():
                self.writer.add_scalar(tag, value, step)

    def failed(self, settings: dict, reason: str) -> None:
        """A run that failed: the reason as text, and its settings in the HParams tab with status failure."""
        with self.io():
            self.writer.add_text("error", reason)
        self._session(hparams(settings), {}, "STATUS_FAILURE")

    def _session(self, hparams: dict, metrics: dict, status: str) -> None:
        """torch's three hparams summaries, written into this run's own folder (so the HParams tab links them to
        its curves), with the end status and the `differs` flags filled in."""
        varying = self.varying
        hparams = {**hparams, **{key: typed for key, typed in varying.items() if key in hparams}}
        from tensorboard.plugins.hparams.api_pb2 import Status
        from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
        from torch.utils.tensorboard.summary import hparams as hparams_summaries

        experiment, start, end = hparams_summaries(hparams, metrics)
        for summary, edit in ((experiment, "experiment"), (end, "session_end_info")):
            data = HParamsPluginData.FromString(summary.value[0].metadata.plugin_data.content)
            if edit == "experiment":  # TensorBoard lists the settings that differ between runs first
                for info in data.experiment.hparam_infos:
                    info.differs = info.name in varying
            else:
                data.session_end_info.status = Status.Value(status)
            summary.value[0].metadata.plugin_data.content = data.SerializeToString()
        with self.io():
            for summary in (experiment, start, end):
                self.writer.file_writer.add_summary(summary)

    def close(self) -> None:
        if self._writer is not None:
            with self.io():
                self._writer.close()


class Progress(Observer):
    """A tqdm bar with the current losses at every step (reading them costs a device sync, which the loop's
    divergence check pays anyway)."""

    def __init__(self, steps: int, *, initial: int = 0, disable: bool = False):
        self.bar = tqdm(total=steps, initial=initial, unit="step", dynamic_ncols=True, disable=disable)
        self.disabled = disable

    def on_losses(self, step: int, evaluation: Evaluation) -> None:
        if not self.disabled:
            s = evaluation.scalars()
            shown = {"total": s["loss/total"], **{name: s[f"loss/{name}"] for name in evaluation.values}}
            self.bar.set_postfix({name: f"{value:.4g}" for name, value in shown.items()}, refresh=False)

    def on_image(self, step: int, image: torch.Tensor) -> None:
        if step > self.bar.n:
            self.bar.update(step - self.bar.n)

    def on_level_end(self, k: int, level, step: int, evaluation: Evaluation, image: torch.Tensor) -> None:
        self.on_losses(step, evaluation)

    def close(self) -> None:
        self.bar.close()


class Curves(Observer):
    """Every step's losses, by TensorBoard tag: {"loss/total": [(step, value), ...], ...} (RunResult.curves),
    so a notebook plots them without reading event files. A coarse-to-fine run also records each level's
    end, at the level's size."""

    def __init__(self):
        self.values: dict[str, list[tuple[int, float]]] = {}

    def on_losses(self, step: int, evaluation: Evaluation) -> None:
        for tag, value in evaluation.scalars().items():
            self.values.setdefault(tag, []).append((step, value))

    def on_level_end(self, k: int, level, step: int, evaluation: Evaluation, image: torch.Tensor) -> None:
        self.on_losses(step, evaluation)


class SaveEvery(Observer):
    """Writes `<folder>/step_<s>.png` every `every` steps (0 = never)."""

    def __init__(self, folder: Path, every: int):
        self.folder, self.every = Path(folder), every

    def on_image(self, step: int, image: torch.Tensor) -> None:
        if self.every > 0 and step > 0 and step % self.every == 0:
            images.save_image(image, self.folder / f"step_{step:05d}.png")
