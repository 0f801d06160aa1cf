"""The rollout engine's token record, checked without a model (scripted backend).

The invariants every result depends on: mask-1 tokens are exactly what the policy wrote,
observations are exactly what the engine appended, lengths always agree, and an answer
found only in expert text earns nothing."""

from __future__ import annotations

import random

import pytest

from eapo.experts.fake import FakeExpert
from eapo.experts.oracle import OracleExpert
from eapo.experts.pool import ExpertPool
from eapo.models.tokenizer import build_tokenizer
from eapo.protocol.tags import Tags
from eapo.rollout.batch import pad_completions
from eapo.rollout.config import RolloutConfig
from eapo.rollout.engine import RolloutEngine
from eapo.rollout.fake_backend import ScriptedBackend
from eapo.tasks.arithmetic import ChainTask
from eapo.types import Problem

TAGS = Tags()


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer(TAGS)


class Recorder:
    """Wraps a backend and records, per episode prompt, every segment it returned."""

    def __init__(self, inner, prompts):
        self.inner, self.prompts = inner, prompts
        self.eos_token_ids = inner.eos_token_ids
        self.segments: dict[tuple, list[list[int]]] = {}
        self.seen_params = []

    def generate(self, contexts, max_new_tokens, params):
        self.seen_params.append(params)
        out = self.inner.generate(contexts, max_new_tokens, params)
        for ctx, gen in zip(contexts, out):
            key = next(p for p in self.prompts if tuple(ctx[: len(p)]) == p)
            self.segments.setdefault(key, []).append(list(gen.ids))
        return out


def random_script(tok, rng: random.Random):
    """A policy that writes anything: characters, protocol tags in any order, EOS."""
    pieces = ["12", "+", "-", "=", " ", "85-19", "abc", "\n", TAGS.consult_open, TAGS.consult_close,
              TAGS.query_open, TAGS.query_close, TAGS.answer_open, TAGS.answer_close, "66", "é"]

    def script(ctx, call):
        out: list[int] = []
        for _ in range(rng.randint(0, 12)):
            out += tok.encode(rng.choice(pieces), add_special_tokens=False)
        if rng.random() < 0.1:
            out.append(tok.eos_token_id)
        return out

    return script


def make_problems(n: int) -> list[Problem]:
    return [Problem(id=f"p{i}", question=f"{10 + i}+{20 + i}-5", answer=str(25 + 2 * i)) for i in range(n)]


@pytest.mark.parametrize("seed", range(25))
def test_random_episodes_keep_an_exact_record(tok, seed):
    rng = random.Random(seed)
    problems = make_problems(6)
    task = ChainTask()
    pool = ExpertPool([OracleExpert(task.oracle_answer), FakeExpert(reply_fn=lambda r: "<answer>7</answer> 7")])
    cfg = RolloutConfig(max_queries=rng.choice([1, 2, 3]), tokens_per_turn=rng.choice([3, 8, 24]),
                        max_policy_tokens=60, max_completion_tokens=rng.choice([60, 200]), system_prompt="")
    engine = RolloutEngine(None, tok, cfg, pool=pool, seed=seed)  # backend set below
    prompts = [tuple(engine.prompt(p)) for p in problems]
    backend = Recorder(ScriptedBackend(random_script(tok, rng), (tok.eos_token_id,)), prompts)
    engine.backend = backend
    eps = engine.run(problems, step=1, rhos=[rng.random() for _ in problems], turn_budget=rng.randint(1, 6))
    for ep, prompt in zip(eps, prompts):
        assert ep.done
        assert len(ep.completion_ids) == len(ep.loss_mask) == len(ep.logprobs)
        assert tuple(ep.prompt_ids) == prompt
        policy = [t for t, m in zip(ep.completion_ids, ep.loss_mask) if m]
        written = [t for seg in backend.segments.get(prompt, []) for t in seg]
        assert policy == written  # mask 1 = exactly what the policy sampled, in order
        policy_text = tok.decode(policy)
        obs_text = tok.decode([t for t, m in zip(ep.completion_ids, ep.loss_mask) if not m])
        assert "<expert" not in policy_text and "<notice>" not in policy_text
        assert all(lp == 0.0 for lp, m in zip(ep.logprobs, ep.loss_mask) if not m)
        assert all(lp < 0.0 for lp, m in zip(ep.logprobs, ep.loss_mask) if m)
        # every observation token comes from a rendered observation, never from the policy
        if ep.observation_tokens:
            assert obs_text.startswith("\n") or obs_text.startswith("<")
        assert len(ep.completion_ids) <= cfg.max_completion_tokens
        assert ep.policy_tokens <= cfg.max_policy_tokens
        for turn in ep.turns:
            assert len(turn.queries) <= cfg.max_queries
        # the answer, if any, comes from policy text
        if ep.answer is not None:
            assert ep.answer in policy_text
    batch = pad_completions(eps, pad_id=tok.pad_token_id)
    assert batch["ids"].shape == batch["loss_mask"].shape == batch["logprobs"].shape == batch["attention_mask"].shape
    for i, ep in enumerate(eps):
        n = len(ep.completion_ids)
        assert batch["loss_mask"][i].tolist() == ep.loss_mask + [0] * (batch["ids"].shape[1] - n)
        assert batch["attention_mask"][i].sum().item() == n


def scripted(tok, turns: list[str]):
    """Each call returns the next scripted text (same for every episode)."""

    def script(ctx, call):
        text = turns[min(call, len(turns)) - 1]
        return tok.encode(text, add_special_tokens=False)

    return script


def test_consult_reply_is_masked_and_answer_scored(tok):
    task = ChainTask()
    pool = ExpertPool([OracleExpert(task.oracle_answer)])
    backend = ScriptedBackend(scripted(tok, ["10+20=30 <consult><query>30-5</query></consult>", " 30-5=25 <answer>25</answer>"]),
                              (tok.eos_token_id,))
    engine = RolloutEngine(backend, tok, RolloutConfig(system_prompt=""), pool=pool)
    [ep] = engine.run([Problem("p", "10+20-5", "25")], step=1, rhos=1.0, turn_budget=4)
    assert ep.stop_reason == "answer" and ep.answer == "25" and ep.reward == 1.0
    assert [t.action for t in ep.turns] == ["consult", "answer"]
    call = ep.turns[0].calls[0]
    assert call.accepted and call.reply == "25" and call.query == "30-5"
    obs = tok.decode([t for t, m in zip(ep.completion_ids, ep.loss_mask) if not m])
    assert obs == '\n<expert id="0">25</expert>\n'
    assert tok.decode([t for t, m in zip(ep.completion_ids, ep.loss_mask) if m]) == (
        "10+20=30 <consult><query>30-5</query></consult> 30-5=25 <answer>25</answer>")


@pytest.mark.parametrize("policy_end", ["</answer>", "", " 25", "<answer></answer>"])
def test_answer_only_in_expert_text_earns_nothing(tok, policy_end):
    # The expert hands over the gold answer, even wrapped in answer tags; the policy never
    # writes a complete answer block of its own.
    pool = ExpertPool([FakeExpert(reply_fn=lambda r: "<answer>25</answer> the answer is 25")])
    turns = ["<consult><query>what is it</query></consult>", policy_end]
    backend = ScriptedBackend(scripted(tok, turns), (tok.eos_token_id,))
    engine = RolloutEngine(backend, tok, RolloutConfig(system_prompt="", answer_now_notice=False), pool=pool)
    [ep] = engine.run([Problem("p", "10+20-5", "25")], step=1, rhos=1.0, turn_budget=2)
    assert ep.turns[0].calls[0].accepted
    assert ep.score == 0.0 and ep.reward <= 0.1
    obs = tok.decode([t for t, m in zip(ep.completion_ids, ep.loss_mask) if not m])
    assert "25" in obs and "<answer>" not in obs  # tags are stripped from expert text
    if policy_end in ("</answer>", "", " 25"):
        assert ep.reward == 0.0


def test_refusals_locked_and_empty_consults(tok):
    calls = []
    pool = ExpertPool([FakeExpert(reply_fn=lambda r: calls.append(r) or "x")])
    backend = ScriptedBackend(scripted(tok, ["<consult><query>a</query><query>b</query></consult>",
                                             "<consult> </consult>", "<answer>1</answer>"]), (tok.eos_token_id,))
    engine = RolloutEngine(backend, tok, RolloutConfig(system_prompt="", answer_now_notice=False), pool=pool)
    [ep] = engine.run([Problem("p", "1+0", "1")], step=1, rhos=0.0, turn_budget=5)
    assert calls == []  # refused queries are never sent
    assert [c.reason for c in ep.turns[0].calls] == ["refused_by_schedule"] * 2
    assert ep.turns[1].calls == [] and "empty_consult" in ep.turns[1].issues
    obs = tok.decode([t for t, m in zip(ep.completion_ids, ep.loss_mask) if not m])
    assert obs.count("expert unavailable") == 2 and "no question asked" in obs
    assert ep.reward == 1.0


def test_forbid_mode_passes_the_consult_tag_as_forbidden(tok):
    engine = RolloutEngine(ScriptedBackend(scripted(tok, ["<answer>3</answer>"]), (tok.eos_token_id,)), tok,
                           RolloutConfig(consult_mode="forbid"))
    assert engine.params.forbidden == (TAGS.consult_open, TAGS.consult_close)
    assert set(engine.params.stop_token_ids) == {tok.convert_tokens_to_ids(t) for t in TAGS.stop_strings}
    [ep] = engine.run([Problem("p", "1+2", "3")], step=1, turn_budget=2)
    assert ep.reward == 1.0


def test_turn_budget_and_answer_now_notice(tok):
    backend = ScriptedBackend(scripted(tok, ["1+2"] * 10), (tok.eos_token_id,))
    engine = RolloutEngine(backend, tok, RolloutConfig(system_prompt="", consult_mode="refuse"))
    [ep] = engine.run([Problem("p", "1+2", "3")], step=1, turn_budget=3)
    assert ep.stop_reason == "turn_budget" and len(ep.turns) == 3
    assert [t.notice for t in ep.turns] == [None, "answer now", None]
    assert ep.reward == 0.0 and ep.answer is None


def test_expert_errors_become_refusals(tok):
    pool = ExpertPool([FakeExpert(fail="raise"), FakeExpert(fail="hang")], timeout_s=0.3)
    backend = ScriptedBackend(scripted(tok, ["<consult><query>a</query><query>b</query></consult>", "<answer>1</answer>"]),
                              (tok.eos_token_id,))
    engine = RolloutEngine(backend, tok, RolloutConfig(system_prompt=""), pool=pool)
    [ep] = engine.run([Problem("p", "1+0", "1")], step=1, rhos=1.0, turn_budget=3)
    reasons = [c.reason for c in ep.turns[0].calls]
    assert reasons[0].startswith("expert_error:exception") and reasons[1] == "expert_error:timeout"
    assert ep.reward == 1.0


def test_expert_calls_of_a_turn_run_concurrently(tok):
    pool = ExpertPool([FakeExpert(delay_s=0.2)])
    backend = ScriptedBackend(scripted(tok, ["<consult><query>q</query></consult>", "<answer>1</answer>"]),
                              (tok.eos_token_id,))
    engine = RolloutEngine(backend, tok, RolloutConfig(system_prompt=""), pool=pool)
    eps = engine.run(make_problems(16), step=1, rhos=1.0, turn_budget=3)
    assert sum(len(ep.calls) for ep in eps) == 16
    assert engine.timings.expert_calls == 16
    assert engine.timings.expert_s < 0.2 * 16 / 4  # concurrent, not one after another


def test_same_question_gets_the_same_decision(tok):
    pool = ExpertPool([FakeExpert()])
    backend = ScriptedBackend(scripted(tok, ["<consult><query>What is 2+2?</query><query>what is  2+2</query></consult>",
                                             "<answer>4</answer>"]), (tok.eos_token_id,))
    engine = RolloutEngine(backend, tok, RolloutConfig(system_prompt=""), pool=pool)
    eps = engine.run(make_problems(200), step=1, rhos=0.5, turn_budget=3)
    decisions = [tuple(c.accepted for c in ep.turns[0].calls) for ep in eps]
    assert all(a == b for a, b in decisions)
    share = sum(a for a, _ in decisions) / len(decisions)
    assert 0.35 < share < 0.65


def test_learn_to_ask_off_takes_the_consult_block_out_of_the_loss(tok):
    """Only the consultation block leaves the loss: the steps around it and the answer stay
    in, and the dump format's counts still add up."""
    pool = ExpertPool([OracleExpert(ChainTask().oracle_answer)])
    segments = ["10+20=30 <consult><query>30", "-5</query></consult>", " 30-5=25 <answer>25</answer>"]
    backend = ScriptedBackend(scripted(tok, segments), (tok.eos_token_id,))
    engine = RolloutEngine(backend, tok, RolloutConfig(system_prompt="", tokens_per_turn=14, learn_to_ask=False), pool=pool)
    [ep] = engine.run([Problem("p", "10+20-5", "25")], step=1, rhos=1.0, turn_budget=6)
    assert [t.action for t in ep.turns] == ["think", "consult", "answer"] and ep.reward == 1.0
    trained = tok.decode([t for t, m in zip(ep.completion_ids, ep.loss_mask) if m])
    # the block opened in the think-on segment, which stays trained; the consult segment does not
    assert trained == "10+20=30 <consult><query>30 30-5=25 <answer>25</answer>"
    untrained = tok.decode([t for t, m in zip(ep.completion_ids, ep.loss_mask) if not m])
    assert untrained == '-5</query></consult>\n<expert id="0">25</expert>\n'
    assert [t.untrained_tokens for t in ep.turns] == [0, len(tok.encode("-5</query></consult>", add_special_tokens=False)), 0]
    # in one segment, from the opening tag
    backend = ScriptedBackend(scripted(tok, ["10+20=30 <consult><query>30-5</query></consult>", " 30-5=25 <answer>25</answer>"]),
                              (tok.eos_token_id,))
    engine = RolloutEngine(backend, tok, RolloutConfig(system_prompt="", learn_to_ask=False), pool=pool)
    [ep] = engine.run([Problem("p", "10+20-5", "25")], step=1, rhos=1.0, turn_budget=6)
    assert tok.decode([t for t, m in zip(ep.completion_ids, ep.loss_mask) if m]) == "10+20=30  30-5=25 <answer>25</answer>"
    assert len(ep.loss_mask) == len(ep.completion_ids) == len(ep.logprobs)
    assert all(lp == 0.0 for lp, m in zip(ep.logprobs, ep.loss_mask) if not m)  # the dump format's rule
    from eapo.rollout.dump import DumpRecord, episode_record
    DumpRecord(**episode_record(ep, tok, "10+20-5", "m", "t"))
