"""One training run: EAPO (or self-exploratory RL) on TRL's GRPOTrainer.

`train_run` wires the pieces it is given (the task's problems, the expert pool, both built
from the config by `eapo.assembly`, whose `train_from_config` is the usual way in) with
what it builds itself: the rollout engine
inside `EAPORollout`, EAPO's reward, TRL's `GRPOConfig` with the settings of EAPO.md §4,
callbacks for metrics, checkpoints and validation, then a final expert-free evaluation on
the test split. Everything a run produces goes into its run directory:

    config.yaml        the resolved configuration
    metrics.jsonl      TRL's and our metrics, one line per log event, names grouped by
                       prefix (eapo.reporting.names); validation and test rows too
    val.jsonl          periodic expert-free validation
    tensorboard/, wandb/  when logging.backends asks for them (eapo.training.tracking)
    rollouts/          sampled rollouts in the dump format (docs/dump-format.md)
    checkpoint-N/      TRL's state plus ours (eapo_state.json, EAPO_COMPLETE)
    test.json          final expert-free test metrics; test_records.jsonl per episode
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from eapo.config import dump_yaml, to_dict
from eapo.distributed.collective import env_rank, per_process_batch
from eapo.reporting.names import as_test_metrics
from eapo.experts import ExpertPool
from eapo.moved import forward
from eapo.rollout.engine import RolloutEngine
from eapo.schedules.adaptive import ProblemHistory
from eapo.schedules.budget import eval_turn_budget
from eapo.schedules.step import acceptance_gate
from eapo.training.callbacks import EAPOState, MetricsLogger, PeriodicEval, PoolMetrics, Progress, StopAt
from eapo.training.checkpoints import CheckpointError, last_complete_checkpoint, read_state
from eapo.training.compat import no_activation_checkpointing
from eapo.training.config import TrainConfig
from eapo.training.rollout_func import EAPORollout, eapo_reward
from eapo.training.tracking import SinkContext, open_sinks

log = logging.getLogger(__name__)

# Old names of this module (issue 18 moved the assembly of a run to `eapo.assembly`),
# forwarded for one release.
MOVED = {"build_task": "eapo.assembly.run", "given_policy": "eapo.assembly.run", "with_policy_prompt": "eapo.assembly.run",
         "with_task_settings": "eapo.assembly.run", "build_pool": "eapo.assembly.pool"}
__getattr__ = forward(__name__, MOVED)


@dataclass
class RunResult:
    run_dir: Path
    test: dict[str, float]
    val: list[dict[str, Any]]
    wall_s: float


def grpo_args(cfg: TrainConfig, run_dir: Path) -> Any:
    """TRL's GRPOConfig with EAPO.md §4's settings; CPU-friendly only where there is no GPU."""
    from trl import GRPOConfig

    rl = cfg.rl
    on_gpu = torch.cuda.is_available()
    args: dict[str, Any] = dict(
        output_dir=str(run_dir),
        max_steps=rl.steps,
        per_device_train_batch_size=per_process_batch(rl.prompts_per_step * rl.num_generations),
        gradient_accumulation_steps=1,
        num_generations=rl.num_generations,
        learning_rate=rl.learning_rate,
        lr_scheduler_type="constant",
        warmup_steps=0,
        loss_type=rl.loss_type,
        epsilon=rl.epsilon,
        epsilon_high=rl.epsilon_high,
        beta=rl.beta,
        scale_rewards=rl.scale_rewards,
        num_iterations=rl.num_iterations,
        temperature=cfg.rollout.temperature,
        logging_steps=rl.log_steps,
        save_steps=rl.save_steps,
        save_strategy="steps",
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to="none",
        use_cpu=not on_gpu,
        bf16=on_gpu and torch.cuda.is_bf16_supported(),
        **no_activation_checkpointing(),  # TRL turns it on by default; the name depends on transformers
        remove_unused_columns=False,
        disable_tqdm=False,
        log_completions=False,
        mask_truncated_completions=False,  # our completions end on tags, not EOS: not truncation
        dataloader_num_workers=0,
    )
    args.update(rl.trl)
    return GRPOConfig(**args)


def evaluate_expert_free(cfg: TrainConfig, model: Any, tok: Any, problems: list, scorer: str, *, step: int = 0,
                         backend: Any = None) -> Any:
    """EAPO.md §5 evaluation with the run's settings: consult locked, evaluation turn budget."""
    from eapo.evaluation.evaluate import evaluate_policy

    e = cfg.eval
    return evaluate_policy(model, tok, problems, rollout=cfg.rollout, lock=e.lock, n=e.n, ks=e.k,
                           temperature=e.temperature, greedy=e.greedy, turn_budget=eval_turn_budget(cfg.turn_budget),
                           scorer=scorer, seed=cfg.seed, step=step, backend=backend)


def write_eval(out_dir: Path, name: str, result: Any) -> None:
    """`<name>.json` (metrics) and `<name>_records.jsonl` (one line per episode)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(result.metrics, indent=2))
    with (out_dir / f"{name}_records.jsonl").open("w") as f:
        for rec in result.records:
            f.write(json.dumps(rec) + "\n")


def train_run(
    cfg: TrainConfig,
    run_dir: str | Path,
    *,
    task: Any,
    pool: ExpertPool | None,
    policy_path: str,
    resume: bool = False,
    backend_factory: Callable[[Any, Any], Any] | None = None,
    stop_at_step: int | None = None,
) -> RunResult:
    """Train from `policy_path` (a warm-started policy) on `task`'s problems, consulting
    `pool` (None: self-exploratory RL), and evaluate expert-free on test. `cfg` is taken as
    settled for `task` (`eapo.assembly.run.with_task_settings`); `eapo.assembly.run.
    train_from_config` builds the task and the pool from `cfg` and calls this.

    `backend_factory(model, tokenizer)` replaces the HF generation backend of the rollout.
    `stop_at_step` ends the session early (after checkpointing there), as an interruption
    would; the schedules still follow `rl.steps`, and `resume=True` continues the run."""
    import time

    from datasets import Dataset
    from trl import GRPOTrainer

    from eapo.models.build import load_policy

    t_start = time.time()
    run_dir = Path(run_dir)
    checkpoint = None
    if resume:
        checkpoint = last_complete_checkpoint(run_dir)
        if checkpoint is None:
            raise CheckpointError(f"--resume: no complete checkpoint in {run_dir}")
    elif last_complete_checkpoint(run_dir) is not None:  # half-written ones are simply overwritten
        raise FileExistsError(f"{run_dir} already holds checkpoints: use --resume, or another --out")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        if env_rank() == 0:  # several processes: only the main one writes run files
            (run_dir / "config.yaml").write_text(dump_yaml(cfg))
    except OSError as e:
        raise OSError(f"cannot write to the run directory {run_dir}: {e.strerror or e}") from e

    train_problems = task.split("train")
    val_problems = task.split("val")[: cfg.eval.val_size]
    test_problems = task.split("test")[: cfg.eval.test_size]

    model, tok = load_policy(policy_path)
    eapo = cfg.rl.arm == "eapo"
    rollout_cfg = dataclasses.replace(cfg.rollout, consult_mode=cfg.rollout.consult_mode if eapo else "forbid")
    engine = RolloutEngine(None, tok, rollout_cfg, pool=pool,  # backend bound to the trainer's model per call
                           gate=acceptance_gate(cfg.acceptance, cfg.seed),
                           scorer=task.scorer, reward=cfg.reward, penalty_apply_to=cfg.penalty.apply_to,
                           seed=cfg.seed)
    history = ProblemHistory(cfg.acceptance.adaptive) if (eapo and cfg.acceptance.adaptive is not None) else None
    rollout = EAPORollout(engine, train_problems, acceptance=cfg.acceptance, budget=cfg.turn_budget,
                          penalty=cfg.penalty, total_steps=cfg.rl.steps, history=history,
                          dump_dir=run_dir / "rollouts", dump_every=cfg.rl.dump_rollouts_every,
                          model_path=policy_path, backend_factory=backend_factory)
    if checkpoint is not None:
        state = read_state(checkpoint)
        if history is not None and "history" in state:
            history.load_state_dict(state["history"])
        if pool is not None and "pool" in state:
            pool.load_state_dict(state["pool"])
        log.info("resuming from %s (step %s)", checkpoint, state.get("global_step"))

    def eapo_state() -> dict[str, Any]:
        out: dict[str, Any] = {}
        if history is not None:
            out["history"] = history.state_dict()
        if pool is not None:
            out["pool"] = pool.state_dict()
        return out

    peft_config = None
    if cfg.model.lora:
        from peft import LoraConfig

        m = cfg.model
        peft_config = LoraConfig(r=m.lora_r, lora_alpha=m.lora_alpha, lora_dropout=m.lora_dropout,
                                 target_modules=list(m.lora_target_modules), task_type="CAUSAL_LM")

    def run_eval(step: int) -> dict[str, float]:
        return evaluate_expert_free(cfg, model_ref(), tok, val_problems, task.scorer, step=step).metrics

    dataset = Dataset.from_dict({"prompt": [p.question for p in train_problems]})
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[eapo_reward],
        args=grpo_args(cfg, run_dir),
        train_dataset=dataset,
        processing_class=tok,
        rollout_func=rollout,
        peft_config=peft_config,
    )

    def model_ref():
        return trainer.accelerator.unwrap_model(trainer.model)

    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    # Metric back-ends live in the main process only (the others would write each row twice).
    sinks = open_sinks(cfg.logging.backends, SinkContext(
        run_dir=run_dir, run_name=cfg.logging.run_name or f"{run_dir.resolve().parent.name}/{run_dir.name}",
        project=cfg.logging.project, group=run_dir.resolve().parent.name, config=to_dict(cfg),
        wandb_mode=cfg.logging.wandb_mode)) if trainer.is_world_process_zero() else []
    try:
        metrics_logger = MetricsLogger(sinks)
        trainer.remove_callback(ProgressCallback)
        trainer.remove_callback(PrinterCallback)
        if pool is not None:  # first: it adds the pool's accounting to the row the others show and write
            from eapo.distributed.sync import GatheredPoolStats

            trainer.add_callback(PoolMetrics(GatheredPoolStats(pool)))  # every process's calls, not rank 0's
        trainer.add_callback(Progress(f"{cfg.rl.arm} seed {cfg.seed}"))
        trainer.add_callback(metrics_logger)
        trainer.add_callback(EAPOState(eapo_state))
        trainer.add_callback(PeriodicEval(cfg.eval.every_steps, run_eval, run_dir / "val.jsonl",
                                          publish=metrics_logger.publish))
        if stop_at_step is not None:
            trainer.add_callback(StopAt(stop_at_step))
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        if stop_at_step is not None and trainer.state.global_step < cfg.rl.steps:
            return RunResult(run_dir=run_dir, test={}, val=[], wall_s=time.time() - t_start)

        test = evaluate_expert_free(cfg, model_ref(), tok, test_problems, task.scorer, step=cfg.rl.steps)
        if env_rank() == 0:
            write_eval(run_dir, "test", test)
        metrics_logger.publish(as_test_metrics(test.metrics), cfg.rl.steps)
    finally:
        for sink in sinks:
            sink.close()
    val = [json.loads(x) for x in (run_dir / "val.jsonl").read_text().splitlines()] if (run_dir / "val.jsonl").exists() else []
    trainer.save_model(str(run_dir / "final"))
    return RunResult(run_dir=run_dir, test=test.metrics, val=val, wall_s=time.time() - t_start)
