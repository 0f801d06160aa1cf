"""The EAPO agent loop for verl (0.9.1), and the worker/manager that give it the step.

`EAPOAgentLoop` runs one EAPO episode per verl sample with `eapo.rollout.engine.
RolloutEngine`, exactly the engine TRL runs: token ids are the record (no chat-template
re-rendering), expert replies enter as mask-0 tokens, acceptance is the seeded gate keyed on
`s{step}-{problem}-{copy}`, and `reward_score` is EAPO's reward read from the policy's own
tokens, so verl's reward function is not called for these samples. Generation goes through
verl's `server_manager` (its vLLM/SGLang servers, its load balancing, its weight sync).

verl instantiates an agent loop per sample, so what is expensive (config, expert pool with
its HTTP clients, the thread pool the synchronous engine runs in) is built once per worker
process and shared (`eapo.integrations.verl.shared`, keyed by the config path and overrides).

Use (see examples/verl/):
    actor_rollout_ref.rollout.agent.agent_loop_config_path=examples/verl/agent_loop.yaml
    actor_rollout_ref.rollout.agent.agent_loop_manager_class=eapo.integrations.verl.agent_loop.EAPOAgentLoopManager
    data rows with agent_name "eapo_agent"
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from eapo.integrations.verl.core import (
    ServerBackend,
    VerlEAPOConfig,
    eos_token_ids,
    episode_output,
    inject_step,
    problem_of,
    schedule_at,
    step_of,
)
from eapo.integrations.verl.shared import shared_state
from eapo.rollout.engine import RolloutEngine
from eapo.schedules.step import acceptance_gate

log = logging.getLogger(__name__)

_CLASSES = ("EAPOAgentLoop", "EAPOAgentLoopWorker", "EAPOAgentLoopManager")


def __getattr__(name: str) -> Any:
    """The verl subclasses are built on first use, so this module imports (and its docs
    build, and the test collector reads it) without verl installed. verl, hydra and Ray
    find them here by name as usual (`module.EAPOAgentLoop`)."""
    if name in _CLASSES:
        return _verl_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _generation_config(path: str, trust_remote_code: bool) -> Any:
    """The model's generation config as verl's HFModelConfig reads it (None if it has none)."""
    try:
        from verl.utils.fs import copy_to_local
        from verl.utils.model import get_generation_config

        return get_generation_config(copy_to_local(path), trust_remote_code=trust_remote_code)
    except Exception as e:  # a missing or unreadable model folder: the tokenizer's EOS alone
        log.warning("no generation config at %s (%s): episodes end only on the tokenizer's eos_token", path, e)
        return None


def _locked(cfg: VerlEAPOConfig) -> Any:
    import dataclasses

    return dataclasses.replace(cfg.rollout, consult_mode=cfg.eval_lock)


@functools.cache
def _verl_classes() -> dict[str, type]:
    try:
        from verl.experimental.agent_loop.agent_loop import (
            AgentLoopBase,
            AgentLoopManager,
            AgentLoopMetrics,
            AgentLoopOutput,
            AgentLoopWorker,
        )
        from verl.utils.rollout_trace import rollout_trace_op
    except ImportError as e:
        raise ImportError(f"the EAPO agent loop needs verl (pip install 'eapo[verl]'): {e}") from e

    class EAPOAgentLoop(AgentLoopBase):
        # Not `@register`ed: the entry in agent_loop.yaml (agent_loop_config_path) names it
        # and passes `eapo_config`; a bare registration would replace that entry.
        def __init__(self, *args: Any, eapo_config: str, eapo_overrides: list[str] | tuple[str, ...] = (),
                     **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.eapo, self.pool, self.executor = shared_state(str(eapo_config), tuple(eapo_overrides))
            self.response_length = int(self.rollout_config.response_length)
            # verl's servers stop on the generation config's EOS ids (Qwen2: <|im_end|>),
            # which the tokenizer's eos_token need not include
            model = self.config.actor_rollout_ref.get("model") or {}
            path = model.get("hf_config_path") or model.get("path")
            self.eos_token_ids = eos_token_ids(self.tokenizer, _generation_config(
                str(path), bool(model.get("trust_remote_code", False))) if path else None)
            self.bans: dict = {}  # the forbid lock's tables, built once per loop, not per episode

        @rollout_trace_op  # as verl's own loops: traced when rollout.trace has a backend
        async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
            step, copy, validate = step_of(kwargs)
            problem = problem_of(kwargs)
            cfg = self.eapo
            sched = schedule_at(cfg, step, validate=validate)
            rollout = cfg.rollout if not validate else _locked(cfg)
            uid = f"s{step}-{problem.id}-{copy}" + ("-val" if validate else "")
            backend = ServerBackend(self.server_manager, self.loop, uid, self.tokenizer, sampling_params,
                                    self.eos_token_ids, bans=self.bans)
            engine = RolloutEngine(backend, self.tokenizer, rollout,
                                   pool=self.pool if rollout.consult_mode == "open" else None,
                                   gate=acceptance_gate(cfg.acceptance, cfg.seed),
                                   scorer=cfg.scorer, reward=cfg.reward, penalty_apply_to=cfg.penalty.apply_to,
                                   seed=cfg.seed)
            t0 = time.perf_counter()
            [ep] = await self.loop.run_in_executor(self.executor, lambda: engine.run(
                [problem], step=step, uids=[uid], rhos=[sched.rho], turn_budget=sched.turn_budget,
                penalty_coef=sched.penalty_coef))
            fields = episode_output(ep, self.response_length)
            fields["extra_fields"].update(eapo_rho=sched.rho, eapo_step=step, eapo_rollout_s=time.perf_counter() - t0)
            fields["extra_fields"].update(backend.global_steps)  # min/max_global_steps, as verl's loops
            return AgentLoopOutput(**fields, metrics=AgentLoopMetrics(generate_sequences=engine.timings.generation_s,
                                                                      tool_calls=engine.timings.expert_s))

    class EAPOAgentLoopWorker(AgentLoopWorker):
        """verl's worker, passing the global step (and copy number, validate flag) into every
        sample's agent-loop kwargs and into the consult tools' `create_kwargs`."""

        async def _run_agent_loop(self, sampling_params, trajectory, *, agent_name, trace=True, **kwargs):
            from eapo.integrations.verl.tool import EAPOConsultTool

            consult = [t.name for t in self.tools if isinstance(t, EAPOConsultTool)]
            kwargs = inject_step(kwargs, trajectory, consult)
            return await super()._run_agent_loop(sampling_params, trajectory, agent_name=agent_name, trace=trace,
                                                 **kwargs)

    class EAPOAgentLoopManager(AgentLoopManager):
        """verl's agent-loop manager with `EAPOAgentLoopWorker` as its workers."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            import ray

            self.agent_loop_workers_class = ray.remote(EAPOAgentLoopWorker)
            super().__init__(*args, **kwargs)

    classes = {"EAPOAgentLoop": EAPOAgentLoop, "EAPOAgentLoopWorker": EAPOAgentLoopWorker,
               "EAPOAgentLoopManager": EAPOAgentLoopManager}
    for cls in classes.values():  # so pickling (Ray) and hydra find them by module and name
        cls.__module__, cls.__qualname__ = __name__, cls.__name__
    return classes
