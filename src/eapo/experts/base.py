"""What the rollout may assume of an expert, and nothing more.

An expert is anything with a `name` and an async `ask`: a hosted model behind an HTTP API,
a local Hugging Face model, an oracle that reads the gold answer, or a fake for tests.
Keeping the contract this small is what lets the pool run every kind concurrently and
treat every failure the same way. Experts may raise or misbehave; turning that into an
`ExpertReply` with `error` set is the pool's job (see `pool.py`), not each expert's.

Local models gain a lot from generating several prompts at once, so an expert may also
offer `ask_batch`; the pool then hands it its whole share of a consultation round in one
call. Wrappers (the noisy expert) can say whether they batch through a `batches`
attribute, because a structural check alone would see their `ask_batch` even when the
expert they wrap cannot batch.

This module imports no torch: the network expert lives in this package and must stay
light.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from eapo.registry import Registry
from eapo.types import ExpertReply, ExpertRequest

__all__ = [
    "EXPERTS",
    "BatchExpert",
    "Expert",
    "build_expert",
    "keyed_rng",
    "request_key",
    "stable_hash",
    "supports_batch",
]


@runtime_checkable
class Expert(Protocol):
    """Answers one query. Should return an `ExpertReply`; may raise (the pool catches)."""

    name: str

    async def ask(self, request: ExpertRequest) -> ExpertReply: ...


@runtime_checkable
class BatchExpert(Expert, Protocol):
    """An expert that answers several queries in one call (local models batching
    `generate`). Returns one reply per request, in order."""

    async def ask_batch(self, requests: list[ExpertRequest]) -> list[ExpertReply]: ...


def supports_batch(expert: object) -> bool:
    """Whether the pool should send `expert` its share in one `ask_batch` call.

    An explicit boolean `batches` attribute wins over the structural check, so a wrapper
    can forward batching only when the expert it wraps batches."""
    flag = getattr(expert, "batches", None)
    if isinstance(flag, bool):
        return flag
    return isinstance(expert, BatchExpert)


# Factories by name, for configuration files: `build_expert("fake", delay_s=0.2)`.
# Each factory takes keyword configuration only and returns an `Expert`.
EXPERTS: Registry[Callable[..., Expert]] = Registry("expert")


def build_expert(spec: str | Mapping[str, Any], /, **config: Any) -> Expert:
    """Build an expert from a registered name and keyword config, or from a mapping
    `{"type": name, **config}` as it appears in a YAML file.

    >>> build_expert({"type": "fake", "name": "f1"}).name
    'f1'
    """
    if isinstance(spec, Mapping):
        spec = dict(spec)
        try:
            kind = spec.pop("type")
        except KeyError:
            raise KeyError(
                f"an expert spec needs a 'type' key naming one of: {', '.join(EXPERTS.names())}"
            ) from None
        spec.update(config)
        return EXPERTS.get(kind)(**spec)
    return EXPERTS.get(spec)(**config)


def stable_hash(*parts: object) -> int:
    """A 64-bit hash of `parts` that is the same in every process and run (Python's own
    `hash` of a str is salted per process, so it cannot seed anything reproducible)."""
    data = "\x1f".join(str(p) for p in parts).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def request_key(request: ExpertRequest) -> str:
    """The identity of a request for seeding: its `key` when the caller set one, else its
    content (so unkeyed requests are still deterministic, though equal ones coincide)."""
    if request.key:
        return request.key
    return f"{request.problem_id}\x1e{request.problem}\x1e{request.query}"


def keyed_rng(seed: int, *parts: object) -> random.Random:
    """A private `random.Random` seeded by `seed` and `parts`: no shared generator, so the
    draw for one request never depends on how many others came before it."""
    return random.Random(stable_hash(seed, *parts))
