"""Typed configuration from plain data: frozen dataclasses in, YAML in and out.

- `convert`: plain data <-> dataclasses (`from_dict`, `to_dict`), strict, with errors that
  name the dotted path (`ConfigError`);
- `overrides`: `--set a.b.c=value` on plain data, checked against the dataclass;
- `files`: YAML files (`dump_yaml`, `read_yaml`, `load_yaml`, `load_config`).

Generic: nothing here knows a run's keys; those are `eapo.schema`'s dataclasses.
"""

from eapo.typed_yaml.convert import ConfigError, from_dict, to_dict
from eapo.typed_yaml.files import dump_yaml, load_config, load_yaml, read_yaml
from eapo.typed_yaml.overrides import apply_overrides

__all__ = [
    "ConfigError",
    "apply_overrides",
    "dump_yaml",
    "from_dict",
    "load_config",
    "load_yaml",
    "read_yaml",
    "to_dict",
]
