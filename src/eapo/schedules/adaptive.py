"""Adaptive per-problem acceptance (EAPO.md §2): help stays open for a problem while the
policy's recent *unaided* success on it is below a threshold, and closes once the policy
solves it alone.

Why: a global schedule opens help everywhere, and our pilots saw help *displace*
learning on problems plain RL already learns (PILOT "third pilot"). Keying acceptance on
each problem's own recent success sends help where groups get no reward signal at all,
and withdraws it exactly where the policy no longer needs it.

What counts as evidence. Only unaided episodes (no expert reply accepted; the caller
decides, typically `episode.accepted_calls == 0`) enter a problem's history: an aided
success says nothing about the policy alone, so it must not close the channel; an aided
failure says the problem is hard even with help, which is no reason to close it either.
Both are therefore dropped. A problem with fewer than `min_samples` unaided outcomes is
treated as unsolved (open).

A trap this design has: with `open_rho = 1` and a policy that consults on every episode,
no unaided outcome is ever recorded and help never closes. Use `open_rho < 1`, combine
with an annealed global rate (`combine="min"` or `"product"`), or refuse at episode
granularity, so that some episodes of an open problem run alone.

Distributed runs. Outcomes are plain tuples (`Outcome`), one per episode, so a group
split across processes needs no gathering of whole groups: each process builds the
outcomes of its own episodes, they are all-gathered, and every process `merge`s the full
list. `merge` sorts what it is given, so all processes reach the same state whatever the
gather order. Not here: the communication itself (the training layer owns it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from eapo.registry import Registry
from eapo.schema.checks import check_unit as _check_unit
from eapo.schema.schedules import AdaptiveConfig  # re-export: the section lives in eapo.schema


# How the per-problem rate meets the global schedule's rate. Each f(adaptive, base) -> rho.
COMBINERS: Registry[Callable[[float, float], float]] = Registry("adaptive combine rule")
COMBINERS.add("override", lambda adaptive, base: adaptive)  # the global schedule is ignored
COMBINERS.add("min", min)  # open only where both are open; the global rate can still anneal
COMBINERS.add("product", lambda adaptive, base: adaptive * base)

_STATE_FORMAT = "eapo.ProblemHistory/1"


def is_open(history: Sequence[bool], cfg: AdaptiveConfig) -> bool:
    """Whether help is open for a problem with these unaided outcomes (oldest first).

    >>> cfg = AdaptiveConfig(window=4, threshold=0.25)
    >>> is_open([], cfg), is_open([False, False], cfg), is_open([False, True], cfg)
    (True, True, False)
    >>> is_open([True, False, False, False, False], cfg)  # the success left the window
    True
    """
    recent = list(history)[-cfg.window :]
    if len(recent) < cfg.min_samples:
        return True
    return sum(map(bool, recent)) / len(recent) < cfg.threshold


def adaptive_rate(history: Sequence[bool], cfg: AdaptiveConfig) -> float:
    """The per-problem acceptance rate: `open_rho` while open, else `closed_rho`."""
    return cfg.open_rho if is_open(history, cfg) else cfg.closed_rho


def combine_rates(adaptive: float, base: float, how: str) -> float:
    """The rate an episode of this problem is gated with (see `COMBINERS`)."""
    return COMBINERS.get(how)(adaptive, base)


class Outcome(NamedTuple):
    """One episode's result, as a plain tuple that pickles, JSON-encodes (as a list) and
    all-gathers. `step` and `uid` only fix a canonical order inside a `merge`."""

    step: int
    problem_id: str
    uid: str
    success: bool
    aided: bool


def _as_outcome(record: Sequence[Any]) -> Outcome:
    if len(record) != len(Outcome._fields):
        raise ValueError(f"an outcome record is {Outcome._fields}, got {record!r}")
    step, problem_id, uid, success, aided = record
    return Outcome(int(step), str(problem_id), str(uid), bool(success), bool(aided))


class ProblemHistory:
    """Recent unaided outcomes per problem id, and the acceptance rate they imply.

    Single process: call `record` for each finished episode. Several processes: build an
    `Outcome` per local episode, all-gather, and `merge` the gathered list everywhere
    (do not also `record` them, or they count twice)."""

    def __init__(self, cfg: AdaptiveConfig) -> None:
        self.cfg = cfg
        self._recent: dict[str, deque[bool]] = {}

    def record(self, problem_id: str, success: bool, aided: bool, *, step: int = 0, uid: str = "") -> Outcome:
        """Add one episode's outcome (dropped if `aided`); returns it as a record."""
        outcome = Outcome(step, problem_id, uid, bool(success), bool(aided))
        self.merge([outcome])
        return outcome

    def merge(self, records: Iterable[Sequence[Any]]) -> int:
        """Add outcomes gathered from any number of processes; returns how many counted.

        The records are sorted first, so the result does not depend on their order."""
        counted = 0
        for o in sorted(_as_outcome(r) for r in records):
            if o.aided:
                continue
            self._history(o.problem_id).append(o.success)
            counted += 1
        return counted

    def history(self, problem_id: str) -> tuple[bool, ...]:
        """The kept unaided outcomes of a problem, oldest first."""
        return tuple(self._recent.get(problem_id, ()))

    def is_open(self, problem_id: str) -> bool:
        return is_open(self.history(problem_id), self.cfg)

    def rate(self, problem_id: str, base_rho: float) -> float:
        """The acceptance rate for an episode of `problem_id` when the global schedule
        gives `base_rho`."""
        _check_unit("base_rho", base_rho)
        return combine_rates(adaptive_rate(self.history(problem_id), self.cfg), base_rho, self.cfg.combine)

    def summary(self) -> dict[str, float]:
        """Metrics for logging: problems seen unaided, and the share of them still open."""
        n = len(self._recent)
        n_open = sum(1 for pid in self._recent if self.is_open(pid))
        return {"adaptive/problems": float(n), "adaptive/open_fraction": n_open / n if n else 1.0}

    def state_dict(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot for checkpoints."""
        return {
            "format": _STATE_FORMAT,
            "window": self.cfg.window,
            "recent": {pid: list(self._recent[pid]) for pid in sorted(self._recent)},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace the contents with a snapshot. A snapshot taken with a larger window
        keeps only its most recent outcomes."""
        if state.get("format") != _STATE_FORMAT:
            got = state.get("format")
            raise ValueError(f"not a ProblemHistory state: format {got!r}, want {_STATE_FORMAT!r}")
        self._recent = {}
        for pid, outcomes in state["recent"].items():
            self._history(str(pid)).extend(bool(x) for x in outcomes)

    def _history(self, problem_id: str) -> deque[bool]:
        if problem_id not in self._recent:
            self._recent[problem_id] = deque(maxlen=self.cfg.window)
        return self._recent[problem_id]

    def __len__(self) -> int:
        return len(self._recent)

    def __contains__(self, problem_id: object) -> bool:
        return problem_id in self._recent
