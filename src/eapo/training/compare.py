"""Old path of the arms of `eapo train` (issue 18: the name collided with the package
`eapo.comparison`); they are `eapo.assembly.arms`. Kept for one release."""

from __future__ import annotations

from eapo.moved import forward

MOVED = {"ARM_LABELS": "eapo.assembly.arms", "evaluate_base": "eapo.assembly.arms",
         "prepare_policy": "eapo.assembly.arms", "run_arm": "eapo.assembly.arms", "run_arms": "eapo.assembly.arms",
         "table_rows": "eapo.assembly.arms"}
__getattr__ = forward(__name__, MOVED)
