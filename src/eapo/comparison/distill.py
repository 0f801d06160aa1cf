"""The expert-distilled baseline: supervised fine-tuning on solutions the expert wrote.

Why it is in the comparison: it is the obvious way to spend an expert budget (EAPO.md §6),
and it uses the expert's words as training targets, which EAPO never does (expert tokens
carry loss mask 0 there). To keep the comparison fair it sees exactly what the RL rows
see: the same training problems in the same order, `rl.prompts_per_step` of them per
update, for `rl.steps` updates at the RL learning rate (LoRA: `LORA_LR_SCALE` times it,
the usual adapter practice), and it is evaluated like them, expert-free, with the
validation curve at `eval.every_steps`.

Expert-written solutions: the built-in task's oracle writes the whole worked solution
(every step and the answer, `ChainTask.solution_text` with no consultation), in exactly the
token layout the policy writes. Other expert kinds would have to generate solutions with
a model; that is not built (a clear error says so).
"""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path
from typing import Any

from eapo.schema import TrainConfig
from eapo.training.compat import no_activation_checkpointing

log = logging.getLogger(__name__)

LORA_LR_SCALE = 10.0


def expert_solutions(cfg: TrainConfig, tokenizer: Any, problems: list) -> tuple[list[dict[str, list[int]]], int]:
    """Pre-tokenized SFT examples (prompt masked) and the expert tokens they hold, one per
    problem, in the order given."""
    from eapo.tasks.arithmetic import ChainTask
    from eapo.training.warmstart import encode_pieces

    if cfg.experts.kind not in ("oracle",) or cfg.experts.noise_p > 0:
        raise ValueError(
            f"the distilled rows need solutions written by the built-in oracle (experts.kind 'oracle', noise_p 0); "
            f"got kind {cfg.experts.kind!r} with noise_p {cfg.experts.noise_p}: generating full solutions with a "
            "model expert is not implemented"
        )
    tags = cfg.rollout.tags
    examples, expert_tokens = [], 0
    for p in problems:
        ids, mask, _ = encode_pieces(tokenizer, p.question, ChainTask.solution_text(p.question, tags=tags))
        examples.append({"input_ids": ids, "completion_mask": mask})
        expert_tokens += sum(mask)
    return examples, expert_tokens


def distill_run(cfg: TrainConfig, run_dir: str | Path, *, policy_path: str, lora: bool) -> dict[str, Any]:
    """Fine-tune `policy_path` on expert solutions and evaluate it expert-free; writes
    `val.jsonl`, `test.json`, `test_records.jsonl` and `distill.json` in `run_dir` and
    returns `{"test", "val", "wall_s", "expert_tokens", "expert_calls"}`."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from eapo.models.build import load_policy
    from eapo.assembly.run import build_task
    from eapo.training.run import evaluate_expert_free, write_eval

    t0 = time.time()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    task = build_task(cfg)
    train = task.split("train")
    val = task.split("val")[: cfg.eval.val_size]
    test = task.split("test")[: cfg.eval.test_size]
    per_step = cfg.rl.prompts_per_step
    # The RL rows draw prompts_per_step problems per update from the shuffled train split;
    # the same count, seeded by the run's seed, cycling if the run outlasts the split.
    rng = random.Random(cfg.seed)
    order: list = []
    while len(order) < cfg.rl.steps * per_step:
        chunk = list(train)
        rng.shuffle(chunk)
        order += chunk
    order = order[: cfg.rl.steps * per_step]

    model, tok = load_policy(policy_path)
    examples, expert_tokens = expert_solutions(cfg, tok, order)
    lr = cfg.rl.learning_rate * (LORA_LR_SCALE if lora else 1.0)
    peft_config = None
    if lora:
        from peft import LoraConfig

        m = cfg.model
        peft_config = LoraConfig(r=m.lora_r, lora_alpha=m.lora_alpha, lora_dropout=m.lora_dropout,
                                 target_modules=list(m.lora_target_modules), task_type="CAUSAL_LM")
    args = SFTConfig(
        output_dir=str(run_dir / "_trainer"), max_steps=cfg.rl.steps, per_device_train_batch_size=per_step,
        learning_rate=lr, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        completion_only_loss=True, max_length=None, packing=False, seed=cfg.seed, data_seed=cfg.seed,
        use_cpu=True, bf16=False, **no_activation_checkpointing(), report_to="none", save_strategy="no",
        logging_steps=max(1, cfg.rl.log_steps), disable_tqdm=True, dataloader_num_workers=0,
        shuffle_dataset=False,
    )
    val_path = run_dir / "val.jsonl"
    val_path.unlink(missing_ok=True)
    every = cfg.eval.every_steps

    class _Val(TrainerCallback):
        def on_step_end(self, a, state, control, model=None, **kw):  # noqa: ANN001 - transformers' signature
            step = state.global_step
            if every and (step % every == 0 or step == state.max_steps):
                res = evaluate_expert_free(cfg, model, tok, val, task.scorer, step=step)
                with val_path.open("a") as f:
                    f.write(json.dumps({"step": step, **res.metrics}) + "\n")

    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(examples), processing_class=tok,
                         peft_config=peft_config, callbacks=[_Val()])
    trainer.train()
    final = trainer.model
    res = evaluate_expert_free(cfg, final, tok, test, task.scorer, step=cfg.rl.steps)
    write_eval(run_dir, "test", res)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    info = {"expert_tokens": expert_tokens, "expert_calls": len(examples), "lr": lr, "lora": lora,
            "examples": len(examples), "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None}
    (run_dir / "distill.json").write_text(json.dumps(info, indent=2))
    import shutil

    shutil.rmtree(run_dir / "_trainer", ignore_errors=True)
    vals = [json.loads(x) for x in val_path.read_text().splitlines()] if val_path.exists() else []
    log.info("distilled (%s): %d updates of %d solutions, loss %s -> %s, test avg@n %.4f", "LoRA" if lora else "full",
             cfg.rl.steps, per_step, info["first_loss"], info["last_loss"], res.metrics.get("eval/avg@n", float("nan")))
    return {"test": res.metrics, "val": vals, "wall_s": time.time() - t0, "expert_tokens": expert_tokens,
            "expert_calls": len(examples)}


__all__ = ["LORA_LR_SCALE", "distill_run", "expert_solutions"]
