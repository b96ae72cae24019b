"""The `stylelab` command line before Hydra sees it: paths as the shell passed them, and one-line errors.

- A path setting (content, style, init.path, model.weights, resume, masks, inputs.*) takes any path the
  operating system does, spaces and non-ASCII letters included: a value that Hydra's grammar would read
  otherwise (a file that exists, or text Hydra cannot parse) is quoted for it.
- The overrides are composed once before anything runs, so a typo in a key, an unknown option of a group
  or a value of the wrong type is one sentence with a suggestion, not Hydra's report.
  HYDRA_FULL_ERROR=1 skips this and shows Hydra's own report.
"""

from __future__ import annotations

import difflib
import itertools
import os
import re
from pathlib import Path

from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from stylelab import config
from stylelab.errors import StyleLabError
from stylelab.overrides import compose_with_choices

PATH_KEYS = ("content", "style", "init.path", "model.weights", "resume", "mask.content", "mask.style",
             "hydra.run.dir", "hydra.sweep.dir")
_MAX_CHECKED = 64  # sweeps with more combinations are checked one swept value at a time


def is_path_key(key: str) -> bool:
    key = key.lstrip("+~")
    return key in PATH_KEYS or key.startswith("inputs.")


def quote(text: str) -> str:
    """A string as a Hydra quoted value, read back exactly (quotes, backslashes and ${ escaped)."""
    body = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", text)  # backslashes before a quote double
    body = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, body)  # as do those before the closing quote
    return "'" + body.replace("${", "\\${") + "'"


def _parses(override: str) -> bool:
    try:
        OverridesParser.create().parse_override(override)
        return True
    except Exception:
        return False


def quote_path(override: str) -> str:
    """`content=/my photos/Straße 1.jpg` -> `content='/my photos/Straße 1.jpg'` where Hydra needs the quotes."""
    key, sep, value = override.partition("=")
    if not sep or not is_path_key(key) or value[:1] in ("'", '"') or value in ("", "null"):
        return override
    if Path(value).expanduser().exists():
        return f"{key}={quote(value)}"  # a file as it is: its commas, brackets or $ are part of its name
    if _parses(override):
        return override
    if value.startswith("[") and value.endswith("]"):  # a list of paths: each one quoted
        from stylelab.cli.sweep import split_top_level

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


def split_argv(argv: list[str]) -> tuple[object, list[int]]:
    """Hydra's own parse of the arguments, and where in argv each override is."""
    args = get_args_parser().parse_args(argv)
    where, start = [], 0
    for override in args.overrides:
        index = argv.index(override, start)
        where.append(index)
        start = index + 1
    return args, where


def prepare(argv: list[str]) -> list[str]:
    """argv with path values quoted for Hydra; raises StyleLabError for a mistake in the overrides."""
    args, where = split_argv(argv)
    argv = list(argv)
    for index in where:
        argv[index] = quote_path(argv[index])
    if os.environ.get("HYDRA_FULL_ERROR") == "1" or args.help or args.hydra_help or args.info or args.shell_completion:
        return argv
    overrides = [argv[i] for i in where]
    check([*overrides, *_search_path(args.config_dir, overrides)])
    return argv


def _search_path(config_dir: str | None, overrides: list[str]) -> list[str]:
    """--config-dir as the override the compose API understands."""
    if not config_dir or any(o.startswith("hydra.searchpath=") for o in overrides):
        return []
    return [f"hydra.searchpath=[{quote('file://' + str(Path(config_dir).resolve()))}]"]


def check(overrides: list[str]) -> None:
    """Compose every job of these overrides (every swept value at least once); the first mistake is raised."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as exc:
        raise StyleLabError(_grammar_error(overrides, exc)) from None
    values = [[f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override()
              else [o.input_line] for o in parsed]
    combos = 1
    for v in values:
        combos *= len(v)
    if combos <= _MAX_CHECKED:
        jobs = [list(c) for c in itertools.product(*values)]
    else:  # each swept value with the first of every other key
        first = [v[0] for v in values]
        jobs = [first[:i] + [value] + first[i + 1:] for i, vs in enumerate(values) for value in vs]
    for job in jobs:
        try:
            cfg, _ = compose_with_choices(*job, raw=True)
        except (HydraException, OmegaConfBaseException) as exc:
            raise StyleLabError(explain(exc, job)) from None
        missing = config.missing_keys(cfg)  # values an experiment leaves to the user (its images)
        if missing:
            raise StyleLabError(f"this config needs a value for {', '.join(missing)}: give it on the command "
                                f"line, e.g. {missing[0]}=<...>")


def _grammar_error(overrides: list[str], exc: Exception) -> str:
    for override in overrides:
        if not _parses(override):
            key, sep, value = override.partition("=")
            return (f"cannot read {override!r}: a value with special characters needs quotes, e.g. "
                    f"\"{key}={quote(value)}\" (the double quotes are for the shell)")
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _known_keys(job: list[str]) -> list[str]:
    """Every dotted setting and config group of the config these overrides would make (as far as it composes)."""
    for attempt in (job, []):
        try:
            cfg, choices = compose_with_choices(*[o for o in attempt if "=" in o and _parses(o)], raw=True)
        except (HydraException, OmegaConfBaseException):
            continue
        keys = list(config.flatten_keys(cfg))
        return keys + [group for group in choices]
    return []


def _suggest(word: str, candidates: list[str]) -> str:
    """'; did you mean image.size?' for size, 'loss.alpha' for loss.alpah or alpah."""
    by_last = {}
    for key in candidates:
        by_last.setdefault(re.split(r"[./]", key)[-1], key)
    close = [by_last[word]] if word in by_last else difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    if not close:
        close = [by_last[m] for m in difflib.get_close_matches(re.split(r"[./]", word)[-1], list(by_last), n=1,
                                                               cutoff=0.75)]
    return f"; did you mean {close[0]}?" if close else "; `stylelab --help` lists the settings"


def explain(exc: BaseException, job: list[str]) -> str:
    """Hydra's composition error as one sentence, with a suggestion where there is one."""
    text = str(exc) + "\n" + str(exc.__cause__ or "")
    found = re.search(r"Could not override '([^']+)'. No match in the defaults list", text)
    if found:
        group = found.group(1)
        return f"no config group {group}{_suggest(group, _known_keys(job))}"
    found = re.search(r"Could not override '([^']+)'", text)
    if found and ("not in struct" in text or "Key '" in text):
        key = found.group(1)
        what = "config group" if "/" in key else "setting"
        return f"no {what} {key}{_suggest(key, _known_keys(job))}"
    found = re.search(r"Could not find '([^']+)/([^'/]+)'", text)
    if found:
        group, option = found.groups()
        options = sorted(o.strip() for o in re.findall(r"^\t(\S+)$", text, re.M) if not o.endswith(config.SCHEMA_SUFFIX))
        choose = f"; choose {', '.join(options[:-1])} or {options[-1]}" if len(options) > 1 else (
            f"; choose {options[0]}" if options else "")
        close = difflib.get_close_matches(option, options, n=1, cutoff=0.5)
        hint = f" (did you mean {group}={close[0]}?)" if close else ""
        return f"no option {option} in group {group}{choose}{hint}"
    found = re.search(r"Error merging override (\S+)", text)
    if found:
        override = found.group(1)
        cause = _first_line(exc.__cause__) if exc.__cause__ else _first_line(exc)
        enum = re.search(r"Invalid value '([^']*)', expected one of \[([^\]]*)\]", text)
        if enum:
            return f"{override}: {enum.group(1)!r} is not one of {enum.group(2)}"
        typed = re.search(r"Value '([^']*)' (?:of type '\w+' )?could not be converted to (\w+)", text)
        if typed:
            kind = {"Float": "a number", "Integer": "a whole number", "Boolean": "true or false"}.get(typed.group(2),
                                                                                                   typed.group(2))
            return f"{override}: {typed.group(1)!r} is not {kind}"
        return f"{override}: {cause}"
    return _first_line(exc)
