"""The expert-assisted multi-turn rollout (EAPO.md §1): the piece every result stands on.

A batch of episodes advances turn by turn. Each turn the backend continues every active
episode from its exact token record; the policy's text since the last observation is
parsed into an action; all consultations of the turn, across the whole batch, go to the
expert pool at once; replies (or refusals) are tokenized on their own and appended as ids
with loss mask 0. Nothing is ever re-rendered, so the ids the trainer scores are the ids
that were sampled (EAPO.md §8).

The engine owns no schedule and no model: its caller passes the policy (through the
backend), the global step, each episode's acceptance rate `rho`, the turn budget and the
penalty coefficient, because inside TRL's `GRPOTrainer` those come from the trainer
(`eapo.schedules.step` computes them). It does own whether consulting is open at all
(`consult_open`, `rates`): in any consult mode but "open" every rate is 0.

Shapes (B episodes of a call, ragged lengths as `(B, T_i)`), per `Episode`:
    prompt_ids      (P_i,)  the prompt, rendered once (chat template if the tokenizer has one)
    completion_ids  (T_i,)  every token after the prompt, policy and observation in order
    loss_mask       (T_i,)  1 = sampled by the policy, 0 = observation (expert reply,
                            refusal, notice) or an untrained consult block
    logprobs        (T_i,)  the sampler's log-prob where the mask is 1, 0.0 elsewhere
    score, reward, penalty  scalars: over the batch, rewards `(B,)`
The three completion lists have the same length after every append (`Episode.extend`).

Deliberately not here: how rho is scheduled (`eapo.schedules`), what experts are
(`eapo.experts`), the RL update (`eapo.training`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eapo.experts.pool import ExpertPool
from eapo.models.checks import check_policy
from eapo.protocol.offsets import decode_all, token_at_char
from eapo.protocol.parser import parse_segment
from eapo.protocol.prompt import DEFAULT_SYSTEM_PROMPT, NO_CONSULT_SYSTEM_PROMPT, prompt_ids, system_text
from eapo.protocol.render import (
    ANSWER_NOW,
    EMPTY_CONSULT,
    render_notice,
    render_observation,
    render_refusal,
    render_reply,
    sanitize_expert_text,
)
from eapo.rewards.reward import RewardConfig, composite_reward
from eapo.rewards.scorers import SCORERS
from eapo.rollout.backend import GenerationBackend, SamplingParams
from eapo.rollout.config import RolloutConfig
from eapo.schedules.gate import AcceptanceGate
from eapo.types import ActionKind, Episode, ExpertCall, ExpertRequest, ParsedSegment, Problem, StopReason, TurnRecord

log = logging.getLogger(__name__)


@dataclass
class RolloutTimings:
    generation_s: float = 0.0
    expert_s: float = 0.0
    turns: int = 0
    expert_calls: int = 0


@dataclass
class _State:
    """Per-episode bookkeeping that is not part of the record."""

    problem: Problem
    rho: float
    pending_ids: list[int] = field(default_factory=list)  # policy ids since the last observation
    queries_asked: int = 0
    answer_now_sent: bool = False


def _seed(*parts: Any) -> int:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF


class RolloutEngine:
    def __init__(
        self,
        backend: GenerationBackend,
        tokenizer: Any,
        config: RolloutConfig = RolloutConfig(),
        pool: ExpertPool | None = None,
        gate: AcceptanceGate | None = None,
        scorer: str = "integer",
        reward: RewardConfig = RewardConfig(),
        penalty_apply_to: str = "success",
        seed: int = 0,
    ) -> None:
        if config.consult_mode == "open" and pool is None:
            raise ValueError("consult_mode 'open' needs an expert pool; use 'refuse' or 'forbid' without experts")
        check_policy(tokenizer, tags=config.tags)  # a tag the parser could never read fails here
        self.backend = backend
        self.tokenizer = tokenizer
        self.config = config
        self.pool = pool
        self.gate = gate or AcceptanceGate(seed=seed, granularity="question")
        self.scorer = SCORERS.get(scorer)
        self.reward = reward
        self.penalty_apply_to = penalty_apply_to
        self.seed = seed
        self.timings = RolloutTimings()
        tags = config.tags
        stop_ids, stop_strings = [], []
        stops = tags.stop_strings + ((tags.consult_open,) if config.consult_style == "bare" else ())
        for tag in stops:
            ids = self._encode(tag)
            (stop_ids.append(ids[0]) if len(ids) == 1 else stop_strings.append(tag))
        # Forbidding both ends of the consult block makes a consultation impossible to write,
        # not just hard to open (a stray closing tag would otherwise parse as an attempt).
        forbidden = self.consult_tags() if config.consult_mode == "forbid" else ()
        self.params = SamplingParams(
            temperature=config.temperature,
            top_p=config.top_p,
            stop_token_ids=tuple(stop_ids),
            stop_strings=tuple(stop_strings),
            forbidden=forbidden,
        )
        if config.system_prompt is not None:
            template = config.system_prompt
        else:
            template = NO_CONSULT_SYSTEM_PROMPT if config.consult_mode == "forbid" else DEFAULT_SYSTEM_PROMPT
        self.system = system_text(template, tags, config.max_queries) if template else None

    @property
    def consult_open(self) -> bool:
        """Whether an expert reply can be accepted at all (consult mode "open"). Decided
        here only: drivers pass the scheduled rates and `rates` applies this."""
        return self.config.consult_mode == "open"

    def rates(self, rhos: Sequence[float] | float, n: int) -> list[float]:
        """The acceptance rates `n` episodes are gated with, `(n,)`: `rhos` (one per
        episode, or one for all) while consulting is open, else 0 (self-exploratory RL,
        the evaluation locks)."""
        rho_list = [float(rhos)] * n if isinstance(rhos, (int, float)) else [float(r) for r in rhos]
        if len(rho_list) != n:
            raise ValueError("uids and rhos must have one entry per problem")
        return rho_list if self.consult_open else [0.0] * n

    def consult_tags(self) -> tuple[str, ...]:
        """The strings that forbid consulting when the policy may never write them."""
        tags = self.config.tags
        return (tags.consult_open, tags.consult_close)

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def prompt(self, problem: Problem) -> list[int]:
        """The prompt's token ids, `(P,)`: system text (if any) and the question."""
        return prompt_ids(self.tokenizer, problem.question, self.system)

    # ------------------------------------------------------------------ the episode loop
    def run(
        self,
        problems: Sequence[Problem],
        *,
        step: int,
        uids: Sequence[str] | None = None,
        rhos: Sequence[float] | float = 0.0,
        turn_budget: int = 4,
        penalty_coef: float = 0.0,
    ) -> list[Episode]:
        """Roll out one episode per problem (repeat a problem for a group).

        `problems`: (B,); `uids`: (B,), default `s{step}-e{i}`; `rhos`: (B,) or one for all,
        zeroed unless consulting is open (`rates`); `turn_budget`, `penalty_coef`: one
        for the batch. Returns (B,) episodes in the order of `problems`, each with its
        token record `prompt_ids (P_i,)`, `completion_ids`/`loss_mask`/`logprobs (T_i,)`
        and its `reward` (so `(B,)` rewards, ragged `(B, T_i)` records)."""
        if turn_budget < 1:
            raise ValueError(f"turn_budget must be >= 1, got {turn_budget}")
        n = len(problems)
        uids = list(uids) if uids is not None else [f"s{step}-e{i}" for i in range(n)]
        if len(uids) != n:
            raise ValueError("uids and rhos must have one entry per problem")
        rho_list = self.rates(rhos, n)
        self.timings = RolloutTimings()
        episodes = [
            Episode(uid=u, problem_id=p.id, prompt_ids=self.prompt(p), gold=p.answer, meta={"step": step})
            for p, u in zip(problems, uids)
        ]
        states = [_State(problem=p, rho=r) for p, r in zip(problems, rho_list)]

        turn = 0
        while True:
            active = [i for i, ep in enumerate(episodes) if not ep.done]
            if not active:
                break
            turn += 1
            for i in active:
                if turn_budget - len(episodes[i].turns) == 1 and self.config.answer_now_notice:
                    self._notice_before_last_turn(episodes[i], states[i])
            limits = [self._token_limit(episodes[i]) for i in active]
            for i, limit in zip(active, limits):
                if limit <= 0:
                    episodes[i].stop_reason = StopReason.TOKEN_BUDGET.value
            active = [i for i, limit in zip(active, limits) if limit > 0]
            limits = [limit for limit in limits if limit > 0]
            if not active:
                break
            t0 = time.perf_counter()
            params = dataclasses.replace(self.params, seed=_seed(self.seed, step, turn, uids[active[0]]))
            gens = self.backend.generate(
                [episodes[i].prompt_ids + episodes[i].completion_ids for i in active], limits, params
            )
            self.timings.generation_s += time.perf_counter() - t0
            self.timings.turns += 1

            consults: list[tuple[int, ParsedSegment, TurnRecord]] = []
            for i, gen in zip(active, gens):
                ep, st = episodes[i], states[i]
                ep.extend(gen.ids, policy=True, logprobs=gen.logprobs)
                st.pending_ids.extend(gen.ids)
                text = self.tokenizer.decode(st.pending_ids, skip_special_tokens=True)
                # a length stop is mid-thought: a \boxed{} there is not yet the answer
                parsed = parse_segment(text, self.config.tags, self.config.max_queries, final=gen.finish != "length")
                if self.config.consult_style == "bare" and parsed.kind is not ActionKind.ANSWER:
                    parsed = self._bare_consult(ep, text, parsed)
                rec = TurnRecord(index=len(ep.turns), action=parsed.kind.value, policy_tokens=len(gen.ids),
                                 issues=list(parsed.issues))
                ep.turns.append(rec)
                if parsed.kind is ActionKind.ANSWER:
                    ep.answer, ep.well_formed = parsed.answer, parsed.well_formed and parsed.answer is not None
                    ep.stop_reason = StopReason.ANSWER.value
                elif parsed.kind is ActionKind.CONSULT:
                    rec.queries, rec.dropped_queries = list(parsed.queries), parsed.dropped_queries
                    if not self.config.learn_to_ask:
                        rec.untrained_tokens = self._untrain_consult_block(ep, len(gen.ids))
                    if len(ep.turns) >= turn_budget:
                        ep.stop_reason = StopReason.TURN_BUDGET.value  # no turn left to read a reply
                    else:
                        consults.append((i, parsed, rec))
                elif gen.finish == "eos":
                    rec.action = "eos"
                    ep.stop_reason = StopReason.EOS.value
                else:
                    if gen.finish == "length":
                        rec.action = ActionKind.THINK.value
                    if len(ep.turns) >= turn_budget:
                        ep.stop_reason = StopReason.TURN_BUDGET.value
                    elif self._token_limit(ep) <= 0:
                        ep.stop_reason = StopReason.TOKEN_BUDGET.value
            if consults:
                self._expert_phase(episodes, states, consults)

        for ep in episodes:
            result = self.scorer(ep.answer, ep.gold or "")
            ep.score = result.score
            ep.reward, ep.penalty = composite_reward(result.score, ep.well_formed, ep.consults, penalty_coef,
                                                     self.penalty_apply_to, self.reward)
            ep.meta["score_reason"] = result.reason
        return episodes

    def _bare_consult(self, ep: Episode, text: str, parsed: ParsedSegment) -> ParsedSegment:
        """A segment ending in the bare consult tag is a consultation whose one question is
        implicit: the policy's own text so far (its last 32 characters key the acceptance
        draw, so asking again at the same place gets the same decision)."""
        if not text.rstrip().endswith(self.config.tags.consult_open):
            return parsed
        own = self.tokenizer.decode([t for t, m in zip(ep.completion_ids, ep.loss_mask) if m], skip_special_tokens=True)
        return ParsedSegment(kind=ActionKind.CONSULT, queries=(own[-32:] or "(start)",))

    def _untrain_consult_block(self, ep: Episode, segment: int) -> int:
        """Loss mask 0 from the consult opening tag (or the segment's start, if it opened in
        an earlier segment) to the end of this segment; their log-probs become 0.0 too, as
        on observations (the dump format's rule for mask 0). Returns how many.

        The tag is found in the decoded segment, not as the ids of `encode(tag)`: with a
        real BPE its edges merge with neighbours (` <`, `.<`), so those ids may never occur.
        The token holding the tag's first character is the first one untrained."""
        ids, start = ep.completion_ids, len(ep.completion_ids) - segment
        at = decode_all(self.tokenizer, ids[start:]).rfind(self.config.tags.consult_open)
        j = start + token_at_char(self.tokenizer, ids[start:], at) if at >= 0 else start
        ep.loss_mask[j:] = [0] * (len(ids) - j)
        ep.logprobs[j:] = [0.0] * (len(ids) - j)
        return len(ids) - j

    def _token_limit(self, ep: Episode) -> int:
        c = self.config
        return min(c.tokens_per_turn, c.max_policy_tokens - ep.policy_tokens, c.max_completion_tokens - len(ep.completion_ids))

    def _observe(self, ep: Episode, st: _State, text: str) -> int:
        """Append an observation as its own token ids (mask 0); returns how many."""
        ids = self._encode(text)
        room = self.config.max_completion_tokens - len(ep.completion_ids)
        if len(ids) >= room:
            ids = ids[: max(room, 0)]
            ep.stop_reason = StopReason.TOKEN_BUDGET.value
        ep.extend(ids, policy=False)
        st.pending_ids.clear()
        return len(ids)

    def _notice_before_last_turn(self, ep: Episode, st: _State) -> None:
        if st.answer_now_sent or not ep.turns:
            return
        st.answer_now_sent = True
        n = self._observe(ep, st, render_observation([render_notice(ANSWER_NOW, self.config.tags)]))
        ep.turns[-1].notice = ANSWER_NOW
        ep.turns[-1].observation_tokens += n

    # ------------------------------------------------------------------ experts
    def _expert_phase(self, episodes: list[Episode], states: list[_State], consults) -> None:
        """Decide acceptance, ask every accepted query of the turn at once, append replies."""
        tags, open_ = self.config.tags, self.consult_open
        n_members = len(self.pool) if self.pool is not None else 1
        requests: list[ExpertRequest] = []
        slots: list[int] = []
        where: list[ExpertCall] = []
        for i, parsed, rec in consults:
            ep, st = episodes[i], states[i]
            for j, q in enumerate(parsed.queries):
                accepted, u = self.gate.decide(ep.uid, q, st.queries_asked, st.rho)
                st.queries_asked += 1
                member = j % n_members
                call = ExpertCall(query=q, member=member, expert="", accepted=accepted,
                                  reason="accepted" if accepted else ("refused_by_schedule" if open_ else "locked"),
                                  rho=st.rho, draw=u, reply="")
                rec.calls.append(call)
                if accepted:
                    transcript = (self.tokenizer.decode(ep.completion_ids, skip_special_tokens=True)
                                  if self.config.expert_sees_transcript else None)
                    requests.append(ExpertRequest(problem=st.problem.question, query=q, key=f"{ep.uid}:{st.queries_asked - 1}",
                                                  transcript=transcript, problem_id=st.problem.id, gold=st.problem.answer))
                    slots.append(j)
                    where.append(call)
        if requests:
            t0 = time.perf_counter()
            replies = self.pool.ask_many_sync(requests, slots)
            self.timings.expert_s += time.perf_counter() - t0
            self.timings.expert_calls += len(requests)
            for call, (member, reply) in zip(where, replies):
                call.member, call.expert, call.latency_s = member, reply.expert, reply.latency_s
                call.prompt_tokens, call.completion_tokens = reply.prompt_tokens, reply.completion_tokens
                if reply.ok:
                    call.reply = self._cut_reply(sanitize_expert_text(reply.text, tags))
                else:
                    call.accepted, call.reason = False, f"expert_error:{reply.error}"
        for i, parsed, rec in consults:
            ep, st = episodes[i], states[i]
            if not rec.calls:
                parts = [render_notice(EMPTY_CONSULT, tags)]
            elif self.config.consult_style == "bare" and rec.calls[0].accepted:
                rec.observation_tokens += self._observe(ep, st, rec.calls[0].reply.strip())
                continue
            elif self.config.consult_style == "bare" and self.config.bare_refusal == "silent":
                st.pending_ids.clear()  # nothing is appended: the policy goes on after its own tag
                continue
            else:
                parts = [render_reply(c.member, c.reply, tags) if c.accepted else render_refusal(c.member, tags)
                         for c in rec.calls]
            rec.observation_tokens += self._observe(ep, st, render_observation(parts))

    def _cut_reply(self, text: str) -> str:
        ids = self._encode(text)
        if len(ids) <= self.config.max_reply_tokens:
            return text
        return self.tokenizer.decode(ids[: self.config.max_reply_tokens], skip_special_tokens=True)
