"""Runs the comparison: every chosen row, for every seed, from one starting policy.

Layout: `OUT/<row>/seed-<s>/` is an ordinary run folder (config, metrics, validation
curve, test records) plus `result.json`, written last. A cell whose `result.json` exists
and whose configuration is unchanged is reused, not redone; an RL cell interrupted after a
checkpoint resumes from it; a cell whose saved configuration differs is refused (rather
than silently mixing two set-ups in one table). Cells are independent, so `jobs > 1`
runs them in separate processes (each with `cores / jobs` torch threads): tiny models are
overhead-bound, so two single-threaded processes beat one two-threaded one.

What one cell records in `result.json`: its test metrics, its validation curve, and what
training cost: expert calls and tokens (summed over training), the mean consult and
acceptance rates, the share of zero-variance groups, and wall time.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import math
import multiprocessing
import os
import shutil
import time
from pathlib import Path
from typing import Any

from eapo.comparison.rows import ROWS, RowSpec, row_config
from eapo.schema import TrainConfig
from eapo.typed_yaml import ConfigError, dump_yaml, from_dict, load_yaml, to_dict

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"
RESULT_FORMAT = 1


def cell_dir(out: Path, row: str, seed: int) -> Path:
    return out / row / f"seed-{seed}"


def _training_costs(run_dir: Path) -> dict[str, Any]:
    """Sums and means over the logged training metrics. Rows of metrics.jsonl are means over
    the `log_steps` window that ends at their step, so a sum weights each by its window."""
    from eapo.reporting.names import canonical_row

    path = run_dir / "metrics.jsonl"
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(canonical_row(json.loads(line)))
            except json.JSONDecodeError:
                continue
    rows = sorted((r for r in rows if "step" in r and "reward/mean" in r), key=lambda r: r["step"])
    prev, calls, tokens, curve = 0, 0.0, 0.0, []
    sums: dict[str, list[float]] = {k: [] for k in ("expert/consult_rate", "expert/acceptance_rate",
                                                   "reward/frac_zero_std", "reward/accuracy")}
    for r in rows:
        step = int(r["step"])
        width = max(0, step - prev)
        calls += _accepted(r) * width
        tokens += _num(r.get("expert/completion_tokens")) * width
        for k in sums:
            if not math.isnan(_num(r.get(k), math.nan)):
                sums[k].append(_num(r[k]))
        curve.append({"step": step, "expert_tokens": tokens, "expert_calls": calls,
                      **{k: r[k] for k in sums if k in r}})
        prev = step
    out = {
        "expert_calls": calls, "expert_tokens": tokens,
        "consult_rate": _avg(sums["expert/consult_rate"]), "acceptance_rate": _avg(sums["expert/acceptance_rate"]),
        "zero_var_groups": _avg(sums["reward/frac_zero_std"]), "train_accuracy": _avg(sums["reward/accuracy"]),
        "train_curve": curve,
    }
    return out


def _num(x: Any, default: float = 0.0) -> float:
    try:
        return default if x is None else float(x)
    except (TypeError, ValueError):
        return default


def _accepted(r: dict[str, Any]) -> float:
    """Expert calls answered in a step: `expert/accepted_calls` when logged, else queries
    times the acceptance rate (what older runs log)."""
    if "expert/accepted_calls" in r:
        return _num(r["expert/accepted_calls"])
    rate = _num(r.get("expert/acceptance_rate"), math.nan)
    return _num(r.get("expert/queries")) * (0.0 if math.isnan(rate) else rate)


def _avg(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def _read_val(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "val.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def _config_matches(run_dir: Path, cfg: TrainConfig) -> bool:
    """Whether a cell folder was run with `cfg`. Compared as configurations, not as text: a
    cell saved before an option existed has no key for it and reads back with its default,
    so upgrading eapo does not disown finished cells; a key this version does not know is a
    mismatch."""
    saved = run_dir / "cell_config.yaml"
    if not saved.exists():
        return True
    try:
        return load_yaml(TrainConfig, saved) == cfg
    except ConfigError:
        return False


def run_cell(cfg: TrainConfig, spec: RowSpec, seed: int, out: Path, policy: str) -> dict[str, Any]:
    """Run (or reuse) one row for one seed; returns its result record."""
    run_dir = cell_dir(out, spec.name, seed)
    row_cfg = row_config(cfg, spec, seed=seed, output_dir=str(run_dir))
    done = run_dir / RESULT_FILE
    if run_dir.exists() and not _config_matches(run_dir, row_cfg):
        raise FileExistsError(
            f"{run_dir} was run with another configuration (see its cell_config.yaml): "
            "use another --out, or delete that folder to redo it"
        )
    if done.exists():
        log.info("%s seed %d: finished before, reusing %s", spec.name, seed, done)
        return json.loads(done.read_text())
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "cell_config.yaml").write_text(dump_yaml(row_cfg))
    t0 = time.time()
    log.info("%s seed %d: starting (%s)", spec.name, seed, spec.kind)
    record: dict[str, Any] = {"format": RESULT_FORMAT, "row": spec.name, "seed": seed, "kind": spec.kind}
    if spec.kind == "eval":
        record.update(_eval_cell(row_cfg, spec, run_dir, policy))
    elif spec.kind == "distill":
        from eapo.comparison.distill import distill_run

        res = distill_run(row_cfg, run_dir, policy_path=policy, lora=spec.lora)
        record.update(test=res["test"], val=res["val"], expert_calls=res["expert_calls"],
                      expert_tokens=res["expert_tokens"])
    else:
        from eapo.assembly.run import train_from_config
        from eapo.training.checkpoints import last_complete_checkpoint

        again = last_complete_checkpoint(run_dir) is not None
        res = train_from_config(row_cfg, run_dir, policy_path=policy, resume=again)
        costs = _training_costs(run_dir)
        record.update(test=res.test, val=_read_val(run_dir), **costs)
        # The trained weights are kept for inspection only when asked; checkpoints are the
        # bulk of a comparison's disk use and a finished cell never resumes.
        for ckpt in run_dir.glob("checkpoint-*"):
            shutil.rmtree(ckpt, ignore_errors=True)
    record["wall_s"] = time.time() - t0
    tmp = done.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(done)  # written last and atomically: its presence means the cell is complete
    log.info("%s seed %d: done in %.0f s, test avg@n %.4f", spec.name, seed, record["wall_s"],
             record.get("test", {}).get("eval/avg@n", math.nan))
    return record


def _eval_cell(cfg: TrainConfig, spec: RowSpec, run_dir: Path, policy: str) -> dict[str, Any]:
    from eapo.rollout.backends import load_backend
    from eapo.assembly.pool import build_pool
    from eapo.assembly.run import build_task, with_task_settings
    from eapo.training.run import evaluate_expert_free, write_eval

    task = build_task(cfg)
    cfg = with_task_settings(cfg, task)
    test = task.split("test")[: cfg.eval.test_size]
    loaded = load_backend(cfg.eval.backend, policy, seed=cfg.seed)
    model, tok = loaded.model, loaded.tokenizer
    if spec.with_experts:
        from eapo.comparison.with_experts import evaluate_with_experts
        from eapo.evaluation.evaluate import EvalResult

        pool = build_pool(cfg, task, policy)
        metrics, records = evaluate_with_experts(cfg, model, tok, test, pool, task.scorer, backend=loaded.backend)
        write_eval(run_dir, "test", EvalResult(metrics=metrics, records=records))
        n_eps = cfg.eval.n * len(test)
        return {"test": metrics, "val": [], "expert_calls": metrics["eval/expert_calls"] * n_eps,
                "expert_tokens": metrics["eval/expert_tokens"] * n_eps, "expert_spent_at": "inference"}
    res = evaluate_expert_free(cfg, model, tok, test, task.scorer, backend=loaded.backend)
    write_eval(run_dir, "test", res)
    return {"test": res.metrics, "val": [], "expert_calls": 0.0, "expert_tokens": 0.0}


def _cell_in_process(cfg_data: dict[str, Any], row: str, seed: int, out: str, policy: str, threads: int,
                     level: int) -> dict[str, Any]:
    """Entry point of a worker process (spawned: no state inherited from the parent)."""
    import torch

    # A worker process runs many cells: the cell is named in the runner's own messages.
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s [%(processName)s] %(name)s: %(message)s")
    torch.set_num_threads(max(1, threads))
    return run_cell(from_dict(TrainConfig, cfg_data), ROWS.get(row), seed, Path(out), policy)


def run_compare(cfg: TrainConfig, out: Path, *, rows: list[str], seeds: list[int], policy: str,
                jobs: int = 1) -> list[dict[str, Any]]:
    """Every (row, seed) cell, reusing finished ones; returns their result records in
    (row, seed) order. `policy` is the common starting point (see `prepare_policy`)."""
    specs = [ROWS.get(r) for r in rows]
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(dump_yaml(cfg))
    cells = [(s, seed) for s in specs for seed in seeds]
    # Cheap cells first (evaluation rows), then by seed so a stopped comparison has whole seeds.
    cells.sort(key=lambda c: (c[0].kind != "eval", c[1]))
    results: dict[tuple[str, int], dict[str, Any]] = {}
    if jobs <= 1:
        for spec, seed in cells:
            results[(spec.name, seed)] = run_cell(cfg, spec, seed, out, policy)
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        data = to_dict(cfg)
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            futures = {pool.submit(_cell_in_process, data, spec.name, seed, str(out), policy, threads,
                                   logging.getLogger().getEffectiveLevel()): (spec.name, seed)
                       for spec, seed in cells}
            for fut in concurrent.futures.as_completed(futures):
                results[futures[fut]] = fut.result()
    return [results[(s.name, seed)] for s in specs for seed in seeds]
