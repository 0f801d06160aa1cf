"""From cells to the comparison's verdict: `results.json`, a markdown table, paired gaps.

`results.json` (schema `eapo.compare/1`, documented in docs/COMPARE.md) holds one entry per
row with, for every metric, its per-seed values, their mean and sample standard
deviation; validation curves averaged over seeds; and the paired per-problem difference
between the treatment row (EAPO parallel) and the baseline (self-exploratory RL) on the
shared test problems, which removes problem difficulty from the noise of the gap.
"""

from __future__ import annotations

import math
import platform
import statistics
from collections import defaultdict
from typing import Any

from eapo.comparison.rows import ROWS

SCHEMA = "eapo.compare/1"

# Test metrics read from a cell's `test` (prefix eval/), reported as percentages.
TEST_METRICS = ("avg@n", "greedy_acc", "var")
# Training figures kept per cell (non-percent except rates).
COST_METRICS = ("consult_rate", "acceptance_rate", "zero_var_groups", "expert_calls", "expert_tokens", "wall_s")


def mean_std(values: list[float]) -> dict[str, Any]:
    """`{"values", "mean", "std"}`; NaNs (a figure a cell never had) are kept in `values`
    but left out of the statistics; std is the sample standard deviation (0 for one seed).

    >>> mean_std([1.0, 3.0])
    {'values': [1.0, 3.0], 'mean': 2.0, 'std': 1.4142135623730951}
    """
    ok = [v for v in values if not math.isnan(v)]
    return {"values": values, "mean": statistics.fmean(ok) if ok else math.nan,
            "std": (statistics.stdev(ok) if len(ok) > 1 else 0.0) if ok else math.nan}


def _pass_keys(test: dict[str, float]) -> list[str]:
    ks = sorted(int(k.split("@")[1]) for k in test if k.startswith("eval/pass@"))
    return [f"pass@{k}" for k in ks]


def _curve_mean(cells: list[dict[str, Any]], key: str) -> dict[str, list[float]]:
    """Validation metric `key` by step, mean and std over the cells that reached the step."""
    by_step: dict[int, list[float]] = defaultdict(list)
    for c in cells:
        for v in c.get("val", []):
            if f"eval/{key}" in v:
                by_step[int(v["step"])].append(float(v[f"eval/{key}"]))
    steps = sorted(by_step)
    ms = [mean_std(by_step[s]) for s in steps]
    return {"steps": steps, "mean": [m["mean"] for m in ms], "std": [m["std"] for m in ms]}


def _tokens_at(cell: dict[str, Any], step: int) -> float:
    """Expert tokens spent by `step` (training curve of an RL cell; a distilled cell spends
    its tokens evenly over its updates)."""
    curve = cell.get("train_curve") or []
    if curve:
        before = [c["expert_tokens"] for c in curve if c["step"] <= step]
        return before[-1] if before else 0.0
    steps = max((int(v["step"]) for v in cell.get("val", [])), default=0)
    return float(cell.get("expert_tokens", 0.0)) * (step / steps if steps else 0.0)


def paired_gap(records_a: dict[str, float], records_b: dict[str, float]) -> dict[str, float]:
    """Mean per-problem difference b - a (scores already averaged over samples) and its
    standard error.

    >>> paired_gap({"p1": 0.0, "p2": 0.5}, {"p1": 0.5, "p2": 1.0})
    {'diff': 0.5, 'se': 0.0, 'problems': 2}
    """
    common = [p for p in records_a if p in records_b]
    diffs = [records_b[p] - records_a[p] for p in common]
    if not diffs:
        return {"diff": math.nan, "se": math.nan, "problems": 0}
    se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else math.nan
    return {"diff": statistics.fmean(diffs), "se": se, "problems": len(diffs)}


def aggregate(cells: list[dict[str, Any]], *, rows: list[str], seeds: list[int], config: dict[str, Any],
              per_problem: dict[tuple[str, int], dict[str, float]], command: str = "",
              treatment: str = "eapo", baseline: str = "self_rl",
              diagnostics: dict[tuple[str, int], list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """The results document. `per_problem[(row, seed)]` maps problem id to the mean score
    of its sampled test episodes (for the paired gap); `diagnostics[(row, seed)]` holds the
    phase figures of `eapo.comparison.diagnose` for RL cells (averaged over seeds here)."""
    diagnostics = diagnostics or {}
    by_row: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in cells:
        by_row[c["row"]].append(c)
    out_rows = []
    for name in rows:
        cs = sorted(by_row.get(name, []), key=lambda c: c["seed"])
        if not cs:
            continue
        spec = ROWS.get(name) if name in ROWS else None
        metrics: dict[str, Any] = {}
        test_keys = list(TEST_METRICS) + _pass_keys(cs[0].get("test", {}))
        for key in test_keys:
            metrics[key] = mean_std([float(c.get("test", {}).get(f"eval/{key}", math.nan)) for c in cs])
        for key in COST_METRICS:
            metrics[key] = mean_std([float(c.get(key, math.nan)) for c in cs])
        curves = {"avg@n": _curve_mean(cs, "avg@n"), "greedy_acc": _curve_mean(cs, "greedy_acc")}
        steps = curves["avg@n"]["steps"]
        curves["expert_tokens"] = {"steps": steps, "mean": [
            statistics.fmean(_tokens_at(c, s) for c in cs) for s in steps]}
        train_curve: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for c in cs:
            for point in c.get("train_curve") or []:
                for k in ("expert/consult_rate", "expert/acceptance_rate", "reward/frac_zero_std"):
                    if k in point and point[k] is not None:
                        train_curve[int(point["step"])][k].append(float(point[k]))
        if train_curve:
            tsteps = sorted(train_curve)
            curves["training"] = {"steps": tsteps, **{
                k: [statistics.fmean(train_curve[s][k]) if train_curve[s][k] else math.nan for s in tsteps]
                for k in ("expert/consult_rate", "expert/acceptance_rate", "reward/frac_zero_std")}}
        phases = _mean_phases([diagnostics[(name, c["seed"])] for c in cs if diagnostics.get((name, c["seed"]))])
        out_rows.append({
            "name": name,
            "label": spec.label if spec else name,
            "kind": spec.kind if spec else "?",
            "description": spec.description if spec else "",
            "evaluated_with_experts": bool(spec and spec.with_experts),
            "seeds": [c["seed"] for c in cs],
            "metrics": metrics,
            "curves": curves,
            "diagnostics": phases,
        })
    per_seed = []
    for seed in seeds:
        a, b = per_problem.get((baseline, seed)), per_problem.get((treatment, seed))
        if a and b:
            per_seed.append({"seed": seed, **paired_gap(a, b)})
    gap = mean_std([p["diff"] for p in per_seed])
    return {
        "schema": SCHEMA,
        "command": command,
        "machine": {"platform": platform.platform(), "processor": platform.machine(),
                    "python": platform.python_version()},
        "seeds": seeds,
        "config": config,
        "rows": out_rows,
        "paired": {"treatment": treatment, "baseline": baseline, "per_seed": per_seed,
                   "mean": gap["mean"], "std": gap["std"]},
    }


PHASE_KEYS = ("success", "aided_share", "aided_success", "unaided_success", "consult_rate", "zero_var_groups")


def _mean_phases(per_seed: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Phase figures averaged over seeds (NaN-aware: a seed with no aided episode in a
    phase does not pull its aided success to zero)."""
    out = []
    for name in ("early", "middle", "late"):
        got = [p for phases in per_seed for p in phases if p["phase"] == name]
        if got:
            out.append({"phase": name, **{k: mean_std([float(p[k]) for p in got])["mean"] for k in PHASE_KEYS}})
    return out


def _cell(m: dict[str, Any], scale: float = 100.0, digits: int = 1) -> str:
    if m is None or math.isnan(m.get("mean", math.nan)):
        return "-"
    return f"{scale * m['mean']:.{digits}f} ± {scale * m['std']:.{digits}f}"


def markdown(results: dict[str, Any]) -> str:
    """The paper's table: accuracy first, then what the accuracy cost."""
    if not results["rows"]:
        return "(no finished rows)\n"
    n = results["config"].get("eval", {}).get("n", "n")
    pass_keys = [k for k in results["rows"][0]["metrics"] if k.startswith("pass@")]
    head = ["row", f"avg@{n}", *pass_keys, "greedy", "var", "consult rate (train)", "acceptance (train)",
            "zero-var groups (train)", "expert calls", "expert tokens", "wall s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results["rows"]:
        m = r["metrics"]
        label = r["label"] + (" †" if r["evaluated_with_experts"] else "")
        cells = [label, _cell(m["avg@n"]), *[_cell(m[k]) for k in pass_keys], _cell(m["greedy_acc"]),
                 _cell(m["var"], 100.0, 2), _cell(m["consult_rate"], 1.0, 2), _cell(m["acceptance_rate"], 1.0, 2),
                 _cell(m["zero_var_groups"], 1.0, 2), _cell(m["expert_calls"], 1.0, 0),
                 _cell(m["expert_tokens"], 1.0, 0), _cell(m["wall_s"], 1.0, 0)]
        lines.append("| " + " | ".join(cells) + " |")
    seeds = results["seeds"]
    lines.append("")
    lines.append(f"Mean ± sample standard deviation over {len(seeds)} seed(s) ({', '.join(map(str, seeds))}); "
                 "accuracies in %, expert-free unless marked † (evaluated with the experts, rho = 1; its expert "
                 "calls and tokens are spent at inference, over all test episodes). Expert calls and tokens of "
                 "training rows are totals over training.")
    p = results["paired"]
    if p["per_seed"]:
        lines.append("")
        lines.append(f"Paired per-problem difference {p['treatment']} − {p['baseline']} in avg@{n} (points): "
                     + "; ".join(f"seed {x['seed']}: {100 * x['diff']:+.2f} (SE {100 * x['se']:.2f})"
                                 for x in p["per_seed"])
                     + f"; mean {100 * p['mean']:+.2f} (sd over seeds {100 * p['std']:.2f}).")
    mech = [r for r in results["rows"] if r.get("diagnostics")]
    if mech:
        lines += ["", "Mechanism, from the training rollout dumps (EAPO.md §7), by third of the run, mean over seeds: "
                  "success = sampled training episodes that were correct; aided = at least one expert reply accepted.",
                  "", "| row | phase | success | aided share | aided success | unaided success | consult rate | "
                  "zero-var groups |", "|---|---|---|---|---|---|---|---|"]
        for r in mech:
            for p in r["diagnostics"]:
                lines.append(f"| {r['label']} | {p['phase']} | " + " | ".join(
                    "-" if math.isnan(p[k]) else f"{p[k]:.3f}" for k in PHASE_KEYS) + " |")
    return "\n".join(lines) + "\n"
