"""Sends one consultation round to the experts at once, and never lets them stall it.

A rollout batch may hold dozens of consultation turns, each with up to K queries; waiting
on them one after another would make training as slow as the sum of the experts'
latencies, and one dead expert would stop it altogether (EAPO.md §8, "waiting on the
slowest"). So `ExpertPool.ask_many` starts every call of the round concurrently, bounds
each by `timeout_s`, and turns every failure (timeout, exception, a reply of the wrong
type) into an `ExpertReply` with `error` set, which the rollout shows the policy as the
"expert unavailable" observation. It never raises for an expert's sake.

Which member answers which query is `routing.py`'s business; what the calls cost is
`accounting.py`'s. Their public names are re-exported here.

What the pool does not do: decide whether a reply is accepted (the schedule's job), retry
(a retry is a second draw the policy did not ask for), or cache. A network expert retries
transport failures and caches replies itself (`openai_expert.py`), inside the pool's
timeout.

`timeout_s` bounds the call itself; with `max_concurrency` set (a batched call takes one
slot), time spent waiting for a free slot is not counted. An expert that blocks the event
loop synchronously (a `time.sleep` inside `async def`) cannot be interrupted by anything
in-process; experts run blocking work in a thread (`asyncio.to_thread`), as the Hugging
Face expert does.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from eapo.experts.accounting import PoolStats, Prices, percentile, pool_metrics
from eapo.experts.base import Expert, supports_batch
from eapo.experts.routing import ROUTINGS, ModRouter, RandomRouter, RoundRobinRouter, Router
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
