"""What one evaluated episode of `eapo eval` leaves behind, and how such records are summarised.

Answers are scored by the benchmark's scorer, not by the rollout engine: code benchmarks
(HumanEval) read the answer back into the completion the original harness runs
(`eapo.rewards.code.completion_from_answer`; a fenced block in the policy's own final text
counts when it wrote no answer block and ended its text itself, as a final `\\boxed{}` does
for math) and run the benchmark's tests in the sandbox.

A record is one line of `items.jsonl`, in the form of `eapo score`'s items (`id`, `sample`,
`extracted`, `score`, `reason`) plus the answer and the behaviour (consults, expert calls
and tokens, turns, policy tokens). The summary (avg@n, unbiased pass@k, variance, greedy
accuracy and behaviour means) is computed from the records alone.

Not here: running and resuming the evaluation (`eapo.evaluation.bench_eval`), scoring
rules (`eapo.rewards`), estimators (`eapo.evaluation.metrics`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from eapo.evaluation.benchmarks import BenchmarkSpec
from eapo.evaluation.metrics import episode_metrics, prefixed
from eapo.rewards.code import completion_from_answer, fenced_code, score_humaneval
from eapo.rewards.reward import composite_reward
from eapo.rewards.scorers import SCORERS, ScoreResult
from eapo.types import Episode, Problem


# --------------------------------------------------------------------------- scoring


def _final_policy_text(ep: Episode, tokenizer: Any) -> str:
    """The policy's own text after the last observation (mask-1 tokens only)."""
    i = len(ep.loss_mask)
    while i > 0 and ep.loss_mask[i - 1] == 1:
        i -= 1
    return tokenizer.decode(ep.completion_ids[i:], skip_special_tokens=True)


class Scorer:
    """Scores episodes of one benchmark: `(ScoreResult, extra record fields)` each.
    `timeout_s` and `workers`: per program and at once in the sandbox (code benchmarks)."""

    def __init__(self, spec: BenchmarkSpec, problems: Sequence[Problem], tokenizer: Any, *, timeout_s: float,
                 workers: int) -> None:
        self.code = spec.scorer == "code"
        self.tokenizer = tokenizer
        self.timeout_s = timeout_s
        self.workers = workers
        self.by_id = {p.id: p for p in problems}
        if self.code:
            missing = [p.id for p in problems if "test" not in p.meta or "entry_point" not in p.meta]
            if missing:
                raise ValueError(f"scorer 'code' needs `test` and `entry_point` fields; missing for {missing[:3]}")
        else:
            self.fn = SCORERS.get(spec.scorer)

    def __call__(self, episodes: Sequence[Episode]) -> list[tuple[ScoreResult, dict[str, Any]]]:
        if not self.code:
            return [(self.fn(ep.answer, ep.gold or ""), {}) for ep in episodes]
        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(self._code, episodes))

    def _code(self, ep: Episode) -> tuple[ScoreResult, dict[str, Any]]:
        p = self.by_id[ep.problem_id]
        problem = {"prompt": p.question, **p.meta}
        answer, source = ep.answer, "answer"
        if answer is None and ep.stop_reason == "eos":
            answer, source = fenced_code(_final_policy_text(ep, self.tokenizer)), "fence"
        completion, form = completion_from_answer(answer, problem)
        result = score_humaneval(completion, problem, timeout_s=self.timeout_s)
        return result, {"code_form": form, "answer_source": source if completion else None}


# --------------------------------------------------------------------------- records


def episode_record(ep: Episode, mode: str, sample: int | None, result: ScoreResult, *, code: bool) -> dict[str, Any]:
    """One line of items.jsonl. `expert_calls` are the queries sent to an expert (accepted
    by the schedule; a failed call counts), `expert_tokens` their prompt + completion tokens."""
    calls = ep.calls
    sent = [c for c in calls if c.reason == "accepted" or c.reason.startswith("expert_error")]
    well_formed = ep.well_formed
    reward, _ = composite_reward(result.score, well_formed, ep.consults, 0.0)
    prompt_tokens = sum(c.prompt_tokens for c in sent)
    completion_tokens = sum(c.completion_tokens for c in sent)
    return {
        "id": ep.problem_id,
        "mode": mode,
        "sample": sample,  # None for the greedy episode
        "greedy": sample is None,
        "extracted": result.extracted,  # for code: the completion that was run
        "score": result.score,
        "reason": result.reason,
        "answer": ep.answer,
        "gold": None if code else ep.gold,
        "reward": reward,
        "well_formed": well_formed,
        "consults": ep.consults,
        "queries": len(calls),
        "expert_calls": len(sent),
        "accepted_calls": ep.accepted_calls,
        "expert_prompt_tokens": prompt_tokens,
        "expert_completion_tokens": completion_tokens,
        "expert_tokens": prompt_tokens + completion_tokens,
        "observation_tokens": ep.observation_tokens,
        "turns": len(ep.turns),
        "policy_tokens": ep.policy_tokens,
        "stop_reason": ep.stop_reason,
        "uid": ep.uid,
    }


def summarize_records(records: Sequence[Mapping[str, Any]], problem_ids: Sequence[str], modes: Sequence[str],
                      ks: Sequence[int]) -> dict[str, float]:
    """Metrics per mode, prefixed `eval/` (one mode) or `eval_<mode>/`. avg@n, pass@k, var
    and the behaviour means are over the sampled episodes; `greedy_acc` over the greedy
    ones; `*_total` over all episodes (the cost of the evaluation)."""
    out: dict[str, float] = {}
    for mode in modes:
        mine = [r for r in records if r["mode"] == mode]
        m = episode_metrics(mine, problem_ids, ks, expert_calls="expert_calls", totals=True)
        out.update(prefixed(m, mode, len(modes) > 1))
    return out
