"""Summary metrics of a batch of episodes, grouped by prefix (`reward/`, `expert/`,
`rollout/`). Means over episodes unless the name says otherwise."""

from __future__ import annotations

from collections.abc import Sequence

from eapo.types import Episode


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def rollout_metrics(episodes: Sequence[Episode]) -> dict[str, float]:
    calls = [c for ep in episodes for c in ep.calls]
    attempted = [ep for ep in episodes if ep.consults > 0]
    return {
        "reward/mean": _mean([ep.reward for ep in episodes]),
        "reward/accuracy": _mean([ep.score for ep in episodes]),
        "reward/well_formed": _mean([float(ep.well_formed) for ep in episodes]),
        "expert/consult_rate": len(attempted) / len(episodes) if episodes else 0.0,
        "expert/consults_per_episode": _mean([ep.consults for ep in episodes]),
        "expert/queries": float(len(calls)),
        "expert/acceptance_rate": _mean([float(c.accepted) for c in calls]),
        "expert/errors": float(sum(c.reason.startswith("expert_error") for c in calls)),
        "expert/completion_tokens": float(sum(c.completion_tokens for c in calls)),
        "rollout/turns": _mean([len(ep.turns) for ep in episodes]),
        "rollout/policy_tokens": _mean([ep.policy_tokens for ep in episodes]),
        "rollout/observation_tokens": _mean([ep.observation_tokens for ep in episodes]),
        "rollout/answered": _mean([float(ep.stop_reason == "answer") for ep in episodes]),
    }
