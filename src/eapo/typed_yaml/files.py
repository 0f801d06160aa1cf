"""Configs in YAML files: dump a dataclass, read a file, build a dataclass from a file with
`--set` overrides on top. The conversion itself is `eapo.typed_yaml.convert`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from eapo.typed_yaml.convert import ConfigError, from_dict, to_dict
from eapo.typed_yaml.overrides import apply_overrides

__all__ = ["dump_yaml", "load_config", "load_yaml", "read_yaml"]

T = TypeVar("T")


def dump_yaml(cfg: Any) -> str:
    """The config as YAML, keys in field order; `load_yaml` reads it back equal."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=False, allow_unicode=True)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML file (an empty file is an empty mapping)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def load_yaml(cls: type[T], path: str | Path) -> T:
    """Build `cls` from a YAML file; absent keys take their defaults."""
    data = read_yaml(path)
    try:
        return from_dict(cls, data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e


def load_config(cls: type[T], path: str | Path | None, overrides: Sequence[str] = ()) -> T:
    """Defaults of `cls`, then the YAML file at `path` (if any), then `overrides`."""
    data = read_yaml(path) if path is not None else {}
    try:
        return from_dict(cls, apply_overrides(data, overrides, cls))
    except ConfigError as e:
        if path is None:
            raise
        raise ConfigError(f"{path}{' with overrides' if overrides else ''}: {e}") from e
