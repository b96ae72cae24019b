"""`stylelab --help`, generated: the config groups and their options, every setting of the run with its line of
help, and each option's own settings, from the same schema that checks them (stylelab.config)."""

from __future__ import annotations

import dataclasses
import string
import typing

from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.object_type import ObjectType
from omegaconf import OmegaConf, open_dict

from stylelab import config, signatures


def groups_help() -> str:
    """The config groups and their options (Hydra's own list would show the schemas behind them too)."""
    loader = GlobalHydra.instance().config_loader()

    def walk(parent: str):
        for group in loader.list_groups(parent):
            name = f"{parent}/{group}" if parent else group
            if name == "hydra":
                continue
            options = [
                o for o in loader.get_group_options(name, ObjectType.CONFIG) if not o.endswith(signatures.SCHEMA_SUFFIX)
            ]
            if options:
                yield name, f"  {name}: {', '.join(sorted(options))}"
            yield from walk(name)

    return "\n".join(line for _, line in sorted(walk("")))


def _kind(annotation) -> str:
    """A field's type as the help shows it: choices spelled out, numbers and flags named."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union:
        rest = [a for a in args if a is not type(None)]
        return f"{_kind(rest[0])} or null" if len(rest) == 1 else "any"
    if origin in (list, typing.List):
        return f"list of {_kind(args[0])}" if args else "list"
    if isinstance(annotation, type) and issubclass(annotation, signatures.Choice):
        return " | ".join(member.value for member in annotation)
    return {float: "number", int: "whole number", bool: "true | false", str: "text"}.get(annotation, "any")


def settings_help() -> str:
    """Every setting of the run (key, line of help), then each option's settings with their defaults."""
    width = 26
    lines = [f"  {key:<{width}} {text}" for key, _, text in config.help_lines()]
    lines += ["", "Each option's own settings (group.key=value; the defaults come from its class):"]
    for group, option, node in signatures.package_options():
        schema = signatures.schema_of(node["_target_"], bool(node.get("_partial_", False)))
        hints = typing.get_type_hints(schema)
        fields = [
            f"{f.name}={_shown(node[f.name]) if f.name in node else _default(f)} ({_kind(hints[f.name])})"
            for f in dataclasses.fields(schema)
            if not f.name.startswith("_")
        ]
        lines.append(f"  {group}={option}: {', '.join(fields) if fields else '(none)'}")
    return "\n".join(lines)


def _shown(value) -> str:
    """A YAML's value; a reference ${seed} as <seed> (Hydra's help template reads $ itself)."""
    text = str(value)
    return f"<{text[2:-1]}>" if text.startswith("${") and text.endswith("}") else text


def _default(f: dataclasses.Field) -> str:
    value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value.value if isinstance(value, signatures.Choice) else value)


def render(overrides: list[str]) -> str:
    """What `stylelab --help` prints: Hydra's help template (configs/hydra/default.yaml) filled in as Hydra
    fills it, without Hydra's listing of every config group and option, which the template does not show and
    which costs seconds (it composes the experiment group's options one by one)."""
    with initialize_config_module(config_module="stylelab.configs", version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
        template = str(cfg.hydra.help.template)  # resolved here: the groups' list needs Hydra's loader
    with open_dict(cfg):
        del cfg["hydra"]
    return string.Template(template).safe_substitute(CONFIG=OmegaConf.to_yaml(cfg))
