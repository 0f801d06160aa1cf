"""Re-export, kept for one release: the typed YAML round trip is `eapo.typed_yaml` now
(`convert`, `overrides`, `files`); a run's keys are `eapo.schema`."""

from eapo.typed_yaml import (  # re-export: the old import path
    ConfigError,
    apply_overrides,
    dump_yaml,
    from_dict,
    load_config,
    load_yaml,
    read_yaml,
    to_dict,
)

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
