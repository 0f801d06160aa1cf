"""Sends one consultation round to the experts at once, and never lets them stall it.

A rollout batch may hold dozens of consultation turns, each with up to K queries; waiting
on them one after another would make training as slow as the sum of the experts'
latencies, and one dead expert would stop it altogether (EAPO.md §8, "waiting on the
slowest"). So `ExpertPool.ask_many` starts every call of the round concurrently, bounds
each by `timeout_s`, and turns every failure (timeout, exception, a reply of the wrong
type) into an `ExpertReply` with `error` set, which the rollout shows the policy as the
"expert unavailable" observation. It never raises for an expert's sake.

Routing decides which member answers which query. "mod" is the paper's rule (the i-th
query of a turn goes to member i mod |pool|, EAPO.md §2); "round_robin" and "random" are
ours. Only "round_robin" has state (a counter); it is saved and restored with the pool's
`state_dict`, so a resumed run routes exactly as the uninterrupted one would have.

What the pool does not do: decide whether a reply is accepted (the schedule's job), retry
(a retry is a second draw the policy did not ask for), or cache. A network expert retries
transport failures and caches replies itself (`openai_expert.py`), inside the pool's
timeout.

Accounting (`PoolStats`, `pool_metrics`): per member, calls, failures by cause, latency
(mean, max, p50/p90/p99 over the calls since the last snapshot), prompt and completion
tokens, and a cost estimate from per-member `Prices`. A member may also keep its own
counters (retries, cache hits, circuit-breaker openings, ...) and hand them over through a
`snapshot_and_reset() -> Mapping[str, number]` method; the pool folds them into the
member's stats when it snapshots its own. `timeout_s` bounds the
call itself; with `max_concurrency` set (a batched call takes one slot), time spent
waiting for a free slot is not counted. An expert that blocks the event loop synchronously (a `time.sleep` inside
`async def`) cannot be interrupted by anything in-process; experts run blocking work in a
thread (`asyncio.to_thread`), as the Hugging Face expert does.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import math
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from eapo.experts.base import Expert, request_key, stable_hash, supports_batch
from eapo.registry import Registry
from eapo.types import ExpertReply, ExpertRequest

logger = logging.getLogger(__name__)

__all__ = [
    "ROUTINGS",
    "ExpertPool",
    "ModRouter",
    "PoolStats",
    "Prices",
    "RandomRouter",
    "RoundRobinRouter",
    "Router",
    "percentile",
    "pool_metrics",
]

_MAX_ERROR_CHARS = 200
_CANCEL_GRACE_S = 0.1
T = TypeVar("T")


# --------------------------------------------------------------------------- routing


class Router(Protocol):
    """Assigns each request of a round to a pool member (an index in `[0, n_members)`)."""

    def route(
        self, requests: Sequence[ExpertRequest], slots: Sequence[int], n_members: int
    ) -> list[int]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


# Factories take the pool's seed and return a fresh router.
ROUTINGS: Registry[Callable[[int], Router]] = Registry("routing")


@ROUTINGS.register("mod")
class ModRouter:
    """The paper's rule: the query in slot i of its turn goes to member i mod n. Stateless,
    so K queries of one turn reach K distinct members whenever K <= n."""

    def __init__(self, seed: int = 0) -> None:
        del seed  # the rule draws nothing

    def route(self, requests: Sequence[ExpertRequest], slots: Sequence[int], n_members: int) -> list[int]:
        return [slot % n_members for slot in slots]

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


@ROUTINGS.register("round_robin")
class RoundRobinRouter:
    """One counter across all calls: the j-th request the pool ever routes (in input order
    within a call) goes to member j mod n, regardless of slots. Spreads load evenly even
    when most turns ask a single query (which "mod" would send to member 0 every time).

    Its state is the counter (`{"next": j}`); checkpoint it with the pool. Concurrent
    `ask_many` calls from several threads each take a contiguous block of the sequence."""

    def __init__(self, seed: int = 0) -> None:
        del seed
        self._next = 0
        self._lock = threading.Lock()

    def route(self, requests: Sequence[ExpertRequest], slots: Sequence[int], n_members: int) -> list[int]:
        with self._lock:
            start = self._next
            self._next += len(requests)
        return [(start + j) % n_members for j in range(len(requests))]

    def state_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"next": self._next}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        with self._lock:
            self._next = int(state["next"])


@ROUTINGS.register("random")
class RandomRouter:
    """A uniform draw per request, from a hash of the pool seed and `request.key` (the
    caller's identity of the call: episode uid and query index), so it is reproducible,
    independent of batch composition, and needs no shared RNG or state. A request without
    a key is hashed on its content and slot instead."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def route(self, requests: Sequence[ExpertRequest], slots: Sequence[int], n_members: int) -> list[int]:
        out = []
        for request, slot in zip(requests, slots):
            ident = request.key or f"{request_key(request)}\x1e{slot}"
            out.append(stable_hash("route", self.seed, ident) % n_members)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


# --------------------------------------------------------------------------- stats


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


# --------------------------------------------------------------------------- pool


class ExpertPool:
    """A fixed list of experts, a routing rule, and the concurrency and failure policy.

    >>> from eapo.experts.fake import FakeExpert
    >>> pool = ExpertPool([FakeExpert(name="a"), FakeExpert(name="b")])
    >>> [(m, r.text) for m, r in pool.ask_many_sync(
    ...     [ExpertRequest(problem="p", query="q0"), ExpertRequest(problem="p", query="q1")], [0, 1])]
    [(0, 'ok:q0'), (1, 'ok:q1')]
    """

    def __init__(
        self,
        members: Sequence[Expert],
        routing: str = "mod",
        timeout_s: float = 60.0,
        seed: int = 0,
        max_concurrency: int | None = None,
        prices: Prices | Sequence[Prices] | None = None,
    ) -> None:
        if not members:
            raise ValueError("an expert pool needs at least one member")
        for i, m in enumerate(members):
            if not isinstance(m, Expert):
                raise TypeError(f"pool member {i} ({m!r}) has no `name` and async `ask`; see eapo.experts.Expert")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0 seconds, got {timeout_s}")
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError(f"max_concurrency must be None (unbounded) or >= 1, got {max_concurrency}")
        self.members: tuple[Expert, ...] = tuple(members)
        self.routing = routing
        self.router: Router = ROUTINGS.get(routing)(seed)
        self.timeout_s = float(timeout_s)
        self.seed = seed
        self.max_concurrency = max_concurrency
        if prices is None or isinstance(prices, Prices):
            prices = [prices or Prices()] * len(self.members)
        if len(prices) != len(self.members):
            raise ValueError(f"got {len(prices)} prices for {len(self.members)} members; give one per member")
        self._stats = [PoolStats(name=m.name, prices=p) for m, p in zip(self.members, prices)]
        self._lock = threading.Lock()  # guards stats and the semaphore table across threads
        # asyncio primitives belong to one event loop; `ask_many_sync` makes a loop per call.
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        # Timed-out calls are cancelled but not awaited (an expert that ignores cancellation
        # must not hold the round); keep a reference so they are not collected mid-flight.
        self._stragglers: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self.members)

    # ----------------------------------------------------------------- public API

    def route(self, requests: Sequence[ExpertRequest], slots: Sequence[int]) -> list[int]:
        """The member index for each request. Advances "round_robin"'s counter."""
        if len(requests) != len(slots):
            raise ValueError(f"got {len(requests)} requests but {len(slots)} slots; pass one slot per request")
        members = self.router.route(requests, slots, len(self.members))
        assert all(0 <= m < len(self.members) for m in members), members
        return members

    async def ask_many(
        self, requests: list[ExpertRequest], slots: list[int]
    ) -> list[tuple[int, ExpertReply]]:
        """Ask every request concurrently; return `(member index, reply)` in input order.

        `slots[j]` is the index of request j within its own consultation turn (0..K-1), which
        "mod" routing uses. A member that batches gets its whole share in one `ask_batch`
        call, bounded by one timeout. Never raises for an expert's failure."""
        assigned = self.route(requests, slots)
        by_member: dict[int, list[int]] = defaultdict(list)
        for j, m in enumerate(assigned):
            by_member[m].append(j)

        jobs: list[Awaitable[list[tuple[int, ExpertReply]]]] = []
        for m, idxs in by_member.items():
            expert = self.members[m]
            if supports_batch(expert):
                jobs.append(self._ask_batch(m, idxs, [requests[j] for j in idxs]))
            else:
                jobs.extend(self._ask_one(m, j, requests[j]) for j in idxs)

        replies: list[ExpertReply | None] = [None] * len(requests)
        for done in await asyncio.gather(*jobs):
            for j, reply in done:
                replies[j] = reply
        assert all(r is not None for r in replies)
        return [(m, r) for m, r in zip(assigned, replies)]  # type: ignore[misc]

    def ask_many_sync(self, requests: list[ExpertRequest], slots: list[int]) -> list[tuple[int, ExpertReply]]:
        """`ask_many` for synchronous callers (a trainer's rollout function).

        With no event loop in this thread it runs the round on a new loop here. Called from
        inside a running loop it runs it on a fresh thread with its own loop and blocks until
        done, which stalls the calling loop for that time: async callers should await
        `ask_many` instead."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return _run_on_new_loop(lambda: self.ask_many(requests, slots))
        with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="eapo-experts") as ex:
            return ex.submit(_run_on_new_loop, lambda: self.ask_many(requests, slots)).result()

    def snapshot_and_reset(self) -> list[PoolStats]:
        """Per-member counters since the last call (one `PoolStats` per member, in order).

        A member's own counters (its `snapshot_and_reset()`, if it has one) go to the first
        index it holds: one object listed several times (replicas, weights) reports once."""
        with self._lock:
            snaps = [s.snapshot_and_reset() for s in self._stats]
        seen: set[int] = set()
        for snap, member in zip(snaps, self.members):
            if id(member) in seen:
                continue
            seen.add(id(member))
            take = getattr(member, "snapshot_and_reset", None)
            if callable(take):
                try:
                    counters = take()
                except Exception:  # accounting must never cost a training step
                    logger.exception("expert %s: snapshot_and_reset failed", member.name)
                    continue
                if isinstance(counters, Mapping):
                    snap.counters.update({str(k): float(v) for k, v in counters.items()
                                          if isinstance(v, (int, float)) and not isinstance(v, bool)})
        return snaps

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to resume routing identically."""
        return {"routing": self.routing, "router": self.router.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("routing", self.routing) != self.routing:
            raise ValueError(
                f"checkpoint was saved with routing {state['routing']!r} but this pool uses "
                f"{self.routing!r}; set the same routing to resume"
            )
        self.router.load_state_dict(state.get("router", {}))

    # ----------------------------------------------------------------- internals

    async def _ask_one(self, m: int, j: int, request: ExpertRequest) -> list[tuple[int, ExpertReply]]:
        expert = self.members[m]
        result, error, dt = await self._bounded(lambda: expert.ask(request))
        reply = self._finish(m, result if error is None else None, error, dt)
        return [(j, reply)]

    async def _ask_batch(
        self, m: int, idxs: list[int], requests: list[ExpertRequest]
    ) -> list[tuple[int, ExpertReply]]:
        expert = self.members[m]
        result, error, dt = await self._bounded(lambda: expert.ask_batch(requests))  # type: ignore[attr-defined]
        items: list[Any] = [None] * len(requests)
        if error is None:
            if isinstance(result, (list, tuple)) and len(result) == len(requests):
                items = list(result)
            else:
                error = "bad_reply"
                logger.warning(
                    "expert %d (%s) returned %s for a batch of %d; expected a list of that many replies",
                    m, expert.name, type(result).__name__, len(requests),
                )
        return [(j, self._finish(m, item, error, dt)) for j, item in zip(idxs, items)]

    async def _bounded(self, call: Callable[[], Awaitable[Any]]) -> tuple[Any, str | None, float]:
        """Run `call()` under the concurrency limit and the timeout.

        Returns `(result, error, seconds)`. On timeout the call's task is cancelled and left
        to finish on its own, so the round returns on time even if the expert swallows the
        cancellation."""

        async def invoke() -> Any:
            return await call()  # a sync `ask` fails here, inside the task, as a TypeError

        sem = self._semaphore()
        async with sem if sem is not None else contextlib.nullcontext():
            start = time.perf_counter()
            task = asyncio.ensure_future(invoke())
            try:
                done, _ = await asyncio.wait({task}, timeout=self.timeout_s)
            except asyncio.CancelledError:
                task.cancel()
                raise
            elapsed = time.perf_counter() - start
            if not done:
                task.cancel()
                self._stragglers.add(task)
                task.add_done_callback(self._forget_straggler)
                return None, "timeout", elapsed
            if task.cancelled():
                return None, "exception:CancelledError: the expert's call was cancelled", elapsed
            exc = task.exception()
            if exc is not None:
                msg = str(exc).replace("\n", " ")[:_MAX_ERROR_CHARS]
                return None, f"exception:{type(exc).__name__}: {msg}", elapsed
            return task.result(), None, elapsed

    def _forget_straggler(self, task: asyncio.Task[Any]) -> None:
        self._stragglers.discard(task)
        if not task.cancelled():
            task.exception()  # retrieve it, so asyncio does not log "never retrieved"

    def _semaphore(self) -> asyncio.Semaphore | None:
        if self.max_concurrency is None:
            return None
        loop = asyncio.get_running_loop()
        with self._lock:
            sem = self._semaphores.get(loop)
            if sem is None:
                sem = self._semaphores[loop] = asyncio.Semaphore(self.max_concurrency)
            return sem

    def _finish(self, m: int, result: Any, error: str | None, elapsed: float) -> ExpertReply:
        """Normalise one outcome into a fresh `ExpertReply` (never the expert's own object,
        which it may cache) with the pool's latency and the member's name, and count it.
        The member's name wins over what the reply says, so a wrapper (the noisy expert)
        is recorded as itself, not as the expert it wraps."""
        name = self.members[m].name
        if error is None and not (isinstance(result, ExpertReply) and isinstance(result.text, str)):
            error = "bad_reply"
            logger.warning("expert %d (%s) returned %r, not an ExpertReply with str text", m, name, result)
        if error is None:
            reply = dataclasses.replace(result, expert=name, latency_s=elapsed)
        else:
            if error.startswith("exception"):
                logger.warning("expert %d (%s) failed: %s", m, name, error)
            else:
                logger.debug("expert %d (%s) failed: %s", m, name, error)
            reply = ExpertReply(text="", expert=name, latency_s=elapsed, error=error)
        with self._lock:
            self._stats[m].record(reply)
        return reply


def _run_on_new_loop(make: Callable[[], Awaitable[T]]) -> T:
    """`asyncio.run`, except that closing does not wait for executor threads.

    `asyncio.run` joins the default executor on exit, so an expert still generating in
    `asyncio.to_thread` after its timeout would hold the caller until it finished, which is
    the very wait the timeout exists to cut. Here such a thread is left to end on its own
    (its result is discarded), and cancelled tasks get a short grace to unwind."""
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(make())
    finally:
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=_CANCEL_GRACE_S))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()  # shuts the default executor down with wait=False
