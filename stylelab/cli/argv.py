"""The `stylelab` command line before Hydra sees it: its flags and overrides, paths as the shell passed them,
and every job's overrides composed once, so a mistake is one sentence before anything runs.

- A path setting (content, style, init.path, model.weights, resume, masks, inputs.*) takes any path the
  operating system does, spaces and non-ASCII letters included: a value that Hydra's grammar would read
  otherwise (a file that exists, or text Hydra cannot parse) is quoted for it.
- HYDRA_FULL_ERROR=1 skips the check and shows Hydra's own report.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from stylelab import config
from stylelab.cli.sweep import split_top_level
from stylelab.errors import StyleLabError
from stylelab.overrides import clip_defaults, compose_with_choices, explain, parses, quote

PATH_KEYS = (
    "content",
    "style",
    "init.path",
    "model.weights",
    "resume",
    "mask.content",
    "mask.style",
    "hydra.run.dir",
    "hydra.sweep.dir",
)
# Hydra's own command-line flags (hydra.main's parser): those that take a value, and the others
HYDRA_VALUE_FLAGS = (
    "--cfg",
    "-c",
    "--package",
    "-p",
    "--config-path",
    "-cp",
    "--config-name",
    "-cn",
    "--config-dir",
    "-cd",
    "--experimental-rerun",
)
HYDRA_FLAGS = (
    "--help",
    "-h",
    "--hydra-help",
    "--version",
    "--resolve",
    "--run",
    "-r",
    "--multirun",
    "-m",
    "--shell-completion",
    "-sc",
    "--info",
    "-i",
)
_NOT_A_RUN = ("--help", "-h", "--hydra-help", "--version", "--info", "-i", "--shell-completion", "-sc")
_MAX_CHECKED = 64  # sweeps with more combinations are checked one swept value at a time


@dataclass
class CommandLine:
    argv: list[str]
    where: list[int]  # the positions of the overrides in argv
    flags: dict[str, str | bool]  # Hydra's flags given: {"--config-dir": "x", "-m": True}

    @property
    def overrides(self) -> list[str]:
        return [self.argv[i] for i in self.where]

    @property
    def multirun(self) -> bool:
        return "--multirun" in self.flags or "-m" in self.flags

    @property
    def config_dir(self) -> str | None:
        value = self.flags.get("--config-dir", self.flags.get("-cd"))
        return value if isinstance(value, str) else None

    def for_hydra(self) -> list[str]:
        """Hydra's flags first, then the overrides: its parser takes no override after a flag that follows one."""
        overrides = set(self.where)
        return [a for i, a in enumerate(self.argv) if i not in overrides] + self.overrides

    @property
    def runs(self) -> bool:
        """Whether this command line runs a job (not --help, --cfg, --info, ...)."""
        return not any(flag in self.flags for flag in (*_NOT_A_RUN, "--cfg", "-c"))


def split(argv: list[str]) -> CommandLine:
    """Hydra's flags and the overrides, and where each override is in argv."""
    where, flags, i = [], {}, 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if arg.startswith("-") and name in HYDRA_VALUE_FLAGS:
            if eq:
                flags[name] = value
            else:
                flags[name] = argv[i + 1] if i + 1 < len(argv) else ""
                i += 1
        elif arg.startswith("-") and name in HYDRA_FLAGS:
            flags[name] = value if eq else True
            if (
                name in ("--info", "-i")
                and not eq
                and i + 1 < len(argv)
                and "=" not in argv[i + 1]
                and not argv[i + 1].startswith("-")
            ):
                flags[name] = argv[i + 1]
                i += 1
        elif arg.startswith("-") and not eq:
            raise StyleLabError(
                f"unknown option {arg}; `stylelab --help` lists the settings, `stylelab --hydra-help` Hydra's flags"
            )
        else:
            where.append(i)
        i += 1
    return CommandLine(list(argv), where, flags)


def is_path_key(key: str) -> bool:
    key = key.lstrip("+~")
    return key in PATH_KEYS or key.startswith("inputs.")


def quote_path(override: str) -> str:
    """`content=/my photos/Straße 1.jpg` -> `content='/my photos/Straße 1.jpg'` where Hydra needs the quotes."""
    key, sep, value = override.partition("=")
    if not sep or not is_path_key(key) or value[:1] in ("'", '"') or value in ("", "null"):
        return override
    if Path(value).expanduser().exists():
        return f"{key}={quote(value)}"  # a file as it is: its commas, brackets or $ are part of its name
    if parses(override):
        return override
    if value.startswith("[") and value.endswith("]"):  # a list of paths: each one quoted
        items = [item.strip() for item in split_top_level(value[1:-1])]
        return f"{key}=[" + ",".join(i if i[:1] in ("'", '"') else quote(i) for i in items) + "]"
    files = _existing_files(value.split(","))
    if files and len(files) > 1:
        return f"{key}=" + ",".join(quote(f) for f in files)  # a sweep over files Hydra could not read
    return f"{key}={quote(value)}"


def _existing_files(pieces: list[str]) -> list[str] | None:
    """Comma-separated pieces joined back into existing paths (a path may hold commas), or None."""
    files, current = [], None
    for piece in pieces:
        current = piece if current is None else f"{current},{piece}"
        if Path(current).expanduser().exists():
            files.append(current)
            current = None
    return files if current is None else None


def _one_mode(line: CommandLine) -> CommandLine:
    """Hydra takes one of --run, --multirun, --cfg, --info and --shell-completion. --cfg (or --info) with -m
    shows what every job of the sweep shares: the -m is dropped, and a sweep value is refused."""
    showing = [flag for flag in ("--cfg", "-c", "--info", "-i") if flag in line.flags]
    modes = [flag for flag in ("--run", "-r", "--multirun", "-m", "--shell-completion", "-sc") if flag in line.flags]
    if showing and line.multirun:
        sweeps = [
            o for o in line.overrides if parses(o) and OverridesParser.create().parse_override(o).is_sweep_override()
        ]
        if sweeps:
            raise StyleLabError(
                f"{showing[0]} shows one job's config, so give one value per setting, not the sweep {sweeps[0]}"
            )
        keep = [i for i, a in enumerate(line.argv) if a not in ("-m", "--multirun")]
        where = [keep.index(i) for i in line.where]
        flags = {k: v for k, v in line.flags.items() if k not in ("-m", "--multirun")}
        return CommandLine([line.argv[i] for i in keep], where, flags)
    if len(showing[:1] + modes) > 1 and not (set(modes) <= {"-m", "--multirun"} and not showing):
        raise StyleLabError(f"{' and '.join(showing[:1] + modes)} cannot go together: give one of them")
    return line


def prepare(argv: list[str]) -> CommandLine:
    """argv with path values quoted for Hydra; raises StyleLabError for a mistake in the overrides."""
    line = _one_mode(split(clip_defaults(argv)))
    for index in line.where:
        line.argv[index] = quote_path(line.argv[index])
    if os.environ.get("HYDRA_FULL_ERROR") == "1" or not (line.runs or "--cfg" in line.flags or "-c" in line.flags):
        return line
    check([*line.overrides, *search_path(line.config_dir, line.overrides)])
    return line


def search_path(config_dir: str | None, overrides: list[str]) -> list[str]:
    """--config-dir as the override the compose API understands."""
    if not config_dir or any(o.startswith("hydra.searchpath=") for o in overrides):
        return []
    return [f"hydra.searchpath=[{quote('file://' + str(Path(config_dir).resolve()))}]"]


def jobs_of(overrides: list[str]) -> list[list[str]]:
    """Every job of these overrides (a sweep's combinations), or each swept value once when there are many."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    values = [
        [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override() else [o.input_line]
        for o in parsed
    ]
    combos = 1
    for v in values:
        combos *= len(v)
    if combos <= _MAX_CHECKED:
        return [list(c) for c in itertools.product(*values)]
    first = [v[0] for v in values]  # each swept value with the first of every other key
    return [first[:i] + [value] + first[i + 1 :] for i, vs in enumerate(values) for value in vs]


def check(overrides: list[str]) -> None:
    """Compose every job of these overrides (every swept value at least once); the first mistake is raised."""
    try:
        jobs = jobs_of(overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        raise StyleLabError(explain(exc, overrides)) from None
    for job in jobs:
        cfg, _ = compose_with_choices(*job)  # a mistake is one sentence
        config.require_values(cfg)  # values an experiment leaves to the user (its images)
