"""Accuracy estimators for expert-free evaluation (EAPO.md §5), as pure functions.

Why an estimator and not the fraction of problems solved in k tries: with `n >= k` samples
per problem, `1 - C(n-c, k) / C(n, k)` is the unbiased estimate of pass@k (Chen et al.
2021, the HumanEval paper), and it uses all `n` samples instead of the first `k`. Binomials
of realistic `n` overflow floats, so it is computed as a product of factors in (0, 1].

Why the variance: the paper reports that EAPO lowers the spread of per-problem accuracy
across samples; `var` is that spread (the population variance over each problem's
samples), averaged over problems. `std_of_mean` is the standard error of `avg@n` across
problems, for error bars.

Scores are in [0, 1] (F1 may be partial). `avg@n` and `var` use the raw scores; pass@k
needs a yes/no per sample, and a sample counts as correct iff `score >= 1 - 1e-9` (a full
score up to float rounding), so partial credit never counts as a pass.

`episode_metrics` is the one summary of an evaluation's per-episode records (the
training-time evaluation, `eapo eval`, the compare workflow row): the estimators over the
sampled episodes plus the behaviour means, so every report names the same quantity alike.

Not here: running the policy (`eapo.evaluation.loop`), scoring answers
(`eapo.rewards.scorers`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

CORRECT_TOL = 1e-9


def is_correct(score: float) -> bool:
    """Whether a sample counts as a pass for pass@k: a full score, up to float rounding.

    >>> is_correct(1.0), is_correct(0.999), is_correct(1 - 1e-12)
    (True, False, True)
    """
    return score >= 1.0 - CORRECT_TOL


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from `n` samples of which `c` are correct: `1 - C(n-c, k) / C(n, k)`.

    Computed as `1 - prod_{i=n-c+1}^{n} (1 - k/i)`, multiplied from `i = n` downwards so
    that adding a correct sample only multiplies by one more factor <= 1 (the estimate is
    then monotone in `c` even in floating point).

    >>> pass_at_k(4, 2, 1), round(pass_at_k(4, 2, 2), 6), pass_at_k(4, 2, 3)
    (0.5, 0.833333, 1.0)
    >>> pass_at_k(10, 0, 5)
    0.0
    """
    for name, value in (("n", n), ("c", c), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"pass_at_k: {name} must be an int, got {value!r}")
    if n < 1 or k < 1 or c < 0:
        raise ValueError(f"pass_at_k needs n >= 1, k >= 1 and c >= 0, got n={n}, c={c}, k={k}")
    if k > n:
        raise ValueError(f"pass_at_k needs k <= n (at least k samples), got k={k}, n={n}")
    if c > n:
        raise ValueError(f"pass_at_k needs c <= n (correct among the samples), got c={c}, n={n}")
    if n - c < k:  # every k-subset holds a correct sample
        return 1.0
    miss = 1.0  # probability that a random k-subset holds no correct sample
    for i in range(n, n - c, -1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def mean(xs: Sequence[float]) -> float:
    """The exactly rounded mean (`math.fsum`), 0.0 for no values: the one mean of every
    per-episode rate in the evaluation and comparison reports."""
    return math.fsum(xs) / len(xs) if xs else 0.0


def summarize(correct: Mapping[str, Sequence[float]], ks: Sequence[int]) -> dict[str, float]:
    """Summary of per-problem sample scores: `{problem_id: [score of sample j, ...]}`.

    Returns (every value a float):
      - `avg@n`: mean over problems of the problem's mean score;
      - `pass@k` for each `k` in `ks`: mean over problems of `pass_at_k(n_p, c_p, k)`;
      - `var`: mean over problems of the population variance of the problem's scores;
      - `std_of_mean`: standard error of `avg@n` across problems (sample standard
        deviation of the per-problem means over sqrt(#problems); 0 for one problem);
      - `n`: samples per problem (the smallest count, if counts differ);
      - `problems`: number of problems.

    Problems may have different sample counts; each uses its own for pass@k, and every
    `k` must be at most the smallest count.

    >>> m = summarize({"a": [1, 1], "b": [0, 1]}, ks=(1, 2))
    >>> m["avg@n"], m["pass@1"], m["pass@2"], m["var"]
    (0.75, 0.75, 1.0, 0.125)
    """
    if not correct:
        raise ValueError("summarize needs at least one problem")
    ks = list(ks)
    if not ks:
        raise ValueError("summarize needs at least one k")
    counts = {pid: len(scores) for pid, scores in correct.items()}
    empty = [pid for pid, c in counts.items() if c == 0]
    if empty:
        raise ValueError(f"problems without samples: {empty[:5]}")
    n_min = min(counts.values())
    bad = [k for k in ks if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n_min]
    if bad:
        raise ValueError(f"every k must be an int in [1, n] with n = {n_min} samples per problem, got {bad}")

    means, variances = [], []
    passes: dict[int, list[float]] = {k: [] for k in ks}
    for scores in correct.values():
        xs = [float(s) for s in scores]
        if any(not 0.0 <= x <= 1.0 for x in xs):
            raise ValueError(f"scores must be in [0, 1], got {xs}")
        mu = mean(xs)
        means.append(mu)
        variances.append(mean([(x - mu) ** 2 for x in xs]))
        c = sum(is_correct(x) for x in xs)
        for k in ks:
            passes[k].append(pass_at_k(len(xs), c, k))

    p = len(means)
    avg = mean(means)
    if p > 1:
        sample_var = math.fsum((m - avg) ** 2 for m in means) / (p - 1)
        sem = math.sqrt(sample_var / p)
    else:
        sem = 0.0
    out: dict[str, float] = {"avg@n": avg}
    for k in ks:
        out[f"pass@{k}"] = mean(passes[k])
    out.update({"var": mean(variances), "std_of_mean": sem, "n": float(n_min), "problems": float(p)})
    return out


def episode_metrics(records: Sequence[Mapping[str, Any]], problem_ids: Sequence[str], ks: Sequence[int], *,
                    id_key: str = "id", expert_calls: str | None = None, totals: bool = False) -> dict[str, float]:
    """`summarize` of the sampled records' scores, then the behaviour means over the sampled
    records, then `greedy_acc` over the greedy ones (when there are any). Records of other
    problems are left out (a resumed `eapo eval` keeps those of a larger earlier run).

    The two record formats name the problem differently (`id_key`). With `expert_calls`
    (the record's column of calls to count) also the mean `expert_calls` and
    `expert_tokens`, and with `totals` their sums over all records (the evaluation's cost).

    >>> recs = [{"id": "a", "greedy": False, "score": 1.0, "consults": 0, "turns": 1, "policy_tokens": 5,
    ...          "stop_reason": "answer", "well_formed": True}]
    >>> m = episode_metrics(recs, ["a"], (1,))
    >>> m["avg@n"], m["answered"], "greedy_acc" in m
    (1.0, 1.0, False)
    """
    wanted = set(problem_ids)
    mine = [r for r in records if r[id_key] in wanted]
    sampled = [r for r in mine if not r["greedy"]]
    greedy = [r for r in mine if r["greedy"]]
    scores: dict[str, list[float]] = {pid: [] for pid in problem_ids}
    for r in sampled:
        scores[r[id_key]].append(float(r["score"]))
    m = summarize(scores, ks)
    m["consult_attempts"] = mean([r["consults"] for r in sampled])
    m["consult_rate"] = mean([float(r["consults"] > 0) for r in sampled])
    if expert_calls is not None:
        m["expert_calls"] = mean([r[expert_calls] for r in sampled])
        m["expert_tokens"] = mean([r["expert_tokens"] for r in sampled])
    m.update({
        "turns": mean([r["turns"] for r in sampled]),
        "policy_tokens": mean([r["policy_tokens"] for r in sampled]),
        "answered": mean([float(r["stop_reason"] == "answer") for r in sampled]),
        "well_formed": mean([float(r["well_formed"]) for r in sampled]),
    })
    if expert_calls is not None and totals:
        m["expert_calls_total"] = float(sum(r[expert_calls] for r in mine))
        m["expert_tokens_total"] = float(sum(r["expert_tokens"] for r in mine))
    if greedy:
        m["greedy_acc"] = mean([float(r["score"]) for r in greedy])
    return m


def prefixed(metrics: Mapping[str, float], mode: str, several: bool) -> dict[str, float]:
    """`eval/<name>`, or `eval_<mode>/<name>` when one evaluation reports several modes.

    >>> prefixed({"avg@n": 1}, "forbid", True)
    {'eval_forbid/avg@n': 1.0}
    """
    prefix = f"eval_{mode}/" if several else "eval/"
    return {prefix + name: float(value) for name, value in metrics.items()}
