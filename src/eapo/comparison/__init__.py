"""`eapo compare`: the paper's comparison (EAPO.md §6–§7) in miniature, on any task.

rows.py          what each row is (a recipe of config overrides), and the registry of rows
runner.py        runs every (row, seed) cell from one starting policy, reusing finished ones
distill.py       the expert-distilled baseline (supervised, full or LoRA)
with_experts.py  the workflow row evaluated with its experts open (workflow.py: old name)
results.py       results.json, the markdown table, the paired gap
plots.py         the figures, drawn from results.json
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from eapo.comparison.rows import DEFAULT_ROWS, ROWS, RowSpec

__all__ = ["DEFAULT_ROWS", "ROWS", "RowSpec", "compare", "collect"]

log = logging.getLogger(__name__)


def _per_problem(path: Path) -> dict[str, float]:
    scores: dict[str, list[float]] = defaultdict(list)
    if not path.exists():
        return {}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if not rec.get("greedy"):
            scores[rec["problem_id"]].append(float(rec["score"]))
    return {pid: statistics.fmean(v) for pid, v in scores.items()}


def _finite(obj: Any) -> Any:
    """NaN (a figure a row never had) becomes null: results.json stays standard JSON."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def collect(out: Path, cells: list[dict[str, Any]], *, rows: list[str], seeds: list[int], config: dict[str, Any],
            command: str = "") -> dict[str, Any]:
    """Aggregate finished cells into `out/results.json`, `out/results.md` and `out/plots/`."""
    from eapo.comparison.plots import plot_all
    from eapo.comparison.results import aggregate, markdown
    from eapo.comparison.runner import cell_dir

    from eapo.comparison.diagnose import phases, step_figures

    per_problem = {(c["row"], c["seed"]): _per_problem(cell_dir(out, c["row"], c["seed"]) / "test_records.jsonl")
                   for c in cells}
    steps = int(config.get("rl", {}).get("steps", 0) or 0)
    diagnostics = {(c["row"], c["seed"]): phases(step_figures(cell_dir(out, c["row"], c["seed"])), steps)
                   for c in cells if c.get("kind") == "rl"}
    results = aggregate(cells, rows=rows, seeds=seeds, config=config, per_problem=per_problem, command=command,
                        diagnostics=diagnostics)
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(_finite(results), indent=1, allow_nan=False))
    tmp.replace(out / "results.json")
    (out / "results.md").write_text(markdown(results))
    plot_all(results, out / "plots")
    return results


def finished_cells(out: Path, rows: list[str], seeds: list[int]) -> list[dict[str, Any]]:
    """The result records of the cells of `rows` x `seeds` that are complete in `out`."""
    from eapo.comparison.runner import RESULT_FILE, cell_dir

    cells = []
    for row in rows:
        for seed in seeds:
            path = cell_dir(out, row, seed) / RESULT_FILE
            if path.exists():
                cells.append(json.loads(path.read_text()))
            else:
                log.warning("%s seed %d has not finished in %s: left out of the results", row, seed, out)
    return cells


def compare(cfg: Any, out: Path, *, rows: list[str] | tuple[str, ...] = DEFAULT_ROWS, seeds: list[int] = (0, 1, 2),
            model: str | None = None, cache_dir: Path | None = None, jobs: int = 1, command: str = "",
            run: bool = True) -> dict[str, Any]:
    """Run (or reuse) every row for every seed from one starting policy and write the results.
    With `run=False` nothing is trained: the results are written from the cells already
    finished in `out` (to look at a comparison still running, or re-plot an old one)."""
    from eapo.comparison.runner import run_compare
    from eapo.assembly.arms import prepare_policy
    from eapo.typed_yaml import to_dict

    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise KeyError(f"unknown comparison row(s) {unknown}; known: {', '.join(ROWS.names())}")
    if run:
        policy = prepare_policy(cfg, model, cache_dir)
        cells = run_compare(cfg, out, rows=list(rows), seeds=list(seeds), policy=policy, jobs=jobs)
    else:
        cells = finished_cells(out, list(rows), list(seeds))
        if not cells:
            raise FileNotFoundError(f"no finished cells of rows {', '.join(rows)} in {out}: nothing to write "
                                    "(run without --no-run to train them)")
        previous = out / "results.json"
        if previous.exists():  # the command that trained the cells, not this re-plot
            command = json.loads(previous.read_text()).get("command") or command
    return collect(out, cells, rows=list(rows), seeds=list(seeds), config=to_dict(cfg), command=command)
