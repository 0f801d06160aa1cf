"""Arms from one warm start: the embedded default of `eapo train`.

Self-exploratory RL and EAPO start from the same warm-started policy, with the same seed,
the same problems in the same order and the same number of policy updates; the warm start
itself is evaluated as the "base" row. All are evaluated expert-free on the test split.
Each arm is an ordinary run directory under `OUT/<arm>/`, so a finished arm is reused and
an interrupted one resumes.

Moved here from `eapo.training.compare` (issue 18: its name collided with the package
`eapo.comparison`, which is `eapo compare`); the old path forwards here for one release.
Several processes under `accelerate launch`: `eapo.assembly.arms_distributed`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eapo.assembly.run import build_task, given_policy, train_from_config
from eapo.schema import TrainConfig

log = logging.getLogger(__name__)

ARM_LABELS = {"base": "base", "self_rl": "self-RL", "eapo": "EAPO"}  # base: the warm start, no RL


def prepare_policy(cfg: TrainConfig, model: str | None, cache_dir: Path | None) -> str:
    """The policy RL starts from: `model` (or `model.policy`) as given, or the tiny policy
    after its warm start (`given_policy` says when a task refuses that)."""
    model = given_policy(cfg, model)
    if model:
        return model
    from eapo.models.build import default_cache_dir, ensure_tiny_models
    from eapo.training.warmstart import warm_start

    tiny = ensure_tiny_models(cache_dir)["policy"]
    if cfg.warmstart.steps == 0:
        return str(tiny)
    _check_demonstrations_match(cfg)
    # The RL task is passed so that its validation and test questions never appear in the
    # warm-start data (which draws its own chains of warmstart.min_len..max_len).
    return str(warm_start(tiny, (cache_dir or default_cache_dir()) / "warmstarts", build_task(cfg), cfg.warmstart))


def _check_demonstrations_match(cfg: TrainConfig) -> None:
    """A warm start teaches one consultation layout; RL in another would start the policy
    on text it has never seen (a bare tag where it learned blocks), and it would look like
    EAPO failing rather than a setting mismatch. Only checked when the warm start is built
    here: a `--model` may have been warm-started any way."""
    from eapo.typed_yaml import ConfigError

    ws, ro = cfg.warmstart, cfg.rollout
    if ws.consult_style != ro.consult_style:
        raise ConfigError(
            f"warmstart.consult_style is {ws.consult_style!r} but rollout.consult_style is {ro.consult_style!r}: "
            "the warm start would teach another consultation layout than RL uses; set both the same")
    if ro.consult_style == "bare" and ws.bare_refusal != ro.bare_refusal:
        raise ConfigError(
            f"warmstart.bare_refusal is {ws.bare_refusal!r} but rollout.bare_refusal is {ro.bare_refusal!r}: "
            "set both the same")


def evaluate_base(cfg: TrainConfig, policy: str, out: Path) -> dict[str, float]:
    """Expert-free test metrics of the starting policy (cached in `out/base/test.json`)."""
    path = out / "base" / "test.json"
    if path.exists():
        return json.loads(path.read_text())
    from eapo.models.build import load_policy
    from eapo.training.run import evaluate_expert_free, write_eval

    task = build_task(cfg)
    model, tok = load_policy(policy)
    res = evaluate_expert_free(cfg, model, tok, task.split("test")[: cfg.eval.test_size], task.scorer)
    write_eval(out / "base", "test", res)
    return res.metrics


def run_arm(cfg: TrainConfig, out: Path, arm: str, policy: str, *,
            barrier: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Train one arm into `out/<arm>` (or reuse it) and return its row. `barrier` is called
    before each decision taken from the files, so that several processes decide alike."""
    from eapo.training.checkpoints import last_complete_checkpoint

    arm_cfg = dataclasses.replace(cfg, rl=dataclasses.replace(cfg.rl, arm=arm), output_dir=str(out / arm))
    run_dir = out / arm
    done = run_dir / "test.json"
    barrier()
    if done.exists():
        log.info("arm %s already finished in %s: reusing it", arm, run_dir)
        return {"test": json.loads(done.read_text()), "wall_s": float("nan")}
    # An arm with a complete checkpoint continues from it; one that never reached a
    # checkpoint (or never started) trains from the beginning, with or without --resume.
    again = last_complete_checkpoint(run_dir) is not None
    barrier()
    result = train_from_config(arm_cfg, run_dir, policy_path=policy, resume=again)
    return {"test": result.test, "wall_s": result.wall_s}


def run_arms(cfg: TrainConfig, out: Path, *, arms: tuple[str, ...] = ("self_rl", "eapo"), model: str | None = None,
             cache_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    from eapo.typed_yaml import dump_yaml

    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(dump_yaml(cfg))
    policy = prepare_policy(cfg, model, cache_dir)
    rows: dict[str, dict[str, Any]] = {"base": {"test": evaluate_base(cfg, policy, out), "wall_s": 0.0}}
    for arm in arms:
        rows[arm] = run_arm(cfg, out, arm, policy)
    (out / "summary.json").write_text(json.dumps({"policy": policy, "rows": rows}, indent=2))
    return rows


def table_rows(rows: dict[str, dict[str, Any]], ks: tuple[int, ...]) -> list[list[str]]:
    """Rows of the printed table: arm, greedy accuracy, avg@n, pass@k..., consult attempts."""
    out = []
    for arm, row in rows.items():
        t = row["test"]
        pre = "eval/" if "eval/avg@n" in t else "eval_forbid/"
        cells = [ARM_LABELS.get(arm, arm), _pct(t.get(pre + "greedy_acc")), _pct(t.get(pre + "avg@n"))]
        cells += [_pct(t.get(f"{pre}pass@{k}")) for k in ks]
        cells += [f"{t.get(pre + 'consult_attempts', 0.0):.2f}", f"{row.get('wall_s', 0.0):.0f}"]
        out.append(cells)
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"
