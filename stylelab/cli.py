"""Hydra entry point `stylelab`: the only module that sees a DictConfig.

It turns the config into plain settings, runs the transfer, writes the artifacts of the run directory
(final.png, step PNGs, tb/) and maps user mistakes to one sentence and exit code 2.
"""

from __future__ import annotations

import re
import shutil
import sys
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from stylelab import config, images
from stylelab.api import Settings, prepare
from stylelab.errors import StyleLabError
from stylelab.monitor import Progress, SaveEvery, TensorBoard
from stylelab.trainer import OptimizerSpec, optimize

EXIT_USER_ERROR = 2


# Overrides that do not change the result are left out of sweep folder names.
_NOT_IN_DIRNAME = ("device=", "log.progress=", "hydra.")


def _dirname(overrides, num: int) -> str:
    """A sweep job's folder, named after its overrides: `loss.beta=100.0,style=shipwreck`.

    Image paths are shortened to their file name so the name stays one readable folder.
    """
    parts = []
    for item in sorted(str(o) for o in overrides):
        if item.lstrip("+~").startswith(_NOT_IN_DIRNAME):
            continue
        key, _, value = item.partition("=")
        if "/" in value or "\\" in value:
            value = re.split(r"[/\\]", value.rstrip("/\\"))[-1]
        parts.append(f"{key}={value}")
    name = ",".join(parts) or str(num)
    return name if len(name) <= 200 else f"{name[:190]}..{num}"


OmegaConf.register_new_resolver("stylelab_dirname", _dirname, replace=True)
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
        pooling=cfg.model.pooling.value,
        device=cfg.device.value,
        seed=cfg.seed,
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
        "pooling": s.pooling,
        "size": s.size,
        "steps": s.steps,
        "seed": s.seed,
    }


def run(cfg: config.StyleLabConfig, run_dir: Path) -> Path:
    """One job: everything is read and checked before the first file is written into run_dir."""
    settings = settings_from(cfg)
    prepared = prepare(cfg.content, cfg.style, settings, progress=cfg.log.progress)

    tb = TensorBoard(run_dir / "tb", steps=settings.steps, every=cfg.log.every, image_every=cfg.log.image_every)
    progress = Progress(settings.steps, every=cfg.log.every, disable=not cfg.log.progress)
    tb.inputs(prepared.content, prepared.style)
    try:
        result = optimize(
            prepared.init,
            prepared.extractor,
            prepared.loss,
            steps=settings.steps,
            optimizer=settings.optimizer,
            callbacks=[tb, progress, SaveEvery(run_dir, cfg.save_every)],
        )
    finally:
        progress.close()
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
    return final


def _clean_failed_run(run_dir: Path) -> None:
    """After a user error, remove the run folder if it holds nothing but Hydra's own bookkeeping."""
    ours = [p for p in run_dir.iterdir() if p.name != ".hydra" and p.suffix != ".log"] if run_dir.is_dir() else []
    if not ours:
        shutil.rmtree(run_dir, ignore_errors=True)


@hydra.main(version_base="1.3", config_path="pkg://stylelab.configs", config_name="config")
def app(dict_cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    cfg: config.StyleLabConfig = OmegaConf.to_object(dict_cfg)
    try:
        run(cfg, run_dir)
    except StyleLabError as exc:
        print(f"stylelab: error: {exc}", file=sys.stderr, flush=True)
        _clean_failed_run(run_dir)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:  # before or after the loop; the loop itself saves and reports
        print("stylelab: interrupted", file=sys.stderr, flush=True)
        sys.exit(130)


def main() -> None:
    warnings.simplefilter("default")
    # "UserWarning: ..." from library code is printed without its source line, as one sentence
    warnings.formatwarning = lambda msg, cat, *args, **kwargs: f"stylelab: warning: {msg}\n"
    app()


if __name__ == "__main__":
    main()
