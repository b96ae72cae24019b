"""Composing the `stylelab` command's config from Python: the same files, defaults and schema as Hydra's
command line. No torch here, so the command line can check its overrides before the heavy imports."""

from __future__ import annotations

from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import DictConfig, open_dict
from omegaconf.errors import OmegaConfBaseException

from stylelab import config
from stylelab.errors import StyleLabError

config.register()


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


def compose(*overrides: str, **values: Any) -> DictConfig:
    """The config the `stylelab` command would run with these overrides (positional: as typed on a command
    line; keyword: key=value for top-level keys and config groups)."""
    return compose_with_choices(*overrides, **values)[0]


def compose_with_choices(*overrides: str, raw: bool = False, **values: Any) -> tuple[DictConfig, dict[str, str]]:
    """compose(), and which option each config group took ({"loss/style": "gram", "optimizer": "lbfgs", ...}).

    A mistake in the overrides is a StyleLabError of one sentence (raw: Hydra's own exception).
    """
    overrides = [*overrides, *(f"{key}={_group_or_value(value)}" for key, value in values.items())]
    if GlobalHydra.instance().is_initialized():
        raise StyleLabError("stylelab.compose cannot run inside another Hydra app or initialize() block")
    try:
        with initialize_config_module(config_module="stylelab.configs", version_base="1.3"):
            cfg = hydra_compose(config_name="config", overrides=overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as exc:
        if raw:
            raise
        from stylelab.cli.argv import explain  # the command line's one-sentence errors, suggestions included

        raise StyleLabError(explain(exc, overrides)) from None
    choices = {group: option for group, option in cfg.hydra.runtime.choices.items() if not group.startswith("hydra")}
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, dict(choices)


def _group_or_value(value: Any) -> str:
    # a bare word (optimizer="adam", loss/style="w2") stays bare so it can name a group's option
    if isinstance(value, str) and value.replace("_", "").replace("-", "").isalnum():
        return value
    return override_value(value)
