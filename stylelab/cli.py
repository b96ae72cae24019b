"""Hydra entry point `stylelab`: the only module that sees a DictConfig.

It turns the config into plain settings, runs the transfer, writes the artifacts of the run directory
(final.png, step PNGs, tb/) and maps user mistakes to one sentence and exit code 2.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import warnings
from pathlib import Path
from typing import Callable

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from stylelab import checkpoint, config, images, normalize, summary
from stylelab.api import Settings, prepare
from stylelab.errors import StyleLabError
from stylelab.monitor import Progress, SaveCheckpoint, SaveEvery, TensorBoard
from stylelab.trainer import OptimizerSpec, optimize

EXIT_USER_ERROR = 2


# Overrides that do not change the result are left out of sweep folder names.
_NOT_IN_DIRNAME = ("device=", "log.progress=", "hydra.", "checkpoint_every=", "resume=")


def _dirname(overrides, num: int) -> str:
    """A sweep job's folder, named after its overrides: `loss.beta=100.0,style=shipwreck`.

    Image paths are shortened to their file name so the name stays one readable folder.
    """
    parts = []
    for item in sorted(str(o) for o in overrides):
        if item.lstrip("+~").startswith(_NOT_IN_DIRNAME):
            continue
        key, _, value = item.partition("=")
        key = key.rsplit("/", 1)[-1]  # a nested config group: experiment/gatys2016/fig3_panel -> fig3_panel
        if "/" in value or "\\" in value:
            value = re.split(r"[/\\]", value.rstrip("/\\"))[-1]
        parts.append(f"{key}={value}")
    name = ",".join(parts) or str(num)
    return name if len(name) <= 200 else f"{name[:190]}..{num}"


OmegaConf.register_new_resolver("stylelab_dirname", _dirname, replace=True)
# hydra.run.dir and output_subdir: a resumed run goes on in the folder it continues (configs/hydra/default.yaml)
OmegaConf.register_new_resolver("stylelab_if_resumed", lambda resume, yes, no: yes if resume else no, replace=True)
config.register()


def _weights(layers: list[str], weights: list[float] | None, what: str) -> dict[str, float]:
    if len(set(layers)) != len(layers):
        raise StyleLabError(f"loss.{what}_layers lists a layer twice: {layers}")
    if weights is None:
        return {name: 1.0 / len(layers) for name in layers}
    if len(weights) != len(layers):
        raise StyleLabError(
            f"loss.{what}_weights has {len(weights)} values but loss.{what}_layers has {len(layers)} layers"
        )
    return dict(zip(layers, (float(w) for w in weights)))


def settings_from(cfg: config.StyleLabConfig) -> Settings:
    loss, opt = cfg.loss, cfg.optimizer
    return Settings(
        size=cfg.image.size,
        content_layers=_weights(list(loss.content_layers), loss.content_weights, "content"),
        style_layers=_weights(list(loss.style_layers), loss.style_weights, "style"),
        alpha=loss.alpha,
        beta=loss.beta,
        tv_weight=loss.tv_weight,
        init=cfg.init.kind.value,
        init_path=cfg.init.path,
        steps=cfg.steps,
        optimizer=OptimizerSpec(
            name=opt.name.value,
            lr=opt.lr,
            history_size=opt.history_size,
            line_search=opt.line_search.value if opt.line_search else None,
            tolerance_grad=opt.tolerance_grad,
            tolerance_change=opt.tolerance_change,
        ),
        weights=cfg.model.weights,
        weights_format=cfg.model.format.value,
        pooling=cfg.model.pooling.value,
        device=cfg.device.value,
        seed=cfg.seed,
        channels_last=cfg.channels_last,
        compile=cfg.compile,
        tf32=cfg.tf32,
    )


def hparams_of(cfg: config.StyleLabConfig, s: Settings) -> dict:
    ratio = s.alpha / s.beta if s.beta else float("inf")
    return {
        "content": cfg.content,
        "style": cfg.style,
        "alpha": s.alpha,
        "beta": s.beta,
        "alpha/beta": ratio,
        "tv_weight": s.tv_weight,
        "content_layers": ",".join(f"{k}:{v:g}" for k, v in s.content_layers.items()),
        "style_layers": ",".join(f"{k}:{v:g}" for k, v in s.style_layers.items()),
        "init": s.init,
        "optimizer": s.optimizer.name,
        "lr": s.optimizer.lr,
        "weights": s.weights,
        "format": s.weights_format,
        "pooling": s.pooling,
        "size": s.size,
        "steps": s.steps,
        "seed": s.seed,
    }


def run(cfg: config.StyleLabConfig, run_dir: Path) -> Path:
    """One job: everything is read and checked before the first file is written into run_dir."""
    settings = settings_from(cfg)
    if cfg.checkpoint_every < 0:
        raise StyleLabError(f"checkpoint_every must be >= 0, not {cfg.checkpoint_every}")
    prepared = prepare(cfg.content, cfg.style, settings, progress=cfg.log.progress)
    fingerprint = checkpoint.fingerprint(settings, prepared.content, prepared.style)
    resume_dir = cfg.resume or _requeued(run_dir)
    start = checkpoint.load(Path(resume_dir), fingerprint) if resume_dir else None
    if start and start.state.step > settings.steps:
        raise StyleLabError(f"cannot resume from '{start.path}': it is at step {start.state.step}, beyond steps={settings.steps}")
    if start:
        start.restore_rng()
        print(f"stylelab: resuming {resume_dir} at step {start.state.step}", flush=True)
    first_step = start.state.step if start else 0

    with checkpoint.StopSignals() as signals:  # SIGINT/SIGTERM/SIGUSR2 end the loop between two updates
        # purge_step: TensorBoard drops what the stopped run logged from this step on, so no step is doubled
        tb = TensorBoard(run_dir / "tb", steps=settings.steps, every=cfg.log.every, image_every=cfg.log.image_every,
                         purge_step=first_step if start else None)
        progress = Progress(settings.steps, every=cfg.log.every, initial=first_step, disable=not cfg.log.progress)
        if not start:
            tb.inputs(prepared.content, prepared.style)
        saver = SaveCheckpoint(run_dir, cfg.checkpoint_every, fingerprint)
        try:
            result = optimize(
                start.image.to(prepared.device) if start else prepared.init,
                prepared.features,
                prepared.loss,
                steps=settings.steps,
                optimizer=settings.optimizer,
                callbacks=[tb, progress, SaveEvery(run_dir, cfg.save_every)],
                state=start.state if start else None,
                on_state=saver,
                stop=signals.reason,
            )
        finally:
            progress.close()
        if result.interrupted and result.state:
            saver.save(result.image, result.state)
        final = images.save_image(result.image, run_dir / "final.png")
        per_step = result.seconds / max(result.steps_done, 1)
        tb.hparams(hparams_of(cfg, settings), result.final, result.steps_done, {"summary/seconds_per_step": per_step})
        tb.close()

    status = f" ({result.stopped})" if result.stopped else ""
    print(
        f"stylelab: wrote {final} after {result.steps_done} steps in {result.seconds:.1f} s "
        f"({per_step:.3f} s/step, device {prepared.device.type}){status}",
        flush=True,
    )
    if result.interrupted and result.state:
        print(f"stylelab: saved {run_dir / checkpoint.FILE}; continue with the same settings and resume={run_dir}",
              flush=True)
    if signals.caught not in (None, signal.SIGINT):
        signals.pass_on()  # under submitit (SLURM), its handler requeues the job and exits
        sys.exit(checkpoint.exit_code(signals.caught))
    return final


def _requeued(run_dir: Path) -> Path | None:
    """A job SLURM requeued (preempted, timed out, node failure) continues from its own checkpoint."""
    restarted = os.environ.get("SLURM_RESTART_COUNT", "0") not in ("", "0")
    return run_dir if restarted and (run_dir / checkpoint.FILE).is_file() else None


def _clean_failed_run(run_dir: Path) -> None:
    """After a user error, remove the run folder if it holds nothing but Hydra's own bookkeeping."""
    ours = [p for p in run_dir.iterdir() if p.name != ".hydra" and p.suffix != ".log"] if run_dir.is_dir() else []
    if not ours:
        shutil.rmtree(run_dir, ignore_errors=True)


def _missing_keys(node, prefix: str = "") -> list[str]:
    """Dotted keys left as ??? (found without resolving, so `${inputs.picasso}` pointing at one is no error)."""
    if isinstance(node, dict):
        return [k for key, value in node.items() for k in _missing_keys(value, f"{prefix}{key}.")]
    return [prefix.rstrip(".")] if node == "???" else []


@hydra.main(version_base="1.3", config_path="pkg://stylelab.configs", config_name="config")
def app(dict_cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        # experiments mark user-supplied images as ??? (fig7's photos, fig3's inputs.picasso)
        missing = _missing_keys(OmegaConf.to_container(dict_cfg, resolve=False))
        if missing:
            raise StyleLabError(f"this config needs a value for {', '.join(missing)}: give it on the command "
                                f"line, e.g. {missing[0]}=<...>")
        cfg: config.StyleLabConfig = OmegaConf.to_object(dict_cfg)
        run(cfg, run_dir)
    except StyleLabError as exc:
        print(f"stylelab: error: {exc}", file=sys.stderr, flush=True)
        _clean_failed_run(run_dir)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:  # before or after the loop; the loop itself saves and reports
        print("stylelab: interrupted", file=sys.stderr, flush=True)
        sys.exit(130)


def _one_line_warnings(prog: str) -> None:
    """Library warnings (random weights, ...) print as one sentence, without Python's source line."""
    warnings.simplefilter("default")
    warnings.formatwarning = lambda msg, cat, *args, **kwargs: f"{prog}: warning: {msg}\n"


def main() -> None:
    _one_line_warnings("stylelab")
    app()


def _tool(prog: str, work: Callable[[], object]) -> None:
    """Run a stylelab-* command: one-line warnings, and a user mistake as one sentence with exit code 2."""
    _one_line_warnings(prog)
    try:
        work()
    except StyleLabError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(EXIT_USER_ERROR)


def normalize_main(argv: list[str] | None = None) -> None:
    """`stylelab-normalize`: the paper's normalised VGG19 (argparse; the work is in stylelab.normalize)."""
    _tool("stylelab-normalize", lambda: normalize.main(argv))


def summary_main(argv: list[str] | None = None) -> None:
    """`stylelab-summary SWEEP`: a sweep's table and contact sheet (the work is in stylelab.summary)."""
    _tool("stylelab-summary", lambda: summary.main(argv))


def figure_main(argv: list[str] | None = None) -> None:
    """`stylelab-figure SWEEP`: a finished sweep as one labelled grid PNG (the work is in stylelab.figures)."""
    import argparse

    from stylelab import figures

    parser = argparse.ArgumentParser(
        prog="stylelab-figure",
        description="Lay out the final images of a `stylelab -m` sweep as one labelled grid, as the paper's "
        "figures: rows and columns are the values of two swept keys. Experiments declare their layout "
        "(figure.rows, figure.cols, figure.inset, figure.title); the options below override it.",
        epilog="Example: stylelab-figure outputs/multirun/2026-01-01/12-00-00 --rows loss.style_layers --cols loss.beta",
    )
    parser.add_argument("sweep", type=Path, help="the sweep folder (hydra.sweep.dir), or one run's folder")
    parser.add_argument("--rows", metavar="KEY", help="override key whose values make the rows")
    parser.add_argument("--cols", metavar="KEY", help="override key whose values make the columns")
    parser.add_argument("--inset", choices=[*figures.CORNERS, "none"], help="put the style image small in a corner")
    parser.add_argument("--title", help="text above the grid")
    parser.add_argument("--out", type=Path, metavar="PATH", help="the PNG to write (default: SWEEP/figure.png)")
    args = parser.parse_args(argv)

    def make_figure() -> None:
        fig = figures.sweep_figure(args.sweep, args.rows, args.cols, args.inset, args.title)
        out = figures.save_figure(fig, args.out or args.sweep / "figure.png", source=args.sweep.resolve())
        figures.add_to_tensorboard(fig, args.sweep / "tb_figure")
        rows, cols = fig.layout.shape
        print(f"stylelab-figure: wrote {out} ({rows} x {cols} grid; {fig.finished} of {fig.total} jobs finished; "
              f"TensorBoard: {args.sweep / 'tb_figure'})", flush=True)

    _tool("stylelab-figure", make_figure)


if __name__ == "__main__":
    main()
