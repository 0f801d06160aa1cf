"""Re-export, kept for one release: the typed YAML round trip is `eapo.typed_yaml` now
(`convert`, `overrides`, `files`); a run's keys are `eapo.schema`. Every public name of
the old module (`ConfigError`, `from_dict`, `to_dict`, `dump_yaml`, `read_yaml`,
`load_yaml`, `apply_overrides`, `load_config`) is here, the same object."""

from eapo.typed_yaml import *  # noqa: F403  re-export: the old import path
from eapo.typed_yaml import __all__  # noqa: F401
