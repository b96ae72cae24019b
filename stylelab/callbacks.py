"""What watches the loop: TensorBoard, the progress bar, intermediate PNGs and checkpoints (callbacks of the loop)."""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from stylelab import checkpoint
from stylelab.io import images
from stylelab.loop import LoopState
from stylelab.losses.base import Evaluation


def _due(step: int, every: int, last: int) -> bool:
    return step == last or (every > 0 and step % every == 0)


class TensorBoard:
    """Scalars every `every` steps, the image every `image_every` steps, hparams at the end.

    Tags, for every term of the objective (content, style, tv, ...): loss/total, loss/<term> (before its
    weight), loss/weighted/<term>, loss/<term>/<layer> (unweighted: L_content,l, E_l); image/generated,
    and image/content, image/style once.
    """

    def __init__(self, logdir: Path, *, steps: int, every: int = 10, image_every: int = 50,
                 purge_step: int | None = None, level_ends=()):
        from torch.utils.tensorboard import SummaryWriter  # tensorboard is only needed when logging

        self.logdir = Path(logdir)
        self.writer = SummaryWriter(str(self.logdir), purge_step=purge_step)
        self.steps, self.every, self.image_every = steps, every, image_every
        self.level_ends = set(level_ends)  # coarse to fine: each level's last image is logged

    def inputs(self, content: torch.Tensor, styles) -> None:
        """The content and style images as the run uses them (recoloured, rescaled): image/content,
        image/style (and image/style_2, ... for more styles)."""
        self.writer.add_image("image/content", content[0].clamp(0, 1), 0)
        for i, style in enumerate(styles if isinstance(styles, (list, tuple)) else [styles]):
            self.writer.add_image("image/style" if i == 0 else f"image/style_{i + 1}", style[0].clamp(0, 1), 0)

    def on_losses(self, step: int, evaluation: Evaluation) -> None:
        if _due(step, self.every, self.steps):
            for tag, value in evaluation.scalars().items():
                self.writer.add_scalar(tag, value, step)

    def _shows(self, step: int) -> bool:
        return _due(step, self.image_every, self.steps) or step in self.level_ends

    def on_image(self, step: int, image: torch.Tensor) -> None:
        if self._shows(step):
            self.writer.add_image("image/generated", image[0].clamp(0, 1), step)

    def ended(self, step: int, image: torch.Tensor) -> None:
        """The last image of a run that ended before its last step (a tolerance, a signal), if not logged yet."""
        if not self._shows(step):
            self.writer.add_image("image/generated", image[0].clamp(0, 1), step)

    def hparams(self, hparams: dict, final: Evaluation, step: int, extra_metrics: dict[str, float] | None = None,
                varying: set[str] = frozenset()) -> None:
        """The HParams tab's record of this run: its settings, and its final losses as summary/* metrics.

        varying: the settings its sweep varies; TensorBoard shows those columns first.
        """
        scalars = final.scalars()
        metrics = {f"summary/{k.removeprefix('loss/')}": v for k, v in scalars.items() if k.count("/") == 1}
        metrics.update(extra_metrics or {})
        # "summary/..." sorts after "loss/..." in TensorBoard, so the one-point metric cards come last
        self._session(hparams, metrics, "STATUS_SUCCESS", varying)
        for tag, value in metrics.items():
            self.writer.add_scalar(tag, value, step)

    def failed(self, hparams: dict, reason: str, varying: set[str] = frozenset()) -> None:
        """A run that failed: the reason as text, and its settings in the HParams tab with status failure."""
        self.writer.add_text("error", reason)
        self._session(hparams, {}, "STATUS_FAILURE", varying)

    def _session(self, hparams: dict, metrics: dict, status: str, varying: set[str]) -> None:
        """torch's three hparams summaries, written into this run's own folder (so the HParams tab links them to
        its curves), with the end status and the `differs` flags filled in."""
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
        for summary in (experiment, start, end):
            self.writer.file_writer.add_summary(summary)

    def close(self) -> None:
        self.writer.close()


class Progress:
    """A tqdm bar; the losses in its postfix are refreshed at logging steps only (no sync every step)."""

    def __init__(self, steps: int, *, every: int = 10, initial: int = 0, disable: bool = False):
        self.bar = tqdm(total=steps, initial=initial, unit="step", dynamic_ncols=True, disable=disable)
        self.steps, self.every = steps, every

    def on_losses(self, step: int, evaluation: Evaluation) -> None:
        if _due(step, self.every, self.steps):
            s = evaluation.scalars()
            shown = {"total": s["loss/total"], **{name: s[f"loss/{name}"] for name in evaluation.values}}
            self.bar.set_postfix({name: f"{value:.4g}" for name, value in shown.items()}, refresh=False)

    def on_image(self, step: int, image: torch.Tensor) -> None:
        if step > self.bar.n:
            self.bar.update(step - self.bar.n)

    def close(self) -> None:
        self.bar.close()


class SaveEvery:
    """Writes `<folder>/step_<s>.png` every `every` steps (0 = never)."""

    def __init__(self, folder: Path, every: int):
        self.folder, self.every = Path(folder), every

    def on_losses(self, step: int, evaluation: Evaluation) -> None:
        pass

    def on_image(self, step: int, image: torch.Tensor) -> None:
        if self.every > 0 and step > 0 and step % self.every == 0:
            images.save_image(image, self.folder / f"step_{step:05d}.png")


class SaveCheckpoint:
    """Writes `<run dir>/checkpoint.pt` every `every` steps (0 = only when `save` is called), atomically.

    The loop calls it as on_state(image, state) after every update.
    """

    def __init__(self, run_dir: Path, every: int, fingerprint: dict):
        self.path, self.every, self.fingerprint = Path(run_dir) / checkpoint.FILE, every, fingerprint

    def __call__(self, image: torch.Tensor, state: LoopState) -> None:
        if self.every > 0 and state.step % self.every == 0:
            self.save(image, state)

    def save(self, image: torch.Tensor, state: LoopState) -> Path:
        return checkpoint.save(self.path, image, state, self.fingerprint)
