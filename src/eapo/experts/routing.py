"""Which pool member answers which query of a consultation round.

"mod" is the paper's rule (the i-th query of a turn goes to member i mod |pool|,
EAPO.md §2); "round_robin" and "random" are ours. Only "round_robin" has state (a
counter); it is saved and restored with the pool's `state_dict`, so a resumed run routes
exactly as the uninterrupted one would have.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from eapo.experts.base import request_key, stable_hash
from eapo.registry import Registry
from eapo.types import ExpertRequest

__all__ = ["ROUTINGS", "ModRouter", "RandomRouter", "RoundRobinRouter", "Router"]


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
