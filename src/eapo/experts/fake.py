"""Experts with scripted behaviour, for tests and benchmarks.

They stand in for real models wherever what matters is timing or failure: concurrency of
the pool, timeouts, the rollout's handling of an unavailable expert. Each failure mode is
one a real expert shows in practice: raising (a client error), hanging (a dead server),
returning garbage (a broken adapter). Token counts are character counts, a proxy.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from eapo.experts.base import EXPERTS
from eapo.types import ExpertReply, ExpertRequest

__all__ = ["FAIL_MODES", "FakeBatchExpert", "FakeExpert"]

FAIL_MODES = ("raise", "hang", "garbage")


class FakeExpert:
    """Sleeps `delay_s` (without blocking the loop), then replies `reply_fn(request)`,
    by default `"ok:" + request.query`, or fails the chosen way:

    - `"raise"`: raises `RuntimeError`;
    - `"hang"`: never returns (until cancelled);
    - `"garbage"`: returns a dict instead of an `ExpertReply`.

    A `reply_fn` that returns a non-str is passed through as the reply's text unchecked,
    which is how tests make a reply whose text is `None`.

    >>> import asyncio
    >>> asyncio.run(FakeExpert().ask(ExpertRequest(problem="p", query="2+2?"))).text
    'ok:2+2?'
    """

    def __init__(
        self,
        name: str = "fake",
        delay_s: float = 0.0,
        reply_fn: Callable[[ExpertRequest], Any] | None = None,
        fail: str | None = None,
    ) -> None:
        if fail is not None and fail not in FAIL_MODES:
            raise ValueError(f"fail must be None or one of {FAIL_MODES}, got {fail!r}")
        if delay_s < 0:
            raise ValueError(f"delay_s must be >= 0, got {delay_s}")
        self.name = name
        self.delay_s = delay_s
        self.reply_fn = reply_fn
        self.fail = fail
        self.calls = 0  # requests seen, for tests
        self._lock = threading.Lock()

    async def ask(self, request: ExpertRequest) -> ExpertReply:
        with self._lock:
            self.calls += 1
        if self.fail == "hang":
            await _hang()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return self._reply(request)

    def _reply(self, request: ExpertRequest) -> ExpertReply:
        if self.fail == "raise":
            raise RuntimeError(f"{self.name} was told to fail")
        if self.fail == "garbage":
            return {"text": None}  # type: ignore[return-value]
        text = self.reply_fn(request) if self.reply_fn is not None else f"ok:{request.query}"
        n = len(text) if isinstance(text, str) else 0
        return ExpertReply(
            text=text, expert=self.name, prompt_tokens=len(request.problem) + len(request.query), completion_tokens=n
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, delay_s={self.delay_s}, fail={self.fail!r})"


class FakeBatchExpert(FakeExpert):
    """A `FakeExpert` that also answers a whole share in one `ask_batch` call, sleeping
    `delay_s` once per batch, as a local model generating a batch would. Records the size
    of each batch in `batch_sizes`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batch_sizes: list[int] = []

    async def ask_batch(self, requests: list[ExpertRequest]) -> list[ExpertReply]:
        with self._lock:
            self.calls += len(requests)
            self.batch_sizes.append(len(requests))
        if self.fail == "hang":
            await _hang()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return [self._reply(r) for r in requests]


async def _hang() -> None:
    await asyncio.Event().wait()  # nothing ever sets it


@EXPERTS.register("fake")
def _make_fake(**config: Any) -> FakeExpert:
    batch = config.pop("batch", False)
    return (FakeBatchExpert if batch else FakeExpert)(**config)
