"""What the experts cost a run, per pool member, so that it can be watched and budgeted.

Per member: calls, failures by cause, latency (mean, max, p50/p90/p99 over the calls
since the last snapshot), prompt and completion tokens, and a cost estimate from
per-member `Prices`. A member may also keep its own counters (retries, cache hits,
circuit-breaker openings, ...) and hand them over through a
`snapshot_and_reset() -> Mapping[str, number]` method; the pool folds them into the
member's stats when it snapshots its own.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from eapo.types import ExpertReply

__all__ = ["PoolStats", "Prices", "percentile", "pool_metrics"]


@dataclass(frozen=True)
class Prices:
    """What a member's tokens cost, in US dollars per million tokens (how providers quote
    them). Zero for local experts; the estimate is only as good as these numbers.

    >>> Prices(prompt_per_mtok=0.5, completion_per_mtok=2.0).cost(1_000_000, 250_000)
    1.0
    """

    prompt_per_mtok: float = 0.0
    completion_per_mtok: float = 0.0

    def __post_init__(self) -> None:
        for name in ("prompt_per_mtok", "completion_per_mtok"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"Prices.{name} must be a finite number >= 0 (USD per million tokens), got {value!r}")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt_per_mtok + completion_tokens * self.completion_per_mtok) / 1e6


@dataclass
class PoolStats:
    """Counters for one pool member since the last `snapshot_and_reset`.

    `latency_s` is summed over requests; a batched call counts its whole duration once per
    request in it (the time each request waited). `latencies` keeps each request's latency
    for the percentiles; failures count too (a timeout is time the rollout waited).
    Failures are keyed by cause: the part of `error` before the first colon ("timeout",
    "exception", "bad_reply", "http_429", ...). `counters` are the member's own (retries,
    cache hits, ...), filled in by `ExpertPool.snapshot_and_reset`."""

    name: str
    calls: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    latency_s: float = 0.0
    max_latency_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latencies: list[float] = field(default_factory=list)
    counters: dict[str, float] = field(default_factory=dict)
    prices: Prices = field(default_factory=Prices)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def mean_latency_s(self) -> float:
        return self.latency_s / self.calls if self.calls else 0.0

    @property
    def cost_usd(self) -> float:
        return self.prices.cost(self.prompt_tokens, self.completion_tokens)

    def latency_percentile(self, q: float) -> float:
        """The q-quantile (0..1) of the calls' latencies, linearly interpolated; 0 with no calls."""
        return percentile(self.latencies, q)

    def record(self, reply: ExpertReply) -> None:
        self.calls += 1
        self.latency_s += reply.latency_s
        self.max_latency_s = max(self.max_latency_s, reply.latency_s)
        self.latencies.append(reply.latency_s)
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens
        if reply.error is not None:
            cause = reply.error.split(":", 1)[0]
            self.failures[cause] = self.failures.get(cause, 0) + 1

    def snapshot_and_reset(self) -> PoolStats:
        """Return a copy of the counters and zero them."""
        snap = dataclasses.replace(self, failures=dict(self.failures), latencies=list(self.latencies),
                                   counters=dict(self.counters))
        self.calls = self.prompt_tokens = self.completion_tokens = 0
        self.latency_s = self.max_latency_s = 0.0
        self.failures = {}
        self.latencies = []
        self.counters = {}
        return snap


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default), 0.0 for no values.

    >>> percentile([4.0, 1.0, 3.0, 2.0], 0.5)
    2.5
    >>> percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.9)
    4.6
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q}")
    if not values:
        return 0.0
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


_QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))


def pool_metrics(stats: Sequence[PoolStats], prefix: str = "experts") -> dict[str, float]:
    """Flatten per-member stats into `{prefix}/{i}_{name}/...` metrics plus pool totals.
    Members are keyed by index too because replicas of one model share a name.

    Per member and for the pool: calls, failures (and `failures_<cause>`), latency mean,
    max and `latency_p50_s`/`p90`/`p99`, prompt and completion tokens, `cost_usd`, and the
    members' own counters (`retries`, `cache_hits`, ...), summed for the pool."""
    out: dict[str, float] = {}
    for i, s in enumerate(stats):
        p = f"{prefix}/{i}_{s.name}"
        out[f"{p}/calls"] = float(s.calls)
        out[f"{p}/failures"] = float(s.failed)
        out[f"{p}/mean_latency_s"] = s.mean_latency_s
        out[f"{p}/max_latency_s"] = s.max_latency_s
        for label, q in _QUANTILES:
            out[f"{p}/latency_{label}_s"] = s.latency_percentile(q)
        out[f"{p}/prompt_tokens"] = float(s.prompt_tokens)
        out[f"{p}/completion_tokens"] = float(s.completion_tokens)
        out[f"{p}/cost_usd"] = s.cost_usd
        for cause, n in sorted(s.failures.items()):
            out[f"{p}/failures_{cause}"] = float(n)
        for name, n in sorted(s.counters.items()):
            out[f"{p}/{name}"] = float(n)
    calls = sum(s.calls for s in stats)
    failed = sum(s.failed for s in stats)
    out[f"{prefix}/calls"] = float(calls)
    out[f"{prefix}/failures"] = float(failed)
    out[f"{prefix}/failure_rate"] = failed / calls if calls else 0.0
    out[f"{prefix}/mean_latency_s"] = sum(s.latency_s for s in stats) / calls if calls else 0.0
    everything = [x for s in stats for x in s.latencies]
    for label, q in _QUANTILES:
        out[f"{prefix}/latency_{label}_s"] = percentile(everything, q)
    out[f"{prefix}/prompt_tokens"] = float(sum(s.prompt_tokens for s in stats))
    out[f"{prefix}/completion_tokens"] = float(sum(s.completion_tokens for s in stats))
    out[f"{prefix}/cost_usd"] = sum(s.cost_usd for s in stats)
    causes: dict[str, int] = defaultdict(int)
    counters: dict[str, float] = defaultdict(float)
    for s in stats:
        for cause, n in s.failures.items():
            causes[cause] += n
        for name, n in s.counters.items():
            counters[name] += n
    for cause, n in sorted(causes.items()):
        out[f"{prefix}/failures_{cause}"] = float(n)
    for name, n in sorted(counters.items()):
        out[f"{prefix}/{name}"] = float(n)
    return out
