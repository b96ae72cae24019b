"""`resume=<folder>` on the command line: a run folder goes on with the config it saved; a sweep folder
becomes a sweep over its jobs that did not finish, each in its own folder.

The command line may change `steps` and what does not change the picture (device, logging, speed
switches); any other setting that differs from the run's is refused, named.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from stylelab import config
from stylelab.cli import sweep
from stylelab.cli.argv import CommandLine
from stylelab.errors import StyleLabError
from stylelab.io import folders
from stylelab.overrides import compose_with_choices, quote
from stylelab.sweeps import read


def _key(override: str) -> str:
    return OverridesParser.create().parse_override(override).key_or_group


def resumed_config(cfg: DictConfig, choices: dict[str, str], overrides: list[str]) -> tuple[DictConfig, dict, bool]:
    """The config a resumed run goes on with: the one its folder saved, with this command line's steps and
    inert settings. Returns (config, choices, whether the run starts over: it has no checkpoint.pt)."""
    folder = Path(cfg.resume)
    saved_file = folder / ".hydra" / "config.yaml"
    if not saved_file.is_file():  # a folder without a record: this command line's settings, checked by the checkpoint
        return cfg, choices, False
    saved = OmegaConf.merge(OmegaConf.structured(config.StyleLabConfig), OmegaConf.load(saved_file))
    saved_choices = dict(choices)
    if (folder / ".hydra" / "hydra.yaml").is_file():
        runtime = OmegaConf.load(folder / ".hydra" / "hydra.yaml").hydra.runtime
        saved_choices = {g: o for g, o in (runtime.get("choices") or {}).items() if not str(g).startswith("hydra")}
    changes = []  # what this command line may change: steps, and what does not change the picture
    for key in (_key(o) for o in overrides):
        if key == "steps" or config.is_inert(key):
            changes.append(key)
            continue
        if key in saved_choices or key in choices:
            old, new = saved_choices.get(key), choices.get(key)
        else:
            old, new = OmegaConf.select(saved, key), OmegaConf.select(cfg, key)
            old, new = config.plain(old), config.plain(new)
        if old != new:
            raise StyleLabError(
                f"cannot resume {folder}: it was made with {key}={old}, and this command line "
                f"sets {key}={new}; only steps and settings that do not change the picture "
                f"(device, logging, speed switches) may change"
            )
    with open_dict(saved):
        for key in changes:
            if not key.startswith("hydra"):
                OmegaConf.update(saved, key, OmegaConf.select(cfg, key), merge=False)
    start_over = not any((folder / name).is_file() for name in (folders.CHECKPOINT, folders.CLIP_STATE))
    if start_over:
        saved.resume = None
    return saved, saved_choices, start_over


def check_run_folder(folder: Path) -> None:
    """A folder resume= can go on in: a run's (its .hydra/ record or its checkpoint), refused otherwise without
    anything written into it."""
    if not folder.exists():
        raise StyleLabError(f"no such run folder '{folder}': resume= takes the folder of a run or of a sweep")
    if not folder.is_dir():
        raise StyleLabError(f"'{folder}' is a file, not a run folder")
    if not any((folder / name).is_file() for name in (".hydra/config.yaml", folders.CHECKPOINT, folders.CLIP_STATE)):
        raise StyleLabError(
            f"'{folder}' is not a stylelab run folder (it has no .hydra/config.yaml and no "
            f"{folders.CHECKPOINT}); nothing was written into it"
        )


def resume_value(line: CommandLine) -> tuple[int, Path | None] | None:
    """Where the last `resume=` override is in argv, and the folder it names (None for resume=null)."""
    found = [i for i in line.where if line.argv[i].startswith("resume=")]
    if not found:
        return None
    value = OverridesParser.create().parse_override(line.argv[found[-1]]).value()
    return found[-1], (Path(str(value)) if value else None)


def sweep_resumed(line: CommandLine, folder: Path, index: int) -> tuple[list[str], int, int] | None:
    """`resume=<sweep folder>` -> (the argv of a sweep over that sweep's jobs that did not finish, each in its
    own folder; how many; of how many jobs). The argv is empty when every job is done; None: not a sweep."""
    jobs = sweep.plan_of(folder) if folder.is_dir() else None
    if not jobs:
        return None
    pending = []
    for planned in jobs:
        job_dir = planned.folder
        if read.ending(job_dir).status == "done":
            continue
        if not (job_dir / ".hydra" / "config.yaml").is_file():  # never started: its record from the sweep's plan
            cfg, choices = compose_with_choices(*planned.overrides)
            read.write_record(job_dir, OmegaConf.to_yaml(cfg), planned.overrides, choices, planned.num)
        pending.append(job_dir)
    if not pending:
        return [], 0, len(jobs)
    keep = [i for i, a in enumerate(line.argv) if i != index and a not in ("-m", "--multirun")]
    flags = [line.argv[i] for i in keep if i not in line.where]  # Hydra's flags first, as for_hydra puts them
    overrides = [line.argv[i] for i in keep if i in line.where]
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    return (
        [
            "-m",
            *flags,
            *overrides,
            "resume=" + ",".join(quote(str(p)) for p in pending),
            f"hydra.sweep.dir={quote(str(folder / '.resumed' / stamp))}",
        ],
        len(pending),
        len(jobs),
    )
