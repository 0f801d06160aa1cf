"""Artifacts shipped with the package, each reproducible by the project's own code.

`warmstarts/warmstart-<key>/`: the default warm start of the tiny policy (EAPO.md §4's
warm start on the built-in task), ~2 MB. Why ship it: training it takes about 8 minutes on
2 CPU cores, which a newcomer's first `make demo` would otherwise spend before anything
else. It is used only when the cache key computed on the user's machine (tiny model spec,
task, warm-start recipe, format) equals its folder's key, and only after every file matches
the sha256 recorded in its marker, so a change to any input trains a new warm start as
before. `tests/training/test_shipped_warmstart.py` checks that the default configuration
still maps to the shipped key, and (`-m rebuild`, in CI) that the recipe rebuilds it
bit-for-bit. Regenerate after a deliberate recipe change with
`python -m eapo.assets.rebuild` (writes here, replacing the old folder).

The lookup is `eapo.training.warmstart.shipped_warm_start` (it finds this folder by path),
re-exported here: this package is an entry point above training (its rebuild trains), so
training does not import it.
"""

from __future__ import annotations

from eapo.training.warmstart import shipped_warm_start, warm_starts_dir

__all__ = ["shipped_warm_start", "warm_starts_dir"]
