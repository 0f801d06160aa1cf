"""Several seeds of `eapo train` in one table: mean and spread, and paired differences.

Each run directory is one seed of a comparison (`summary.json` plus one folder per arm).
Test metrics are averaged over seeds (mean and sample standard deviation). Because every
arm is evaluated on the same test problems, the difference between two arms is also
computed per problem (mean score over the n samples), which removes the problems'
difficulty from the noise: its standard error is printed per seed and pooled.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from eapo.reporting.names import canonical_row

TEST_KEYS = ("greedy_acc", "avg@n", "pass@1", "pass@2", "pass@4", "consult_attempts")
TRAIN_KEYS = ("expert/consult_rate", "expert/acceptance_rate", "reward/frac_zero_std", "reward/accuracy")


def _mean_sd(xs: list[float]) -> tuple[float, float]:
    xs = [x for x in xs if not math.isnan(x)]  # a metric a run never logged
    if not xs:
        return math.nan, math.nan
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def _per_problem(records_path: Path) -> dict[str, float]:
    scores: dict[str, list[float]] = defaultdict(list)
    for line in records_path.read_text().splitlines():
        rec = json.loads(line)
        if not rec.get("greedy"):
            scores[rec["problem_id"]].append(float(rec["score"]))
    return {pid: statistics.fmean(v) for pid, v in scores.items()}


def _training_means(metrics_path: Path) -> dict[str, float]:
    # Older runs logged TRL's unprefixed names (frac_reward_zero_std): read both.
    rows = [canonical_row(json.loads(x)) for x in metrics_path.read_text().splitlines()] if metrics_path.exists() else []
    out = {}
    for key in TRAIN_KEYS:
        vals = [r[key] for r in rows if key in r]
        out[key] = statistics.fmean(vals) if vals else math.nan
    return out


def summarize(run_dirs: list[Path], *, baseline: str = "self_rl", treatment: str = "eapo") -> dict[str, Any]:
    per_arm: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    paired = []
    for run in run_dirs:
        rows = json.loads((run / "summary.json").read_text())["rows"]
        for arm, row in rows.items():
            test = row["test"]
            for key in TEST_KEYS:
                if f"eval/{key}" in test:
                    per_arm[arm][key].append(float(test[f"eval/{key}"]))
            if arm != "base":
                for key, value in _training_means(run / arm / "metrics.jsonl").items():
                    per_arm[arm][key].append(value)
        a, b = run / baseline / "test_records.jsonl", run / treatment / "test_records.jsonl"
        if a.exists() and b.exists():
            pa, pb = _per_problem(a), _per_problem(b)
            diffs = [pb[p] - pa[p] for p in pa if p in pb]
            se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else math.nan
            paired.append({"run": str(run), "diff": statistics.fmean(diffs), "se": se, "problems": len(diffs)})
    arms = {arm: {k: _mean_sd(v) for k, v in metrics.items()} for arm, metrics in per_arm.items()}
    return {"seeds": len(run_dirs), "arms": arms, "paired": paired, "baseline": baseline, "treatment": treatment}


def markdown(summary: dict[str, Any]) -> str:
    def cell(arm: str, key: str, scale: float = 100.0, digits: int = 1) -> str:
        m, s = summary["arms"].get(arm, {}).get(key, (math.nan, math.nan))
        return "-" if math.isnan(m) else f"{scale * m:.{digits}f} ± {scale * s:.{digits}f}"

    lines = [
        "| policy | greedy | avg@4 | pass@1 | pass@2 | pass@4 | consult attempts (eval) | consult rate (train) "
        "| acceptance (train) | zero-variance groups (train) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    labels = {"base": "base (warm start)", "self_rl": "self-exploratory RL", "eapo": "EAPO"}
    for arm in ("base", "self_rl", "eapo"):
        if arm not in summary["arms"]:
            continue
        lines.append(
            f"| {labels[arm]} | {cell(arm, 'greedy_acc')} | {cell(arm, 'avg@n')} | {cell(arm, 'pass@1')} "
            f"| {cell(arm, 'pass@2')} | {cell(arm, 'pass@4')} | {cell(arm, 'consult_attempts', 1, 3)} "
            f"| {cell(arm, 'expert/consult_rate', 1, 2)} | {cell(arm, 'expert/acceptance_rate', 1, 2)} "
            f"| {cell(arm, 'reward/frac_zero_std', 1, 2)} |"
        )
    if summary["paired"]:
        lines.append("")
        lines.append(f"Paired per-problem difference {summary['treatment']} − {summary['baseline']} in avg@4 "
                     "(points; same test problems):")
        for p in summary["paired"]:
            lines.append(f"- {p['run']}: {100 * p['diff']:+.2f} (SE {100 * p['se']:.2f}, {p['problems']} problems)")
        diffs = [p["diff"] for p in summary["paired"]]
        m, s = _mean_sd(diffs)
        lines.append(f"- mean over seeds: {100 * m:+.2f} (sd over seeds {100 * s:.2f})")
    return "\n".join(lines) + "\n"
