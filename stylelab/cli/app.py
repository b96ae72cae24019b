"""The `stylelab` command: the Hydra app. The work is job.run; this maps user mistakes to one sentence
and exit code 2, and removes a run folder that a mistake left with nothing in it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from stylelab import config, job
from stylelab.cli.common import EXIT_USER_ERROR, one_line_warnings
from stylelab.errors import StyleLabError

config.register()


def _clean_failed_run(run_dir: Path) -> None:
    """After a user error, remove the run folder if it holds nothing but Hydra's own bookkeeping."""
    ours = [p for p in run_dir.iterdir() if p.name != ".hydra" and p.suffix != ".log"] if run_dir.is_dir() else []
    if not ours:
        shutil.rmtree(run_dir, ignore_errors=True)


@hydra.main(version_base="1.3", config_path="pkg://stylelab.configs", config_name="config")
def app(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    choices = {group: option for group, option in hydra_cfg.runtime.choices.items() if not group.startswith("hydra")}
    try:
        missing = config.missing_keys(cfg)
        if missing:
            raise StyleLabError(f"this config needs a value for {', '.join(missing)}: give it on the command "
                                f"line, e.g. {missing[0]}=<...>")
        job.run(cfg, run_dir, choices=choices)
    except StyleLabError as exc:
        print(f"stylelab: error: {exc}", file=sys.stderr, flush=True)
        _clean_failed_run(run_dir)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:  # before or after the loop; the loop itself saves and reports
        print("stylelab: interrupted", file=sys.stderr, flush=True)
        sys.exit(130)


def main() -> None:
    one_line_warnings("stylelab")
    app()
