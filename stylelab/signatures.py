"""The schema of each option of a swappable part, from the signature of the class or function its YAML names
in `_target_`: every parameter with a default is a setting, with that default and the type the signature gives
(a Literal becomes a choice), so a parameter is written once, in the code that uses it. Parameters without a
default are what stylelab hands over when it builds the part (a term's layers, an optimizer's parameters).

The package's own options are read from configs/signatures.json (made from the signatures by
scripts/schemas.py), so that composing a config imports none of their modules, nor torch with them.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import importlib
import inspect
import json
import types
import typing
from dataclasses import field
from enum import Enum
from importlib import resources
from typing import Any, List, Literal, Optional, Union, get_args, get_origin

import yaml

SCHEMA_SUFFIX = "_schema"
# config groups whose options are not parts of a run (whole experiments, Hydra's own)
NOT_PARTS = ("hydra", "experiment")
SIGNATURES = "signatures.json"


class Choice(str, Enum):
    """A choice among strings: its members are their plain values, so library code takes them as str."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


@functools.lru_cache(maxsize=None)
def choice(literal) -> type[Choice]:
    """The Enum OmegaConf checks a value against, from the Literal the library declares the choices with."""
    values = get_args(literal)
    return Choice("Choice_" + "_".join(values), {value: value for value in values})


def _field_type(annotation) -> Any:
    """A signature's annotation as a type OmegaConf can check (Any where it cannot)."""
    if annotation in (int, float, str, bool):
        return annotation
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal and all(isinstance(a, str) for a in args):
        return choice(annotation)
    if origin in (Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            return Optional[_field_type(rest[0])]
        return Any
    if origin in (list, tuple, collections.abc.Sequence) and args:
        element = _field_type(args[0])
        return List[element] if element in (int, float, str, bool) else List[Any]
    return Any


def _field_default(value):
    if isinstance(value, (list, tuple)):
        return field(default_factory=lambda value=value: list(value))
    return value


def signature_fields(target: str) -> list[tuple[str, Any, Any]]:
    """(name, type, default) of every parameter of `target`'s signature that has a default (its module imported)."""
    module, _, name = target.rpartition(".")
    obj = getattr(importlib.import_module(module), name)
    hints = typing.get_type_hints(obj.__init__ if inspect.isclass(obj) else obj)
    return [
        (parameter.name, _field_type(hints.get(parameter.name, Any)), parameter.default)
        for parameter in inspect.signature(obj).parameters.values()
        if parameter.default is not inspect.Parameter.empty
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]  # the rest is handed over when the part is built


def describe(kind) -> Any:
    """A field type as JSON: "int" | "float" | "str" | "bool" | "any" | {"choice": [...]} | {"optional": ...} |
    {"list": ...}."""
    if kind in (int, float, str, bool):
        return kind.__name__
    if isinstance(kind, type) and issubclass(kind, Choice):
        return {"choice": [member.value for member in kind]}
    origin, args = get_origin(kind), get_args(kind)
    if origin is Union:
        return {"optional": describe(args[0])}
    if origin is list:
        return {"list": describe(args[0])}
    return "any"


def _described(text) -> Any:
    """describe() read back."""
    if isinstance(text, str):
        return {"int": int, "float": float, "str": str, "bool": bool}.get(text, Any)
    if "choice" in text:
        return choice(Literal[tuple(text["choice"])])
    if "optional" in text:
        return Optional[_described(text["optional"])]
    return List[_described(text["list"])]


@functools.lru_cache(maxsize=None)
def packaged_signatures() -> dict[str, list]:
    """{target: [[name, describe(type), default], ...]} for the package's options (SIGNATURES)."""
    return json.loads(resources.files("stylelab.configs").joinpath(SIGNATURES).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=None)
def schema_of(target: str, partial: bool = False) -> type:
    """A dataclass of `target`'s settings: `_target_`, and every parameter of its signature that has a default
    (the package's own from SIGNATURES, a user's class from its signature)."""
    if target in packaged_signatures():
        found = [(name, _described(kind), default) for name, kind, default in packaged_signatures()[target]]
    else:
        found = signature_fields(target)
    fields: list[tuple] = [("_target_", str, field(default=target))]
    if partial:
        fields.append(("_partial_", bool, field(default=True)))
    for name, kind, default in found:
        if isinstance(kind, type) and issubclass(kind, Choice) and default is not None:
            default = kind(default)
        fields.append((name, kind, _field_default(default)))
    return dataclasses.make_dataclass(f"{target.rpartition('.')[2]}Config", fields)


def signatures_in_code() -> dict[str, list]:
    """What SIGNATURES holds, from the signatures themselves (importing every target)."""
    targets = sorted({node["_target_"] for _, _, node in package_options()})
    return {
        target: [
            [name, describe(kind), list(d) if isinstance(d, tuple) else d] for name, kind, d in signature_fields(target)
        ]
        for target in targets
    }


def package_options() -> list[tuple[str, str, dict]]:
    """(group, option, YAML) for every option of the package's config groups that lists its schema."""
    found = []

    def walk(folder, group: str) -> None:
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.is_dir() and not (not group and entry.name in NOT_PARTS):
                walk(entry, f"{group}/{entry.name}" if group else entry.name)
            elif group and entry.name.endswith(".yaml"):
                option = entry.name[: -len(".yaml")]
                node = yaml.safe_load(entry.read_text(encoding="utf-8")) or {}
                if option + SCHEMA_SUFFIX in (node.get("defaults") or []):
                    found.append((group, option, node))

    walk(resources.files("stylelab.configs"), "")
    return found
