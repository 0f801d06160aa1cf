"""EAPO as TRL's custom rollout: `EAPORollout(prompts, trainer) -> dict`.

TRL's `GRPOTrainer` keeps what it does well (the clipped token-level loss, optimiser,
accelerate/DeepSpeed, logging); this object replaces its single-turn generation with the
expert-assisted multi-turn rollout. It reads the global step from the trainer, so the
schedules (`rho_s`, `T_s`, `lambda_s`) follow training, also after a resume; it hands TRL
the exact token record, with `env_mask` = our loss mask so expert tokens leave the loss;
and it passes each episode's reward and metrics on as extra fields, which TRL forwards to
`eapo_reward` (the reward function), where they are logged through TRL's `log_metric`
(averaged across processes).

Facts this relies on (TRL 1.16, checked in tests): the rollout function receives each
prompt repeated `num_generations` times and returns one completion per prompt received;
`env_mask` is honoured only when no `tools` are given; `max_completion_length` is not
applied to custom rollouts (our `RolloutConfig` limits apply instead).

Several processes (`accelerate launch`): each process rolls out its contiguous slice of
the global batch and asks the experts only for its own episodes; episode ids, the adaptive
history and the logged metrics are made global through `eapo.distributed.sync` (one small
all-gather before and one after the rollout), so they equal a single-process run of the
same global batch; only the main process writes rollout dumps. With `use_vllm` the
rollout generates through TRL's vLLM engine (`eapo.rollout.vllm_backend`); TRL syncs the
weights before calling us.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from eapo.distributed.collective import Collective, default_collective
from eapo.distributed.generation import LockstepBackend, generation_model, needs_lockstep
from eapo.distributed.sync import gather_step, global_uids, merge_history, step_metrics
from eapo.rollout.backend import GenerationBackend
from eapo.rollout.dump import episode_record, write_jsonl
from eapo.rollout.engine import RolloutEngine
from eapo.rollout.hf_backend import HFBackend
from eapo.schedules.adaptive import ProblemHistory
from eapo.schedules.step import Schedules
from eapo.schema.schedules import AcceptanceConfig, PenaltyConfig, TurnBudgetConfig
from eapo.types import Episode, Problem

log = logging.getLogger(__name__)


class EAPORollout:
    def __init__(
        self,
        engine: RolloutEngine,
        problems: Sequence[Problem],
        *,
        acceptance: AcceptanceConfig,
        budget: TurnBudgetConfig,
        penalty: PenaltyConfig,
        total_steps: int,
        history: ProblemHistory | None = None,
        dump_dir: Path | None = None,
        dump_every: int = 0,
        model_path: str = "",
        backend_factory: Callable[[Any, Any], GenerationBackend] | None = None,
        collective: Collective | None = None,
    ) -> None:
        self.engine = engine
        # Builds the generation backend around the trainer's current model at every call
        # (HF transformers by default; vLLM or a scripted policy plug in here).
        self.backend_factory = backend_factory or HFBackend
        self._factory_given = backend_factory is not None  # a given factory wins over vLLM
        self.by_prompt = {p.question: p for p in problems}
        if len(self.by_prompt) != len(problems):
            raise ValueError("problem texts must be unique: the rollout maps TRL's prompts back to problems by text")
        self.acceptance, self.budget, self.penalty = acceptance, budget, penalty
        self.total_steps = total_steps
        self.history = history
        self.dump_dir, self.dump_every, self.model_path = dump_dir, dump_every, model_path
        # Across training processes; None: the default process group at call time (a
        # single process gets a local one). Tests pass a fake.
        self.collective = collective
        self.last_episodes: list[Episode] = []
        self.__name__ = "eapo_rollout"  # TRL logs the rollout function by name

    @property
    def schedules(self) -> Schedules:
        """The run's schedules, the path verl shares (read from the attributes at each call,
        so a caller that replaces `acceptance` is followed)."""
        return Schedules(self.acceptance, self.budget, self.penalty, self.total_steps)

    def schedule(self, step: int) -> dict[str, float]:
        """The schedules' values at a (1-based) global step (`Schedules.at` as a dict)."""
        sched = self.schedules.at(step)
        return {"rho": sched.rho, "turn_budget": float(sched.turn_budget), "penalty_coef": sched.penalty_coef}

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        """One rollout of this process's `prompts` (B,) at the trainer's step, as TRL's
        fields: `prompt_ids (B, P_i)`, `completion_ids`/`logprobs`/`env_mask (B, T_i)`
        (ragged lists; `env_mask` 1 = policy token), `eapo_reward (B,)`, and the step's
        metrics once per episode."""
        step = int(trainer.state.global_step) + 1
        coll = self.collective or default_collective()
        problems = [self.by_prompt[_prompt_text(p)] for p in prompts]
        # deterministic per (step, problem, copy in the global batch): resumes redraw the
        # same coins, and a group split across processes never reuses a copy number
        uids = global_uids(step, [p.id for p in problems], coll)
        sched = self.schedules.at(step)
        rhos = ([self.history.rate(p.id, sched.rho) for p in problems] if self.history is not None
                else [sched.rho] * len(problems))
        rhos = self.engine.rates(rhos, len(problems))  # all 0 unless consulting is open (self-RL)

        # a closed step with acceptance.closed "forbid" decodes as the forbid lock does
        open_params = self.engine.params
        if self.acceptance.closed == "forbid" and self.history is None and not any(rhos):
            self.engine.params = dataclasses.replace(open_params, forbidden=self.engine.consult_tags())
        t0 = time.perf_counter()
        try:
            with self._backend(trainer, coll) as backend:
                self.engine.backend = backend
                episodes = self.engine.run(problems, step=step, uids=uids, rhos=rhos,
                                           turn_budget=sched.turn_budget, penalty_coef=sched.penalty_coef)
                if isinstance(backend, LockstepBackend):
                    backend.finish(self.engine.params)
        finally:
            self.engine.params = open_params
        wall = time.perf_counter() - t0
        gathered = gather_step(episodes, rhos, {
            "time/rollout_s": wall,
            "time/generation_s": self.engine.timings.generation_s,
            "time/expert_wait_s": self.engine.timings.expert_s,
        }, coll)
        if self.history is not None:
            merge_history(self.history, gathered, step)
        self.last_episodes = episodes
        self._maybe_dump(step, episodes, problems, coll)

        metrics = step_metrics(gathered)
        metrics.update(sched.metrics())
        if self.history is not None:
            metrics.update(self.history.summary())
        return {
            "prompt_ids": [ep.prompt_ids for ep in episodes],
            "completion_ids": [ep.completion_ids for ep in episodes],
            "logprobs": [ep.logprobs for ep in episodes],
            "env_mask": [ep.loss_mask for ep in episodes],
            "eapo_reward": [ep.reward for ep in episodes],
            "eapo_metrics": [metrics] * len(episodes),
        }

    @contextlib.contextmanager
    def _backend(self, trainer: Any, coll: Collective) -> Iterator[GenerationBackend]:
        """The generation backend for this call: TRL's vLLM engine when the trainer uses
        vLLM, else `backend_factory` around the trainer's (unwrapped) model, in lockstep
        across ranks when the model is sharded."""
        if getattr(trainer, "use_vllm", False) and not self._factory_given:
            from eapo.rollout.vllm_backend import VLLMBackend

            yield VLLMBackend.from_trainer(trainer, self.engine.tokenizer)
            return
        with generation_model(trainer) as model:
            backend = self.backend_factory(model, self.engine.tokenizer)
            if needs_lockstep(trainer):
                filler = self.engine.prompt(next(iter(self.by_prompt.values())))
                backend = LockstepBackend(backend, coll, filler)
            yield backend

    def _maybe_dump(self, step: int, episodes: list[Episode], problems: list[Problem], coll: Collective) -> None:
        if not self.dump_dir or not self.dump_every or (step != 1 and step % self.dump_every):
            return
        tok = self.engine.tokenizer
        records = [episode_record(ep, tok, p.question, self.model_path, self.model_path) for ep, p in zip(episodes, problems)]
        everyone = [r for rank_records in coll.all_gather_object(records) for r in rank_records]
        if coll.rank == 0:  # one file with every process's episodes, written once
            write_jsonl(everyone, self.dump_dir / f"rollouts-step{step:06d}.jsonl")


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt and isinstance(prompt[-1], dict):  # conversational
        return str(prompt[-1].get("content", ""))
    raise TypeError(f"unsupported prompt type {type(prompt).__name__}")


def eapo_reward(prompts: list[Any], completions: list[Any], eapo_reward: list[float], eapo_metrics: list[dict] | None = None,
                log_metric: Any = None, **_: Any) -> list[float]:
    """TRL reward function: the reward the rollout already computed from policy tokens.

    The completion text TRL decodes is not used: the answer was parsed from mask-1 tokens
    during the rollout, so an answer inside an expert reply can never be credited here."""
    if log_metric is not None and eapo_metrics:
        for name, value in eapo_metrics[0].items():
            log_metric(name, float(value))
    return [float(r) for r in eapo_reward]
