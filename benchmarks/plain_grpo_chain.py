"""Does plain RL improve the warm-started tiny policy at all? TRL's own GRPO, no EAPO code.

A diagnostic for docs/notebook/2026-11-27-issue4-levers.md (issue 4): TRL's `GRPOTrainer`
with its built-in single-turn generation and a correctness reward on the built-in chain
task, from a given policy (the cached warm start), so that what happens under RL can be told
apart from anything our rollout does. Prints the sampled training accuracy of every step and the mean
of the first and last quarter.

    .venv/bin/python benchmarks/plain_grpo_chain.py --policy ~/.cache/eapo/warmstarts/warmstart-<key> \\
        --lr 1e-4 --steps 60 [--min-len 2 --max-len 3] [--optim adamw_torch]
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", required=True)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--min-len", type=int, default=2)
    ap.add_argument("--max-len", type=int, default=3)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--optim", default="adamw_torch")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from eapo.models.build import load_policy
    from eapo.tasks.arithmetic import ChainTask

    task = ChainTask(min_len=a.min_len, max_len=a.max_len, seed=0)
    problems = task.split("train")[:500]
    gold = {p.question: p.answer for p in problems}
    model, tok = load_policy(a.policy)
    data = Dataset.from_dict({"prompt": [[{"role": "user", "content": p.question}] for p in problems]})
    history: list[float] = []

    def reward(prompts, completions, **_):
        out = []
        for prompt, completion in zip(prompts, completions):
            text = completion[0]["content"] if isinstance(completion, list) else completion
            m = re.search(r"<answer>(.*?)</answer>", text)
            out.append(1.0 if m and m.group(1).strip() == gold[prompt[-1]["content"]] else 0.0)
        history.append(sum(out) / len(out))
        return out

    args = GRPOConfig(
        output_dir=tempfile.mkdtemp(), max_steps=a.steps, per_device_train_batch_size=64, num_generations=8,
        max_completion_length=64, learning_rate=a.lr, lr_scheduler_type="constant", warmup_steps=0,
        optim=a.optim, loss_type="dapo", epsilon_high=0.28, beta=0.0, temperature=a.temperature, report_to="none",
        use_cpu=not torch.cuda.is_available(), bf16=False, activation_checkpointing=False, logging_steps=1,
        save_strategy="no", seed=a.seed, disable_tqdm=True,
    )
    GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=data, processing_class=tok).train()
    q = max(1, len(history) // 4)
    print("sampled training accuracy per step:", " ".join(f"{h:.2f}" for h in history))
    print(f"lr {a.lr} {a.optim}: first quarter {sum(history[:q]) / q:.3f}, last quarter {sum(history[-q:]) / q:.3f}")


if __name__ == "__main__":
    main()
