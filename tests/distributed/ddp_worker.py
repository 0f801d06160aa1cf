"""One EAPO training run for the multi-process tests, run either in-process (the
single-process reference) or under `accelerate launch` (each rank runs this file).

The policy's *generation* is scripted and deterministic per context (consult the whole
question; answer the gold if an expert replied, a wrong number if the reply was refused),
so a run's episodes depend only on the acceptance coins, which are keyed on the global
episode ids. The tiny policy itself is trained by TRL on those tokens. Group members
differ through their coins (constant rho = 0.5), so advantages are not zero.

Writes, under OUT: the run directory (run/), and per rank `calls-rank{r}.json` with the
keys of the expert requests this rank sent.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CONFIG = [
    "rl.steps=2", "rl.prompts_per_step=3", "rl.num_generations=4", "rl.save_steps=100", "rl.log_steps=1",
    "rl.learning_rate=1e-3", "eval.every_steps=0", "eval.val_size=2", "task.val_size=2", "task.test_size=2",
    "task.train_size=12", "eval.n=1", "eval.k=[1]", "rl.dump_rollouts_every=1", "rollout.tokens_per_turn=32",
    "task.min_len=1", "task.max_len=3", "rollout.max_policy_tokens=64", "rollout.max_completion_tokens=128",
    "turn_budget.train=3", "turn_budget.eval=2", "acceptance.kind=constant", "acceptance.value=0.5",
    "experts.replicas=2", "experts.routing=mod",
]


def scripted_policy(model, tok):
    from eapo.rollout.fake_backend import ScriptedBackend
    from eapo.tasks.arithmetic import evaluate_chain

    def script(ctx, call):
        text = tok.decode(ctx)
        question = text.split("user\n")[-1].split("<|im_end|>")[0]
        done = text.split("<|im_start|>assistant\n")[-1]
        if "unavailable" in done:
            reply = " <answer>0</answer>"
        elif "<expert" in done:
            reply = f" <answer>{evaluate_chain(question)}</answer>"
        else:
            reply = f"ok <consult><query>{question}</query><query>{question} </query></consult>"
        return tok.encode(reply, add_special_tokens=False)

    return ScriptedBackend(script, (tok.eos_token_id,))


def main(policy: str, out: Path) -> None:
    from eapo.config import load_config
    from eapo.distributed.collective import env_rank
    from eapo.experts.pool import ExpertPool
    from eapo.training.config import TrainConfig
    from eapo.assembly.run import train_from_config

    keys: list[str] = []
    real = ExpertPool.ask_many_sync

    def counting(self, requests, slots):
        keys.extend(r.key for r in requests)
        return real(self, requests, slots)

    ExpertPool.ask_many_sync = counting
    try:
        cfg = load_config(TrainConfig, None, CONFIG)
        train_from_config(cfg, out / "run", policy_path=policy, backend_factory=scripted_policy)
    finally:
        ExpertPool.ask_many_sync = real
    (out / f"calls-rank{env_rank()}.json").write_text(json.dumps(keys))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
