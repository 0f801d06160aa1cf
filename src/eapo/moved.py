"""Old import paths that still work: a module's names that moved, forwarded on first use.

When a name moves to another module (issue 18 moved the assembly of a run out of
`eapo.training`), its old module keeps it importable for one release:

    MOVED = {"build_task": "eapo.assembly.run"}
    __getattr__ = forward(__name__, MOVED)

The forward is a module `__getattr__` (PEP 562): nothing is imported until an old name is
used, so a lower layer's module can forward to a higher one without importing up.
`tests/test_architecture.py` checks that every `MOVED` target defines its name. Delete the
entries (and the `forward`) after the release.

The same forward serves a package that loads its names on first use so that importing it
stays cheap (`eapo.models`, `eapo.evaluation`: a command's argument checks must not pay for
torch); those maps are not moves and stay.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["forward"]


def forward(module: str, moved: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `module` that finds each name of `moved` in the module
    it maps to, and raises the usual AttributeError for any other name."""

    def __getattr__(name: str) -> Any:
        if name in moved:
            return getattr(importlib.import_module(moved[name]), name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
