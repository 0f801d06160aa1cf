"""Old path of the arms of `eapo train` under `accelerate launch` (issue 18: they train, so
they sit above training); they are `eapo.assembly.arms_distributed`. Kept for one release."""

from __future__ import annotations

from eapo.moved import forward

MOVED = {"process_state": "eapo.assembly.arms_distributed", "run_arms_distributed": "eapo.assembly.arms_distributed"}
__getattr__ = forward(__name__, MOVED)
