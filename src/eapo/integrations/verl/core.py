"""The verl-free half of the verl integration: everything that can be tested without verl.

verl (0.9.1) runs multi-turn rollouts as *agent loops*: one coroutine per sample, in
`AgentLoopWorker` actors, each generating through an async `server_manager.generate(
request_id, *, prompt_ids, sampling_params) -> TokenOutput(token_ids, log_probs,
stop_reason)` against vLLM/SGLang servers, and returning an `AgentLoopOutput`
(`prompt_ids`, `response_ids`, `response_mask`, `response_logprobs`, `reward_score`, ...).
Here:

- `VerlEAPOConfig`: what the EAPO agent loop and the consult tool need (protocol, limits,
  schedules, reward, expert endpoints), one YAML file, loaded with `eapo.config`.
- `ServerBackend`: our generation-backend protocol over verl's `server_manager`, so the
  same `RolloutEngine` that runs inside TRL runs inside verl (same masks, parser, gate,
  reward). The engine is synchronous; it runs in a worker thread and each generation is
  handed to the agent loop's event loop (`asyncio.run_coroutine_threadsafe`).
- `schedule_at`/`StepSchedule`: the schedules at verl's step, through the one path TRL
  shares (`eapo.schedules.step`, whose docstring walks rho from the YAML to the draw).
- `inject_step`: verl knows the global step (`trajectory["step"]` in
  `AgentLoopWorker._run_agent_loop`) but passes it neither to agent loops nor to tools;
  `EAPOAgentLoopWorker` calls this to add it (and the sample's copy number) to the
  sample's keyword arguments and to the consult tool's `create_kwargs`.
- `episode_output`: an `Episode` as the fields of verl's `AgentLoopOutput`, with
  `reward_score` computed by the engine from policy tokens only (verl then skips its own
  reward function for the sample).
- `compute_score` (from `tool_reward`, re-exported here, so verl's
  `custom_reward_function.path` may name this file): the reward of the *tool* path (verl's
  stock `tool_agent` loop with `EAPOConsultTool`), which ignores every observation block,
  so an answer only an expert wrote is never credited.
- `ConsultHandler`: the consult tool's logic (gate at the step's rho, ask the pool
  concurrently, render the observation).

Not here: anything importing verl (`agent_loop.py`, `tool.py`).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eapo.experts.pool import ExpertPool
from eapo.integrations.verl.tool_reward import compute_score, strip_observations  # noqa: F401  (re-exported)
from eapo.protocol.prompt import end_ids
from eapo.protocol.render import (
    CONSULT_LOCKED,
    EMPTY_CONSULT,
    render_notice,
    render_observation,
    render_refusal,
    render_reply,
    sanitize_expert_text,
)
from eapo.rewards.reward import RewardConfig
from eapo.rewards.scorers import SCORERS
from eapo.rollout.backend import Generation, SamplingParams, check_limits
from eapo.rollout.config import RolloutConfig
from eapo.rollout.forbid import TextBan, hold
from eapo.schedules.step import Schedules, StepSchedule, acceptance_gate
from eapo.schema.schedules import AcceptanceConfig, PenaltyConfig, TurnBudgetConfig
from eapo.types import Episode, ExpertRequest, Problem

log = logging.getLogger(__name__)

STEP_KEY = "eapo_global_step"
COPY_KEY = "eapo_rollout_n"
VALIDATE_KEY = "eapo_validate"


@dataclass(frozen=True)
class ExpertEndpoint:
    """One expert server (OpenAI-compatible: vLLM, SGLang, a hosted API)."""

    base_url: str
    """e.g. http://expert-0:8000/v1"""
    model: str
    """The served model name, e.g. Qwen/QwQ-32B."""
    options: dict[str, Any] = field(default_factory=dict)
    """Further keyword arguments of `eapo.experts.openai_expert.OpenAIExpert` (max_tokens,
    temperature, api_key_env, timeout_s, max_concurrency, ...)."""


@dataclass(frozen=True)
class VerlEAPOConfig:
    """The EAPO side of a verl run. verl's own config keeps the trainer, the actor, the
    rollout engine and the data; the sampling temperature and top-p are verl's
    (`actor_rollout_ref.rollout.*`), since verl recomputes log-probs at its temperature."""

    rollout: RolloutConfig = field(default_factory=lambda: RolloutConfig(system_prompt=None, tokens_per_turn=2048,
                                                                          max_policy_tokens=8192,
                                                                          max_completion_tokens=12288,
                                                                          max_reply_tokens=1024))
    acceptance: AcceptanceConfig = field(default_factory=AcceptanceConfig)
    turn_budget: TurnBudgetConfig = field(default_factory=TurnBudgetConfig)
    penalty: PenaltyConfig = field(default_factory=PenaltyConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    experts: tuple[ExpertEndpoint, ...] = ()
    """The pool's members, in order (the i-th query of a turn goes to member i mod |pool|)."""
    routing: str = "mod"
    timeout_s: float = 600.0
    """Per expert call, retries included; a slower call counts as unavailable."""
    total_steps: int = 1
    """The run's training steps (verl's total_training_steps): the schedules' horizon."""
    seed: int = 0
    scorer: str = "math"
    eval_lock: str = "refuse"
    """Validation (verl's `validate` batches): refuse (attempts get "unavailable") or forbid."""
    threads: int = 512
    """Episodes one agent-loop worker runs at once (each waits on the server or the experts)."""
    pool_factory: str | None = None
    """Optional "module:function" returning an ExpertPool from this config (tests, custom pools)."""

    def __post_init__(self) -> None:
        if self.total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {self.total_steps}")
        if self.eval_lock not in ("refuse", "forbid"):
            raise ValueError(f"eval_lock must be refuse or forbid, got {self.eval_lock!r}")
        if self.scorer not in SCORERS:
            raise ValueError(f"scorer must be one of {', '.join(SCORERS)}, got {self.scorer!r}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if self.rollout.consult_mode == "open" and not self.experts and self.pool_factory is None:
            raise ValueError("consult_mode 'open' needs experts (endpoints) or a pool_factory")


def load_verl_config(path: str, overrides: Sequence[str] = ()) -> VerlEAPOConfig:
    from eapo.config import load_config

    return load_config(VerlEAPOConfig, path, overrides)


def build_pool(cfg: VerlEAPOConfig) -> ExpertPool | None:
    """The expert pool: `pool_factory(cfg)` if set, else one `OpenAIExpert` per endpoint."""
    if cfg.pool_factory:
        module, _, name = cfg.pool_factory.partition(":")
        return getattr(importlib.import_module(module), name)(cfg)
    if not cfg.experts:
        return None
    from eapo.experts.openai_expert import OpenAIExpert

    members = [OpenAIExpert(e.base_url, e.model, **{"name": f"expert-{i}", **e.options})
               for i, e in enumerate(cfg.experts)]
    return ExpertPool(members, routing=cfg.routing, timeout_s=cfg.timeout_s, seed=cfg.seed)


def schedule_at(cfg: VerlEAPOConfig, step: int, *, validate: bool) -> StepSchedule:
    """The schedules at verl's global step (1-based, as verl counts; its step 0, before the
    first update, counts as 1): `eapo.schedules.step.Schedules`, the path TRL runs too."""
    sched = Schedules(cfg.acceptance, cfg.turn_budget, cfg.penalty, cfg.total_steps)
    return sched.evaluation() if validate else sched.at(max(1, int(step)))


def inject_step(kwargs: dict[str, Any], trajectory: Mapping[str, Any], consult_tools: Sequence[str] = ()) -> dict[str, Any]:
    """Add verl's global step, the sample's copy number and the validate flag to a
    sample's agent-loop kwargs, and to `create_kwargs` of each consult tool.

    >>> out = inject_step({"raw_prompt": []}, {"step": 7, "rollout_n": 2, "validate": False}, ["consult"])
    >>> out["eapo_global_step"], out["tools_kwargs"]["consult"]["create_kwargs"]["eapo_global_step"]
    (7, 7)
    """
    extra = {STEP_KEY: int(trajectory["step"]), COPY_KEY: int(trajectory.get("rollout_n", 0)),
             VALIDATE_KEY: bool(trajectory.get("validate", False))}
    out = {**kwargs, **extra}
    if consult_tools:
        tools_kwargs = {k: dict(v) for k, v in (kwargs.get("tools_kwargs") or {}).items()}
        for name in consult_tools:
            entry = tools_kwargs.setdefault(name, {})
            entry["create_kwargs"] = {**(entry.get("create_kwargs") or {}), **extra}
        out["tools_kwargs"] = tools_kwargs
    return out


def step_of(kwargs: Mapping[str, Any]) -> tuple[int, int, bool]:
    """`(global step, copy number, validate)` of a sample, as `inject_step` left them."""
    if STEP_KEY not in kwargs:
        raise RuntimeError(
            "the EAPO agent loop needs verl's global step, which stock verl does not pass to agent loops: set "
            "actor_rollout_ref.rollout.agent.agent_loop_manager_class="
            "eapo.integrations.verl.agent_loop.EAPOAgentLoopManager")
    return int(kwargs[STEP_KEY]), int(kwargs.get(COPY_KEY, 0)), bool(kwargs.get(VALIDATE_KEY, False))


def problem_of(kwargs: Mapping[str, Any]) -> Problem:
    """The problem of a verl sample (RLHFDataset fields): the last user message of
    `raw_prompt`, `reward_model.ground_truth`, and `extra_info.index` (or a hash) as id."""
    messages = list(kwargs.get("raw_prompt") or [])
    users = [m for m in messages if m.get("role") == "user"]
    if not users:
        raise ValueError("a verl sample for the EAPO agent loop needs a user message in raw_prompt")
    question = users[-1]["content"]
    if not isinstance(question, str):
        raise ValueError("the EAPO agent loop takes text prompts only")
    gold = str((kwargs.get("reward_model") or {}).get("ground_truth", ""))
    extra = kwargs.get("extra_info") or {}
    pid = extra.get("index")
    if pid is None:
        pid = hashlib.blake2b(question.encode(), digest_size=6).hexdigest()
    return Problem(id=str(pid), question=question, answer=gold)


def eos_token_ids(tokenizer: Any, generation_config: Any = None) -> tuple[int, ...]:
    """The ids that end a policy turn: the tokenizer's `eos_token_id` and the generation
    config's (`eos_token_id`, an id or a list), which verl's vLLM/SGLang servers stop on.
    They differ for chat models: Qwen2's tokenizer has eos `<|endoftext|>` (151643) while a
    chat turn ends with `<|im_end|>` (151645), listed only in the generation config.

    >>> from types import SimpleNamespace as NS
    >>> eos_token_ids(NS(eos_token_id=151643), NS(eos_token_id=[151645, 151643]))
    (151643, 151645)
    >>> eos_token_ids(NS(eos_token_id=2), None)
    (2,)
    """
    return end_ids(tokenizer, generation_config)


class ServerBackend:
    """`GenerationBackend` over verl's async `server_manager.generate`, called from a worker
    thread while `loop` (the agent loop's) runs."""

    def __init__(self, server_manager: Any, loop: asyncio.AbstractEventLoop, request_id: str, tokenizer: Any,
                 base_params: Mapping[str, Any], eos_token_ids: Sequence[int],
                 bans: dict[tuple[str, ...], TextBan] | None = None) -> None:
        self.server_manager = server_manager
        self.loop = loop
        self.request_id = request_id  # one per episode: verl keeps a request on one server (prefix cache)
        self.tokenizer = tokenizer
        self.base_params = dict(base_params)
        self.eos_token_ids = tuple(eos_token_ids)
        self.calls = 0
        self._bans = {} if bans is None else bans  # shared by the episodes of one agent loop
        self.global_steps: dict[str, int] = {}
        """`min_global_steps`/`max_global_steps` over this episode's generations: the weight
        versions it was generated across (verl's `LLMServerClient` puts them in each
        `TokenOutput.extra_fields`; verl's staleness control reads them from the agent
        loop's `extra_fields`, as its tool agent loop passes them)."""

    def sampling_params(self, params: SamplingParams, max_tokens: int) -> dict[str, Any]:
        """verl's sampling parameters (temperature, top-p, top-k, logprobs) plus ours."""
        p = dict(self.base_params)
        p.update(max_tokens=int(max_tokens), logprobs=True, skip_special_tokens=False,
                 stop_token_ids=sorted(set(params.stop_token_ids) | set(self.eos_token_ids)))
        if params.stop_strings:
            p.update(stop=list(params.stop_strings), include_stop_str_in_output=True)
        if params.forbidden:
            p["bad_words"] = list(params.forbidden)  # token-level only: `generate` holds the rest
        if params.banned_ids:
            p["logit_bias"] = {int(i): -100.0 for i in params.banned_ids}
        return p

    def generate(self, contexts: list[list[int]], max_new_tokens: list[int], params: SamplingParams) -> list[Generation]:
        check_limits(contexts, max_new_tokens)
        self.calls += 1
        gens = self._generate(contexts, max_new_tokens, params)
        if params.forbidden:  # the server bans words as token sequences; the text lock is ours
            key = tuple(params.forbidden)
            if key not in self._bans:  # built once per episode: token_texts decodes the vocabulary
                self._bans[key] = TextBan(self.tokenizer, key)
            gens = hold(self._generate, self._bans[key], contexts, max_new_tokens, params, gens)
        return gens

    def _generate(self, contexts: list[list[int]], max_new_tokens: list[int], params: SamplingParams) -> list[Generation]:
        futures = [asyncio.run_coroutine_threadsafe(
            self.server_manager.generate(f"{self.request_id}-{i}" if len(contexts) > 1 else self.request_id,
                                         prompt_ids=list(ctx), sampling_params=self.sampling_params(params, limit)),
            self.loop) for i, (ctx, limit) in enumerate(zip(contexts, max_new_tokens))]
        return [self._generation(f.result(), limit, params) for f, limit in zip(futures, max_new_tokens)]

    def _generation(self, out: Any, limit: int, params: SamplingParams) -> Generation:
        extra = getattr(out, "extra_fields", None) or {}
        for key, pick in (("min_global_steps", min), ("max_global_steps", max)):
            if extra.get(key) is not None:
                seen = self.global_steps.get(key)
                self.global_steps[key] = int(extra[key]) if seen is None else pick(seen, int(extra[key]))
        ids = list(out.token_ids)
        if out.log_probs is None or len(out.log_probs) != len(ids):
            raise RuntimeError("the verl server returned no log-probs per token (logprobs=True was asked)")
        logprobs = [float(x) for x in out.log_probs]
        if ids and ids[-1] in self.eos_token_ids:
            finish = "eos"
        elif ids and ids[-1] in params.stop_token_ids:
            finish = "stop"
        elif params.stop_strings and any(s in self.tokenizer.decode(ids, skip_special_tokens=False)
                                         for s in params.stop_strings):
            finish = "stop"
        else:
            finish = "length"  # also an aborted request: the episode goes on or ends by its budget
        if len(ids) > limit:
            ids, logprobs, finish = ids[:limit], logprobs[:limit], "length"
        return Generation(ids=ids, logprobs=logprobs, finish=finish)


def episode_output(ep: Episode, response_length: int) -> dict[str, Any]:
    """The fields of verl's `AgentLoopOutput` for an episode (cut to `response_length`):
    `prompt_ids (P,)`, `response_ids`/`response_mask`/`response_logprobs (T,)` with
    T <= response_length and mask 1 = policy token, `reward_score` a scalar."""
    n = min(len(ep.completion_ids), response_length)
    if n < len(ep.completion_ids):
        log.warning("episode %s has %d completion tokens, verl keeps %d: set rollout.max_completion_tokens "
                    "<= actor_rollout_ref.rollout.response_length", ep.uid, len(ep.completion_ids), n)
    return {
        "prompt_ids": list(ep.prompt_ids),
        "response_ids": ep.completion_ids[:n],
        "response_mask": ep.loss_mask[:n],
        "response_logprobs": ep.logprobs[:n],
        "reward_score": float(ep.reward),
        "num_turns": 1 + sum(2 if t.calls or t.notice else 1 for t in ep.turns),
        "extra_fields": {
            "eapo_score": float(ep.score), "eapo_consults": ep.consults, "eapo_queries": len(ep.calls),
            "eapo_accepted": ep.accepted_calls, "eapo_turns": len(ep.turns),
            "eapo_policy_tokens": ep.policy_tokens, "eapo_stop": ep.stop_reason or "",
        },
    }


# ------------------------------------------------------------------------ the tool path


class ConsultHandler:
    """One consultation for the consult tool: gate each query at the step's rho (keyed on
    the episode and the normalised question), ask the accepted ones at once, render."""

    def __init__(self, cfg: VerlEAPOConfig, pool: ExpertPool | None) -> None:
        if cfg.rollout.consult_style != "block":
            # a tool call carries explicit queries and gets a block back; a bare consultation
            # has neither, so only the agent loop (our engine) can run one
            raise ValueError(f"rollout.consult_style {cfg.rollout.consult_style!r} needs verl's agent loop "
                             "(agent_name eapo_agent); the consult tool handles block consultations only")
        self.cfg = cfg
        self.pool = pool
        self.gate = acceptance_gate(cfg.acceptance, cfg.seed)

    async def consult(self, *, episode_uid: str, problem: str, queries: Sequence[str], asked_before: int, step: int,
                      validate: bool) -> tuple[str, dict[str, float]]:
        tags = self.cfg.rollout.tags
        queries = [q.strip() for q in queries if isinstance(q, str) and q.strip()][: self.cfg.rollout.max_queries]
        if not queries:
            return render_observation([render_notice(EMPTY_CONSULT, tags)]), {"queries": 0.0}
        if validate or self.pool is None:
            return render_observation([render_notice(CONSULT_LOCKED, tags)]), {"queries": float(len(queries))}
        rho = schedule_at(self.cfg, step, validate=False).rho
        decisions = [self.gate.decide(episode_uid, q, asked_before + j, rho)[0] for j, q in enumerate(queries)]
        asked = [j for j, ok in enumerate(decisions) if ok]
        replies: dict[int, Any] = {}
        if asked:
            got = await self.pool.ask_many(
                [ExpertRequest(problem=problem, query=queries[j], key=f"{episode_uid}:{asked_before + j}") for j in asked],
                asked)
            replies = dict(zip(asked, got))
        parts, accepted = [], 0
        for j in range(len(queries)):
            member, reply = replies.get(j, (j % max(1, len(self.pool)), None))
            if reply is not None and reply.ok:
                accepted += 1
                text = sanitize_expert_text(reply.text, tags)
                parts.append(render_reply(member, _cut_chars(text, self.cfg.rollout.max_reply_tokens * 4), tags))
            else:
                parts.append(render_refusal(member, tags))
        return render_observation(parts), {"queries": float(len(queries)), "accepted": float(accepted), "rho": rho}


def _cut_chars(text: str, limit: int) -> str:
    # the tool path has no tokenizer at hand: about 4 characters per token
    return text if len(text) <= limit else text[:limit]


def to_verl_row(record: Mapping[str, Any], *, agent_name: str = "eapo_agent", data_source: str = "eapo",
                split: str = "train") -> dict[str, Any]:
    """A problem (`id`, `question`, `answer`, as in ../shared/data) as a row of verl's
    RLHFDataset: the question as the user message (the EAPO system prompt is added by the
    rollout), the gold as `reward_model.ground_truth`, the id as `extra_info.index` (the
    adaptive schedule and the acceptance coins key on it).

    >>> row = to_verl_row({"id": "dapo-1", "question": "1+1?", "answer": "2"})
    >>> row["prompt"], row["reward_model"]["ground_truth"], row["extra_info"]["index"], row["agent_name"]
    ([{'role': 'user', 'content': '1+1?'}], '2', 'dapo-1', 'eapo_agent')
    """
    return {
        "data_source": str(record.get("data_source", data_source)),
        "prompt": [{"role": "user", "content": str(record["question"])}],
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": str(record["answer"])},
        "extra_info": {"index": str(record["id"]), "split": split},
        "agent_name": agent_name,
    }
