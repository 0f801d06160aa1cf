"""Fault injection for `eapo serve-expert`: make the server misbehave on purpose, in the
ways real endpoints do, to test that a client (ours, or yours) survives them.

A `FaultPlan` hands each chat request a `Fault`: first the queued ones, in order, then the
`default` (normally `ok`). Specs are comma-separated; `kind*N` repeats a fault:

    ok               answer normally
    500, 503, ...    that HTTP status with an OpenAI-style error body
    429:S            429 with `Retry-After: S` (S may be fractional; our client accepts it)
    slow:S           wait S seconds, then answer normally (a reply slower than a timeout)
    bad_json         200 with a complete body that is half a JSON document
    truncated        200 whose connection is closed half-way through the declared body
    empty            a well-formed completion whose content is ""
    empty_body       200 with no body at all
    huge:N           a well-formed completion: the real answer, then N bytes of padding
    html             200 with an HTML page (a proxy's error page)

Tests and the CLI's `--faults` build plans with `FaultPlan.parse`; a test may change the
plan while the server runs (`set`), from another thread. `served` counts what was dealt.
"""

from __future__ import annotations

import json
import threading
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

__all__ = ["FAULT_KINDS", "Fault", "FaultPlan"]

FAULT_KINDS = ("ok", "http", "slow", "bad_json", "truncated", "empty", "empty_body", "huge", "html")
_NEEDS_ARG = {"slow", "huge"}


@dataclass(frozen=True)
class Fault:
    kind: str
    status: int = 200
    arg: float = 0.0  # seconds (slow, Retry-After of 429) or bytes (huge)

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """One fault from its spec.

        >>> Fault.parse("429:0.5"), Fault.parse("huge:100").arg
        (Fault(kind='http', status=429, arg=0.5), 100.0)
        """
        spec = spec.strip()
        head, _, arg = spec.partition(":")
        if head.isdigit():
            status = int(head)
            if not 400 <= status <= 599:
                raise ValueError(f"fault {spec!r}: an HTTP fault is a status in 400..599")
            return cls("http", status=status, arg=_number(spec, arg) if arg else 0.0)
        if head not in FAULT_KINDS or head == "http":
            raise ValueError(f"unknown fault {spec!r}; use ok, a status such as 500 or 429:S, slow:S, bad_json, "
                             "truncated, empty, empty_body, huge:N or html")
        if head in _NEEDS_ARG and not arg:
            raise ValueError(f"fault {spec!r} needs a number: {head}:N")
        return cls(head, arg=_number(spec, arg) if arg else 0.0)

    @property
    def label(self) -> str:
        return str(self.status) if self.kind == "http" else self.kind


def _number(spec: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"fault {spec!r}: {text!r} is not a number") from None
    if value < 0:
        raise ValueError(f"fault {spec!r}: the number must be >= 0")
    return value


class FaultPlan:
    """Queued faults, then `default` for every later request. Thread-safe."""

    def __init__(self, faults: str | list[Fault] = "", default: str | Fault = "ok") -> None:
        self._lock = threading.Lock()
        self._queue: deque[Fault] = deque()
        self._default = Fault("ok")
        self.served: Counter[str] = Counter()
        self.set(faults, default)

    @staticmethod
    def parse(spec: str) -> list[Fault]:
        """`"500*2,ok"` -> [500, 500, ok]."""
        out: list[Fault] = []
        for item in (s.strip() for s in spec.split(",")):
            if not item:
                continue
            one, star, times = item.partition("*")
            n = 1
            if star:
                if not times.isdigit() or int(times) < 1:
                    raise ValueError(f"fault {item!r}: repeat count must be an int >= 1")
                n = int(times)
            out.extend([Fault.parse(one)] * n)
        return out

    def set(self, faults: str | list[Fault] = "", default: str | Fault | None = None) -> None:
        """Replace the queue (and the default, when given)."""
        queue = self.parse(faults) if isinstance(faults, str) else list(faults)
        with self._lock:
            self._queue = deque(queue)
            if default is not None:
                self._default = Fault.parse(default) if isinstance(default, str) else default

    def next(self) -> Fault:
        with self._lock:
            fault = self._queue.popleft() if self._queue else self._default
            self.served[fault.label] += 1
            return fault


def completion_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode("utf-8")
