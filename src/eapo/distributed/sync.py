"""What EAPO's rollout must agree on across training processes, each step.

TRL splits a step's global batch into contiguous per-process slices (a group of
`num_generations` rollouts may straddle two processes) and gathers the rewards itself
before computing group advantages. Everything else that must be global is EAPO's:

- **Episode ids.** The acceptance coin and the expert request keys hash the episode uid
  `s{step}-{problem}-{copy}`. `global_uids` numbers the copies of a problem across the
  whole batch, so a group split over two processes never reuses a copy number (which
  would give two episodes the same coins), and the ids equal those of a single-process
  run of the same global batch.
- **The adaptive history.** `merge_history` adds every process's outcomes, in global batch
  order, on every process, so all processes hold the same per-problem history (and the
  same one a single process would hold).
- **Metrics.** `step_metrics` computes `rollout_metrics` over the episodes of all
  processes (gathered without their token ids), so a logged rate counts every episode,
  not rank 0's share; time metrics take the slowest process (the step waits for it).

One `all_gather_object` of light episode summaries per step serves history and metrics;
a second, tiny one numbers the episodes before the rollout.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eapo.distributed.collective import Collective
from eapo.rollout.metrics import rollout_metrics
from eapo.schedules.adaptive import Outcome, ProblemHistory
from eapo.types import Episode


def global_uids(step: int, problem_ids: Sequence[str], collective: Collective) -> list[str]:
    """This process's episode uids, with copy numbers counted over the global batch.

    >>> from eapo.distributed.collective import LocalCollective
    >>> global_uids(3, ["a", "a", "b", "a"], LocalCollective())
    ['s3-a-0', 's3-a-1', 's3-b-0', 's3-a-2']
    """
    per_rank = collective.all_gather_object(list(problem_ids))
    seen: Counter[str] = Counter()
    mine: list[str] = []
    for rank, pids in enumerate(per_rank):
        for pid in pids:
            if rank == collective.rank:
                mine.append(f"s{step}-{pid}-{seen[pid]}")
            seen[pid] += 1
    return mine


@dataclass
class EpisodeSummary(Episode):
    """An episode without its token record (ids, mask, log-probs) or reply texts: what
    metrics and the adaptive history read, small enough to gather every step."""

    n_policy_tokens: int = 0
    n_observation_tokens: int = 0

    @property
    def policy_tokens(self) -> int:  # type: ignore[override]
        return self.n_policy_tokens

    @property
    def observation_tokens(self) -> int:  # type: ignore[override]
        return self.n_observation_tokens


def summarize(ep: Episode) -> EpisodeSummary:
    turns = [dataclasses.replace(t, calls=[dataclasses.replace(c, reply="") for c in t.calls]) for t in ep.turns]
    return EpisodeSummary(
        uid=ep.uid, problem_id=ep.problem_id, prompt_ids=[], turns=turns, answer=ep.answer,
        well_formed=ep.well_formed, stop_reason=ep.stop_reason, score=ep.score, reward=ep.reward,
        penalty=ep.penalty, gold=ep.gold, meta=dict(ep.meta),
        n_policy_tokens=ep.policy_tokens, n_observation_tokens=ep.observation_tokens,
    )


@dataclass
class GatheredStep:
    """One step's rollout as every process sees it after the exchange."""

    episodes: list[EpisodeSummary]  # all processes' episodes, in global batch order
    rhos: list[float]  # the acceptance rate each episode was gated with, same order
    times: list[dict[str, float]]  # per process
    counts: list[int]  # episodes per process

    @property
    def world_size(self) -> int:
        return len(self.counts)


def gather_step(episodes: Sequence[Episode], rhos: Sequence[float], times: dict[str, float],
                collective: Collective) -> GatheredStep:
    if len(rhos) != len(episodes):
        raise ValueError(f"{len(episodes)} episodes but {len(rhos)} rates")
    payload = ([summarize(ep) for ep in episodes], [float(r) for r in rhos], dict(times))
    per_rank = collective.all_gather_object(payload)
    return GatheredStep(
        episodes=[ep for eps, _, _ in per_rank for ep in eps],
        rhos=[r for _, rs, _ in per_rank for r in rs],
        times=[t for _, _, t in per_rank],
        counts=[len(eps) for eps, _, _ in per_rank],
    )


def outcome(ep: Episode, step: int) -> Outcome:
    """What the adaptive history keeps of an episode: solved, and whether an expert helped."""
    return Outcome(step, ep.problem_id, ep.uid, ep.score >= 1.0, ep.accepted_calls > 0)


def merge_history(history: ProblemHistory, gathered: GatheredStep, step: int) -> int:
    """Add every process's outcomes in global batch order (one at a time, so the order
    inside a problem's window is the batch order, as in a single process). Returns how
    many counted (unaided ones)."""
    return sum(history.merge([outcome(ep, step)]) for ep in gathered.episodes)


def step_metrics(gathered: GatheredStep) -> dict[str, float]:
    """`rollout_metrics` over all processes' episodes, plus the effective acceptance rate,
    the episode count, and the slowest process's times."""
    metrics = rollout_metrics(gathered.episodes)
    metrics["schedule/rho_effective"] = sum(gathered.rhos) / len(gathered.rhos) if gathered.rhos else 0.0
    metrics["rollout/episodes"] = float(len(gathered.episodes))
    for key in sorted({k for t in gathered.times for k in t}):
        metrics[key] = max(t.get(key, 0.0) for t in gathered.times)
    return metrics


def merge_pool_stats(per_rank: Sequence[Sequence[Any]]) -> list[Any]:
    """Every process's `PoolStats` (one list per process, one entry per pool member, in
    member order) merged member by member: counts, tokens, latency sums and lists add up,
    the maximum latency is the largest. One process's list is returned as it is."""
    if len(per_rank) == 1:
        return list(per_rank[0])
    merged = []
    for member in zip(*per_rank, strict=True):
        first = member[0]
        failures: Counter[str] = Counter()
        counters: dict[str, float] = {}
        for s in member:
            failures.update(s.failures)
            for k, v in s.counters.items():
                counters[k] = counters.get(k, 0.0) + v
        merged.append(dataclasses.replace(
            first, calls=sum(s.calls for s in member), failures=dict(failures),
            latency_s=sum(s.latency_s for s in member), max_latency_s=max(s.max_latency_s for s in member),
            prompt_tokens=sum(s.prompt_tokens for s in member),
            completion_tokens=sum(s.completion_tokens for s in member),
            latencies=[x for s in member for x in s.latencies], counters=counters))
    return merged


class GatheredPoolStats:
    """An `ExpertPool` whose `snapshot_and_reset()` returns the counters of every process's
    pool, merged, on every process: what the run's pool accounting (`PoolMetrics`) logs in a
    multi-process run instead of the main process's share. A collective: every process calls
    it at the same log events (transformers calls `on_log` on all of them)."""

    def __init__(self, pool: Any, collective: Collective | None = None) -> None:
        self.pool = pool
        self.collective = collective

    def snapshot_and_reset(self) -> list[Any]:
        from eapo.distributed.collective import default_collective

        local = self.pool.snapshot_and_reset()
        return merge_pool_stats((self.collective or default_collective()).all_gather_object(local))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)
