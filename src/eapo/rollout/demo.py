"""A rollout of a policy with experts on the built-in task, dumped to JSON Lines.

What `eapo rollout` runs: it exercises the whole engine (tiny models built locally, the
expert pool, acceptance, masks, reward) without training, and writes records anyone can
decode with the model folder named in them.

The protocol's system text opens every prompt of a given policy (`policy`), as `eapo eval`
does: a real chat template without a system turn falls back to its own default (Qwen2's
"You are a helpful assistant"), which says nothing about consulting or answering. The
tiny built-in policy was warm-started without system text, so it gets none by default.
`system_prompt` True/False overrides both."""

from __future__ import annotations

from pathlib import Path

from eapo.experts import ExpertPool, HFModelExpert, NoisyExpert, OracleExpert
from eapo.models.build import ensure_tiny_models
from eapo.rollout.config import ROLLOUT_EXPERTS
from eapo.rollout.backends import load_backend
from eapo.rollout.dump import episode_record, write_jsonl
from eapo.rollout.engine import RolloutEngine
from eapo.rollout.metrics import rollout_metrics
from eapo.schema import RolloutConfig
from eapo.tasks.arithmetic import ChainTask



def run_rollout_demo(*, out: Path, n: int, expert: str, policy: str | None, rho: float, k: int, turns: int,
                     temperature: float, seed: int, cache_dir: Path | None,
                     system_prompt: bool | None = None, backend: str = "hf") -> dict[str, float]:
    if expert not in ROLLOUT_EXPERTS:
        raise ValueError(f"unknown expert {expert!r}; valid: {', '.join(ROLLOUT_EXPERTS)}")
    task = ChainTask(min_len=1, max_len=3, seed=seed)
    # the tiny models are built only when used (a given policy with the oracle needs none)
    paths = ensure_tiny_models(cache_dir) if policy is None or expert == "model" else {}
    policy_path = policy or str(paths["policy"])
    loaded = load_backend(backend, policy_path, seed=seed)
    tok = loaded.tokenizer
    oracle = OracleExpert(task.oracle_answer)
    members = {
        "oracle": lambda: [oracle],
        "noisy-oracle": lambda: [NoisyExpert(oracle, p=0.3, seed=seed)],
        "model": lambda: [HFModelExpert(str(paths["expert"]), name="tiny-expert")],
    }
    with_system = system_prompt if system_prompt is not None else policy is not None
    config = RolloutConfig(max_queries=k, temperature=temperature, system_prompt=None if with_system else "")
    engine = RolloutEngine(loaded.backend, tok, config,
                           pool=ExpertPool(members[expert](), seed=seed), scorer=task.scorer, seed=seed)
    problems = task.split("test")
    batch = [problems[i % len(problems)] for i in range(n)]
    episodes = engine.run(batch, step=1, rhos=rho, turn_budget=turns)
    records = [episode_record(ep, tok, p.question, policy_path, policy_path) for ep, p in zip(episodes, batch)]
    write_jsonl(records, out)
    metrics = rollout_metrics(episodes)
    metrics["time/generation_s"] = engine.timings.generation_s
    metrics["time/expert_s"] = engine.timings.expert_s
    return metrics
