"""Composing the `stylelab` command's config from overrides: the same files, defaults and schema as the
command line, through Hydra's compose API; and a mistake in them as one sentence.

The sentences come from the exception types Hydra and OmegaConf raise, which carry the key and the value
(ConfigAttributeError: no such key; ValidationError: a value of the wrong type, with the node that refused
it; MissingConfigException: no such option, with the group's options), never from their message text. The
Python API and the command line both compose here, so both refuse the same mistakes the same way.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, open_dict
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError
from omegaconf.nodes import BooleanNode, EnumNode, FloatNode, IntegerNode

from stylelab import config, signatures
from stylelab.choices import is_clip
from stylelab.errors import StyleLabError

config.register()

_KINDS = {float: "a number", int: "a whole number", bool: "true or false"}
_NODES = {FloatNode: float, IntegerNode: int, BooleanNode: bool}


def override_value(value: Any) -> str:
    """A Python value as Hydra's override grammar writes it: 5e8, true, null, [relu1_1,relu2_1], 'a b.jpg'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    text = str(value)
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote(text: str) -> str:
    """A string as a Hydra quoted value, read back exactly (quotes, backslashes and ${ escaped)."""
    body = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", text)  # backslashes before a quote double
    body = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, body)  # as do those before the closing quote
    return "'" + body.replace("${", "\\${") + "'"


def compose(*overrides: str, **values: Any) -> DictConfig:
    """The config the `stylelab` command would run with these overrides (positional: as typed on a command
    line; keyword: key=value for top-level keys and config groups)."""
    return compose_with_choices(*overrides, **values)[0]


def clip_defaults(overrides: list[str]) -> list[str]:
    """A clip's defaults are Ruder et al.'s method: with content=<a clip> and no init given, init=warped is
    added (the temporal term is on by its default weight). An image's defaults are untouched."""
    keys = [o.partition("=")[0].lstrip("+~").partition("@")[0] for o in overrides]
    content = [o.partition("=")[2].strip("'\"") for o in overrides if o.partition("=")[0].lstrip("+") == "content"]
    if content and is_clip(content[-1]) and "init" not in keys:
        return [*overrides, "init=warped"]
    return list(overrides)


def compose_with_choices(
    *overrides: str, raw: bool = False, hydra: bool = False, **values: Any
) -> tuple[DictConfig, dict[str, str]]:
    """compose(), and which option each config group took ({"loss/style": "gram", "optimizer": "lbfgs", ...}).

    A mistake in the overrides is a StyleLabError of one sentence (raw: Hydra's own exception). hydra: keep
    Hydra's own node (its folders, launcher, ...) in the config.
    """
    overrides = clip_defaults([*overrides, *(f"{key}={_group_or_value(value)}" for key, value in values.items())])
    if GlobalHydra.instance().is_initialized():
        raise StyleLabError("stylelab.compose cannot run inside another Hydra app or initialize() block")
    try:
        with initialize_config_module(config_module="stylelab.configs", version_base="1.3"):
            cfg = hydra_compose(config_name="config", overrides=overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as exc:
        if raw:
            raise
        raise StyleLabError(explain(exc, overrides)) from None
    choices = {group: option for group, option in cfg.hydra.runtime.choices.items() if not group.startswith("hydra")}
    added = unknown_additions(overrides, choices)
    if added and not raw:
        others = [o for o in overrides if o.partition("=")[0].lstrip("+") != added]
        raise StyleLabError(f"no setting {added}{_suggest(added, known_keys(others))}")
    if not hydra:
        with open_dict(cfg):
            del cfg["hydra"]
    return cfg, dict(choices)


def _group_or_value(value: Any) -> str:
    # a bare word (optimizer="adam", loss/style="w2") stays bare so it can name a group's option
    if isinstance(value, str) and value.replace("_", "").replace("-", "").isalnum():
        return value
    return override_value(value)


# ---------------------------------------------------------------- mistakes as one sentence


def unknown_additions(overrides: list[str], groups) -> str | None:
    """The first `+key=value` whose key the schema does not have (Hydra adds any key after a +); `groups`: the
    config groups composed (+experiment=... adds a group's option, not a setting)."""
    for override in overrides:
        key = override.partition("=")[0]
        if not key.startswith("+") or "/" in key or "@" in key or key.lstrip("+") in groups:
            continue  # not an addition, or a config group's
        schema: Any = config.StyleLabConfig
        for part in key.lstrip("+").split("."):
            if not (isinstance(schema, type) and dataclasses.is_dataclass(schema)):
                break  # an open part of the config (a group's option, a dict): anything may be added
            fields = {f.name: f for f in dataclasses.fields(schema)}
            if part not in fields:
                return key.lstrip("+")
            schema = typing.get_type_hints(schema).get(part)
    return None


def parses(override: str) -> bool:
    """Whether Hydra's grammar reads this override."""
    try:
        OverridesParser.create().parse_override(override)
        return True
    except Exception:
        return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def known_keys(job: list[str]) -> list[str]:
    """Every dotted setting and config group of the config these overrides would make (as far as it composes)."""
    for attempt in (job, []):
        try:
            cfg, choices = compose_with_choices(*[o for o in attempt if "=" in o and parses(o)], raw=True)
        except (HydraException, OmegaConfBaseException):
            continue
        return config.flatten_keys(cfg) + list(choices)
    return []


def _suggest(word: str, candidates: list[str]) -> str:
    """'; did you mean image.size?' for size, 'loss.alpha' for loss.alpah or alpah."""
    by_last = {}
    for key in candidates:
        by_last.setdefault(re.split(r"[./]", key)[-1], key)
    close = [by_last[word]] if word in by_last else difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    if not close:
        close = [
            by_last[m] for m in difflib.get_close_matches(re.split(r"[./]", word)[-1], list(by_last), n=1, cutoff=0.75)
        ]
    return f"; did you mean {close[0]}?" if close else "; `stylelab --help` lists the settings"


def _override_of(key: str, job: list[str]) -> str:
    """The override (as given) that sets `key`."""
    for override in job:
        if override.partition("=")[0].lstrip("+~") == key:
            return override
    return key


def _kind(error: ValidationError) -> str | None:
    """What a refused value should have been, from the node that refused it (or, in a list, the schema)."""
    node = error.child_node
    if isinstance(node, EnumNode):
        return "one of " + ", ".join(member.name for member in node.enum_type)
    if type(node) in _NODES:
        return _KINDS[_NODES[type(node)]]
    if node is None and "[" in str(error.full_key):  # an item of a list: the list's element type
        annotation: Any = config.StyleLabConfig
        for part in str(error.full_key).split("[")[0].split("."):
            if not (isinstance(annotation, type) and dataclasses.is_dataclass(annotation)):
                return None
            annotation = typing.get_type_hints(annotation).get(part)
        while typing.get_origin(annotation) in (typing.Union, list):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        return _KINDS.get(annotation)
    return None


def explain(exc: BaseException, job: list[str]) -> str:
    """A composition error as one sentence, with a suggestion where there is one."""
    if isinstance(exc, OverrideParseException):
        for override in job:
            if not parses(override):
                key, _, value = override.partition("=")
                return (
                    f"cannot read {override!r}: a value with special characters needs quotes, e.g. "
                    f'"{key}={quote(value)}" (the double quotes are for the shell)'
                )
        return _first_line(exc)
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file:
        group, _, option = str(exc.missing_cfg_file).rpartition("/")
        options = sorted(o for o in (exc.options or []) if not o.endswith(signatures.SCHEMA_SUFFIX))
        choose = (
            f"; choose {', '.join(options[:-1])} or {options[-1]}"
            if len(options) > 1
            else (f"; choose {options[0]}" if options else "")
        )
        close = difflib.get_close_matches(option, options, n=1, cutoff=0.5)
        hint = f" (did you mean {group}={close[0]}?)" if close else ""
        return f"no option {option} in group {group}{choose}{hint}"
    cause = exc.__cause__ if isinstance(exc, ConfigCompositionException) and exc.__cause__ else exc
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and cause.full_key:
        key = str(cause.full_key)  # the first part that does not exist: imag of imag.size=3
        given = [o.partition("=")[0].lstrip("+~") for o in job]
        key = next((k for k in given if k == key or k.startswith(key + ".")), key)
        what = "config group" if "/" in key else "setting"
        return f"no {what} {key}{_suggest(key, known_keys(job))}"
    if isinstance(cause, ValidationError) and cause.full_key:
        override = _override_of(str(cause.full_key).split("[")[0], job)
        kind = _kind(cause)
        return f"{override}: {cause.value!r} is not {kind}" if kind else f"{override}: {_first_line(cause)}"
    return _first_line(exc)
