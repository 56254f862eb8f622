"""Settings of ``clarifai-connect sync``: command-line options, or a YAML file of the same.

``clarifai-connect sync CONFIG.yaml`` reads a mapping whose keys are the option names
(``source``, ``app``, ``dataset``, ``format``, ``base_url``, ``workers``, ``batch_size``,
``state``, ``update``, ``delete``, ``max_delete``, ``dry_run``, ``report``,
``storage_options``, ``options``, ``transform``, ``allow_paths``, ``give_up_after``,
``check_media``); relative paths in it are
relative to the file (a ``transform: my_module:fix`` module is imported from the file's
folder). Options given on the command line win over the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from ..errors import ConfigError
from ..plugins import parse_option_pairs
from ..transform import load_transform

__all__ = ["CONFIG_KEYS", "load_config", "load_sync_settings"]

CONFIG_KEYS = ("source", "app", "dataset", "format", "base_url", "pat", "workers",
               "batch_size", "state", "update", "delete", "max_delete", "dry_run", "report",
               "storage_options", "options", "transform", "allow_paths",
               "give_up_after", "check_media")
_PATH_KEYS = ("state", "report")
# CLI parameter name → sync() argument name, where they differ.
_RENAMES = {"format_": "format", "storage": "storage_options"}


def is_config_file(source: str) -> bool:
    """Whether SOURCE names a local YAML settings file rather than data."""
    return source.lower().endswith((".yaml", ".yml")) and "://" not in source \
        and os.path.isfile(source)


def _relative_to(base: Path, value: str) -> str:
    if "://" in value or os.path.isabs(value) or value == "local" or value.startswith("~"):
        return os.path.expanduser(value)
    return str(base / value)


def load_config(path: str) -> dict[str, Any]:
    """The settings in a YAML file, checked: unknown keys and wrong types fail fast."""
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path} must hold a mapping of sync settings (source:, app: …)")
    settings: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in CONFIG_KEYS:
            raise ConfigError(f"{path}: unknown setting '{key}' (known: {', '.join(CONFIG_KEYS)})")
        settings[name] = value
    for name in ("storage_options", "options"):
        if name in settings and not isinstance(settings[name] or {}, Mapping):
            raise ConfigError(f"{path}: '{name}' must be a mapping")
    if not settings.get("source"):
        raise ConfigError(f"{path}: no 'source' setting")
    base = Path(path).resolve().parent
    settings["source"] = _relative_to(base, str(settings["source"]))
    for name in _PATH_KEYS:
        if settings.get(name):
            settings[name] = _relative_to(base, str(settings[name]))
    if settings.get("transform"):
        settings["transform"] = load_transform(str(settings["transform"]), base)
    if "allow_paths" in settings:
        folders = settings["allow_paths"] or []
        folders = [folders] if isinstance(folders, str) else folders
        if not isinstance(folders, list):
            raise ConfigError(f"{path}: 'allow_paths' must be a folder or a list of folders")
        settings["allow_paths"] = [_relative_to(base, str(f)) for f in folders]
    return settings


def load_sync_settings(ctx: click.Context, source: str, cli: Mapping[str, Any]
                       ) -> dict[str, Any]:
    """The keyword arguments of :func:`~clarifai_connect.engine.run.sync` from the command
    line (``cli``: the click parameters) and, when SOURCE is a YAML file, that file."""
    file = load_config(source) if is_config_file(source) else {}
    given = {name for name in cli
             if ctx.get_parameter_source(name) in (click.core.ParameterSource.COMMANDLINE,
                                                  click.core.ParameterSource.ENVIRONMENT)}
    args: dict[str, Any] = {"source": file.get("source", source)}
    for name, value in cli.items():
        if name in ("options", "storage"):
            continue
        key = _RENAMES.get(name, name)
        args[key] = value if (name in given or key not in file) else file[key]
    args["storage_options"] = {**dict(file.get("storage_options") or {}),
                               **parse_option_pairs(cli.get("storage", ()), "storage option")}
    args["options"] = {**dict(file.get("options") or {}),
                       **parse_option_pairs(cli.get("options", ()))}
    if not args.get("app"):
        raise ConfigError("no target app: give --app USER/APP (or app: in the settings file)")
    args["report"] = args.get("report") or "auto"
    return args
