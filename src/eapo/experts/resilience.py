"""How a network call is retried and when an endpoint is rested: the policies of
`OpenAIExpert`, kept apart from HTTP so they can be read and tested on their own.

- `RetryPolicy`: bounded retries with exponential backoff and jitter, and how long a 429's
  Retry-After may ask us to wait before we give up instead.
- `CircuitBreaker` (`BreakerPolicy`): after N failed attempts in a row an endpoint rests
  for a cooldown, then one trial call decides; it is what keeps a dead server from
  costing every later call its full timeout.
- `parse_retry_after`: `retry-after-ms`, or `Retry-After` as seconds or an HTTP date.

No I/O, no event loop: a breaker takes its clock as an argument.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["BreakerPolicy", "CircuitBreaker", "RetryPolicy", "parse_retry_after"]



@dataclass(frozen=True)
class RetryPolicy:
    """How a failed attempt is retried: at most `retries` more attempts, waiting
    `min(backoff_max_s, backoff_s * 2**k) * U(0.5, 1)` before retry k+1 (exponential
    backoff with jitter, so replicas of a run do not retry in lockstep), and at least a
    429's Retry-After, unless that is over `max_retry_after_s` (then give up at once)."""

    retries: int = 2
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    max_retry_after_s: float = 30.0

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"retries must be an int >= 0, got {self.retries!r}")
        for name in ("backoff_s", "backoff_max_s", "max_retry_after_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number of seconds >= 0, got {v!r}")

    def delay(self, attempt: int, u: float) -> float:
        """The wait after failed attempt `attempt` (0-based), for a uniform draw `u`.

        >>> RetryPolicy(backoff_s=1.0, backoff_max_s=3.0).delay(5, 1.0)
        3.0
        """
        return min(self.backoff_max_s, self.backoff_s * 2.0**attempt) * (0.5 + 0.5 * u)


@dataclass(frozen=True)
class BreakerPolicy:
    """Rest an endpoint after `failures` failed attempts in a row (0: never) for
    `cooldown_s` seconds."""

    failures: int = 5
    cooldown_s: float = 30.0

    def __post_init__(self) -> None:
        if isinstance(self.failures, bool) or not isinstance(self.failures, int) or self.failures < 0:
            raise ValueError(f"breaker failures must be an int >= 0 (0 disables it), got {self.failures!r}")
        if not (isinstance(self.cooldown_s, (int, float)) and math.isfinite(self.cooldown_s) and self.cooldown_s >= 0):
            raise ValueError(f"breaker cooldown_s must be a finite number >= 0, got {self.cooldown_s!r}")


class CircuitBreaker:
    """closed -> (N failures in a row) -> open -> (cooldown) -> half_open -> one trial call:
    success closes it, failure opens it again. A trial that never reports (its call was
    cancelled) does not wedge it: after another cooldown a new trial is let through.

    Used from one event loop only (the expert's), so it needs no lock.

    >>> now = [0.0]
    >>> b = CircuitBreaker(BreakerPolicy(failures=2, cooldown_s=10), clock=lambda: now[0])
    >>> b.record(False); b.record(False); b.state, b.allow()
    ('open', False)
    >>> now[0] = 10.0; b.allow(), b.allow(), b.state
    (True, False, 'half_open')
    >>> b.record(True); b.state
    'closed'
    """

    def __init__(self, policy: BreakerPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.clock = clock
        self.state = "closed"
        self.consecutive = 0
        self.opened = 0  # times it opened, for accounting
        self._until = 0.0
        self._trial_at: float | None = None

    def allow(self) -> bool:
        if self.state == "closed":
            return True
        now = self.clock()
        if self.state == "open":
            if now < self._until:
                return False
            self.state = "half_open"
            self._trial_at = None
        if self._trial_at is None or now - self._trial_at >= self.policy.cooldown_s:
            self._trial_at = now
            return True
        return False

    def record(self, ok: bool) -> None:
        if ok:
            self.state, self.consecutive, self._trial_at = "closed", 0, None
            return
        self.consecutive += 1
        if self.policy.failures and (self.state == "half_open" or self.consecutive >= self.policy.failures):
            if self.state != "open":
                self.opened += 1
            self.state = "open"
            self._until = self.clock() + self.policy.cooldown_s
            self._trial_at = None


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` as seconds or an HTTP date.

    >>> parse_retry_after({"retry-after": "2"}), parse_retry_after({"retry-after-ms": "1500"})
    (2.0, 1.5)
    >>> parse_retry_after({"retry-after": "soon"}) is None
    True
    """
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        if "retry-after-ms" in lower:
            return max(0.0, float(lower["retry-after-ms"]) / 1000.0)
    except ValueError:
        pass
    raw = lower.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
        return max(0.0, value) if math.isfinite(value) else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
