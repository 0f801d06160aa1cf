"""Why a row did or did not gain: EAPO's mechanism measured from its rollout dumps.

EAPO.md §7 says what should happen: help turns hopeless groups into mixed ones (fewer
zero-variance groups), accepted replies lead to correct answers more often than going
alone, and as rho_s falls the policy must succeed unaided. Each dumped training step gives
those figures directly: groups are the episodes of one problem at one step; an episode is
"aided" when at least one expert reply was accepted. Phases split the run into equal
thirds of its steps, so early (help open), middle and late (help withdrawn) can be read
side by side.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any


def _episode(rec: dict[str, Any]) -> tuple[int, str, float, float, bool, int]:
    turns = rec.get("turns") or []
    calls = [c for t in turns for c in (t.get("calls") or [])]
    accepted = sum(1 for c in calls if c.get("accepted"))
    return int(rec["step"]), rec["problem_id"], float(rec["reward"]), float(rec["score"]), accepted > 0, len(calls)


def step_figures(run_dir: Path) -> list[dict[str, Any]]:
    """One row per dumped step: episodes, success rate, aided / unaided success rates and
    counts, consult rate, zero-variance share of its groups."""
    by_step: dict[int, list[tuple]] = defaultdict(list)
    for path in sorted((run_dir / "rollouts").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                ep = _episode(json.loads(line))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # a dump cut off mid-line; the rest of the step still counts
            by_step[ep[0]].append(ep)
    rows = []
    for step in sorted(by_step):
        eps = by_step[step]
        groups: dict[str, list[float]] = defaultdict(list)
        for _, pid, reward, *_ in eps:
            groups[pid].append(reward)
        aided = [e for e in eps if e[4]]
        alone = [e for e in eps if not e[4]]
        rows.append({
            "step": step, "episodes": len(eps),
            "success": sum(e[3] >= 1.0 for e in eps) / len(eps),
            "aided": len(aided), "aided_success": _rate(aided),
            "unaided": len(alone), "unaided_success": _rate(alone),
            "consult_rate": sum(e[5] > 0 for e in eps) / len(eps),
            "zero_var_groups": sum(max(g) - min(g) < 1e-9 for g in groups.values()) / len(groups),
        })
    return rows


def _rate(eps: list[tuple]) -> float:
    return sum(e[3] >= 1.0 for e in eps) / len(eps) if eps else math.nan


def phases(rows: list[dict[str, Any]], total_steps: int) -> list[dict[str, Any]]:
    """Pool the step rows into thirds of the run (by step), weighting by episodes."""
    out = []
    for i, name in enumerate(("early", "middle", "late")):
        lo, hi = total_steps * i / 3, total_steps * (i + 1) / 3
        part = [r for r in rows if lo < r["step"] <= hi or (i == 0 and r["step"] <= lo)]
        if not part:
            continue
        eps = sum(r["episodes"] for r in part)
        aided = sum(r["aided"] for r in part)

        def pooled(key: str, weight: str) -> float:
            w = sum(r[weight] for r in part if not math.isnan(r[key]))
            return sum(r[key] * r[weight] for r in part if not math.isnan(r[key])) / w if w else math.nan

        out.append({
            "phase": name, "steps": [r["step"] for r in part], "episodes": eps,
            "success": pooled("success", "episodes"),
            "aided_share": aided / eps if eps else math.nan,
            "aided_success": pooled("aided_success", "aided"),
            "unaided_success": pooled("unaided_success", "unaided"),
            "consult_rate": pooled("consult_rate", "episodes"),
            "zero_var_groups": pooled("zero_var_groups", "episodes"),
        })
    return out
