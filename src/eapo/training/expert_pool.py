"""Old path of the configured expert pool (issue 18 split it by layer): the pool is built
by `eapo.assembly.pool`, its accounting in the log rows is
`eapo.training.callbacks.PoolMetrics`. Kept for one release."""

from __future__ import annotations

from eapo.moved import forward
from eapo.training.callbacks import METRICS_PREFIX, PoolMetrics

__all__ = ["METRICS_PREFIX", "PoolMetrics", "build_member", "build_member_pool", "weighted_order"]

MOVED = {"build_member": "eapo.assembly.pool", "build_member_pool": "eapo.assembly.pool",
         "weighted_order": "eapo.assembly.pool"}
__getattr__ = forward(__name__, MOVED)
