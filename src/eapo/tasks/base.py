"""What a task is: problems with verifiable answers, split by seed, a scorer name for the
reward, and (optionally) an oracle that answers the policy's queries. Both `ChainTask` and
`DatasetTask` (sets read from files, `eapo.tasks.dataset`) follow it."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from eapo.types import ExpertRequest, Problem


@runtime_checkable
class Task(Protocol):
    name: str
    scorer: str  # a name in eapo.rewards.scorers.SCORERS

    def split(self, name: str) -> list[Problem]:
        """The fixed problems of a split ("train", "val", "test")."""
        ...


@runtime_checkable
class OracleTask(Task, Protocol):
    def oracle_answer(self, request: ExpertRequest) -> str:
        """An always-correct expert reply to `request.query`, for the oracle expert."""
        ...
