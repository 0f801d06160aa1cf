"""The whole rollout pipeline over every real tokenizer: prompt, generation, parser, expert
replies, token record and mask, reward, dump.

Each test runs the real HF generation stack (`HFBackend` over a random-init model of the
real architecture, transformers' stop strings) with the text forced by `Scripted`, so
what the policy writes, and its real BPE tokenization (`.<`, `></` merged across tag
edges), is the test's choice. Not here: the forbid lock (being replaced by a text-level
lock; its own tests come with it), vLLM.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from eapo.experts import ExpertPool, OracleExpert
from eapo.protocol.prompt import DEFAULT_SYSTEM_PROMPT, system_text, turn_end_ids
from eapo.protocol.tags import Tags
from eapo.rollout.config import RolloutConfig
from eapo.rollout.dump import episode_record, validate_file, write_jsonl
from eapo.rollout.engine import RolloutEngine
from eapo.rollout.hf_backend import HFBackend
from eapo.types import Problem

from conftest import Scripted

PROBLEM = Problem(id="p1", question="What is 2+3?", answer="5")
ASK = "Let me ask.<consult><query>What is 2+3?</query></consult> and then more"
ANSWER = " So it is<answer>5</answer> trailing"
REPLY = "It is 5."


def enc(tok, text: str) -> list[int]:
    return tok.encode(text, add_special_tokens=False)


def cut_at(tok, ids: list[int], stop: str) -> list[int]:
    """The ids up to the token that completes `stop` in the decoded text (what a backend
    that stops on the string must return)."""
    return next(ids[:j] for j in range(1, len(ids) + 1) if stop in tok.decode(ids[:j]))


def engine_for(model, tok, reply: str = REPLY, **config) -> RolloutEngine:
    pool = ExpertPool([OracleExpert(lambda request: reply)], seed=0)
    return RolloutEngine(HFBackend(model, tok), tok, RolloutConfig(**config), pool=pool, seed=0)


def end_id(tok) -> int:
    """What a chat policy ends its turn with: the template's turn end, else eos."""
    return (turn_end_ids(tok) or (tok.eos_token_id,))[0]


def test_prompt_carries_the_protocol_system_text(real):
    name, _, model, tok = real
    engine = engine_for(model, tok)
    text = tok.decode(engine.prompt(PROBLEM))
    assert system_text(DEFAULT_SYSTEM_PROMPT, Tags(), 3) in text, text
    assert "You are a helpful assistant" not in text  # no template default in place of the protocol
    assert PROBLEM.question in text
    system = system_text(DEFAULT_SYSTEM_PROMPT, Tags(), 3)
    if name == "qwen2":  # the model's own template renders it, system turn and all
        messages = [{"role": "system", "content": system}, {"role": "user", "content": PROBLEM.question}]
    elif name == "phi-3":  # its template has no system turn: the text opens the user's message
        messages = [{"role": "user", "content": f"{system}\n\n{PROBLEM.question}"}]
    else:  # no template: the documented fallback, with the tokenizer's own special tokens
        assert not tok.chat_template
        assert engine.prompt(PROBLEM) == tok.encode(f"{system}\n\n{PROBLEM.question}\n")
        return
    rendered = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert engine.prompt(PROBLEM) == enc(tok, rendered)


def test_backend_stops_on_the_chat_turn_end_and_counts_it_as_eos(real):
    name, _, model, tok = real
    backend = HFBackend(model, tok)
    assert tok.eos_token_id in backend.eos_token_ids
    expected = {"qwen2": 151645, "phi-3": 32007}  # <|im_end|>, <|end|>: not the tokenizer's eos
    if name in expected:
        assert expected[name] in backend.eos_token_ids and expected[name] != tok.eos_token_id
    engine = engine_for(model, tok)
    body = enc(tok, "Nothing to add.")
    with Scripted(model, [[body + [end_id(tok)] + enc(tok, " more")]], eos=tok.eos_token_id):
        [ep] = engine.run([PROBLEM], step=1, turn_budget=2)
    assert ep.completion_ids == body + [end_id(tok)]
    assert ep.stop_reason == "eos" and ep.loss_mask == [1] * len(ep.completion_ids)


def test_pad_equal_to_eos_keeps_real_eos_and_masks(real):
    """TRL #4974's trap: with pad == eos, a row that ends early on eos keeps that eos (with
    its log-prob), and the other row of the batch is unaffected by the padding."""
    _, _, model, tok = real
    backend = HFBackend(model, tok)
    assert backend.pad_token_id == tok.eos_token_id  # every one of these pads with eos
    short, long = enc(tok, "Hi") + [tok.eos_token_id], enc(tok, "A longer row of text here")
    params = engine_for(model, tok).params
    ctx = [enc(tok, "Question one?"), enc(tok, "Another, longer question two?")]
    with Scripted(model, [[short], [long]], eos=tok.eos_token_id):
        a, b = backend.generate(ctx, [len(long), len(long)], params)
    assert a.ids == short and a.finish == "eos" and len(a.logprobs) == len(short)
    assert b.ids == long and b.finish == "length"
    assert all(lp == pytest.approx(0.0, abs=1e-3) for lp in a.logprobs + b.logprobs)


def test_consult_reply_answer_record_and_mask_are_exact(real, tmp_path):
    name, path, model, tok = real
    engine = engine_for(model, tok, max_queries=2)
    ask, answer = enc(tok, ASK), enc(tok, ANSWER)
    with Scripted(model, [[ask, answer]], eos=tok.eos_token_id):
        [ep] = engine.run([PROBLEM], step=1, rhos=1.0, turn_budget=3)

    # generation stopped where each multi-token closing tag ends, whatever it merged with
    turn1, turn2 = cut_at(tok, ask, "</consult>"), cut_at(tok, answer, "</answer>")
    assert len(turn1) < len(ask) and len(turn2) < len(answer)
    assert [t.action for t in ep.turns] == ["consult", "answer"]
    assert ep.turns[0].queries == ["What is 2+3?"]  # the parser read the query through the BPE
    [call] = ep.turns[0].calls
    assert call.accepted and call.reply == REPLY

    # the record is the sampled ids and the reply's own ids, nothing re-rendered
    obs = ep.completion_ids[len(turn1): len(ep.completion_ids) - len(turn2)]
    assert ep.completion_ids == turn1 + obs + turn2
    assert ep.loss_mask == [1] * len(turn1) + [0] * len(obs) + [1] * len(turn2)
    assert REPLY in tok.decode(obs) and obs == enc(tok, tok.decode(obs, skip_special_tokens=False))
    assert all(lp == 0.0 for lp, m in zip(ep.logprobs, ep.loss_mask) if not m)
    policy = [t for t, m in zip(ep.completion_ids, ep.loss_mask) if m]
    assert tok.decode(policy) == tok.decode(turn1 + turn2)
    assert ep.answer == "5" and ep.score == 1.0 and ep.reward == 1.0

    # the dump carries it all, validates, and `eapo validate-dump` accepts it
    rec = episode_record(ep, tok, PROBLEM.question, str(path), str(path))
    assert rec["policy_text"] == tok.decode(policy, skip_special_tokens=False)
    out = write_jsonl([rec], tmp_path / "dump.jsonl")
    assert validate_file(out) == 1
    from typer.testing import CliRunner

    from eapo.cli.main import app

    res = CliRunner().invoke(app, ["validate-dump", str(out)])
    assert res.exit_code == 0, res.output
    back = json.loads(out.read_text())
    assert back["completion_ids"] == ep.completion_ids and back["loss_mask"] == ep.loss_mask


def test_an_answer_only_in_the_expert_reply_scores_zero(real):
    _, _, model, tok = real
    engine = engine_for(model, tok, reply="<answer>5</answer> The answer is 5")
    ask, thanks = enc(tok, ASK), enc(tok, " Thanks.") + [end_id(tok)]
    with Scripted(model, [[ask, thanks]], eos=tok.eos_token_id):
        [ep] = engine.run([PROBLEM], step=1, rhos=1.0, turn_budget=3)
    assert ep.turns[0].calls[0].accepted
    obs = tok.decode([t for t, m in zip(ep.completion_ids, ep.loss_mask) if not m])
    assert "5" in obs  # the expert did say it ...
    assert ep.answer is None and ep.score == 0.0 and ep.reward == 0.0  # ... the policy never did
    assert ep.stop_reason == "eos"


def test_untrained_consult_block_starts_at_the_tag_even_when_it_merged(real):
    """learn_to_ask False: the mask turns 0 at the token holding the consult tag's `<`,
    found in the text; with Qwen2 `.<` is one token, so `encode("<consult>")` is not in
    the ids at all (the old search fell back to the segment's start)."""
    name, _, model, tok = real
    engine = engine_for(model, tok, learn_to_ask=False)
    ask = enc(tok, ASK)
    tag = enc(tok, "<consult>")
    if name == "qwen2":
        assert not any(ask[i:i + len(tag)] == tag for i in range(len(ask)))
    with Scripted(model, [[ask, enc(tok, ANSWER)]], eos=tok.eos_token_id):
        [ep] = engine.run([PROBLEM], step=1, rhos=1.0, turn_budget=3)
    turn1 = cut_at(tok, ask, "</consult>")
    untrained = ep.turns[0].untrained_tokens
    assert 0 < untrained < len(turn1)
    kept = tok.decode(turn1[: len(turn1) - untrained])
    assert "Let me ask"[: len(kept.strip())] == kept.strip() and "<" not in kept
    assert "<" in tok.decode(turn1[len(turn1) - untrained:][:1])  # the first untrained token holds the tag's start
    assert ep.loss_mask[: len(turn1)] == [1] * (len(turn1) - untrained) + [0] * untrained


def test_batch_of_episodes_each_exact(real):
    """Several episodes in one batch (left padding with eos) come out identical to one."""
    _, _, model, tok = real
    ask, answer = enc(tok, ASK), enc(tok, ANSWER)
    problems = [PROBLEM, dataclasses.replace(PROBLEM, id="p2", question="What is 2+3? Think.")]
    engine = engine_for(model, tok)
    with Scripted(model, [[ask, answer]], eos=tok.eos_token_id):
        eps = engine.run(problems, step=1, rhos=1.0, turn_budget=3)
    for ep in eps:
        assert ep.answer == "5" and ep.loss_mask.count(0) > 0
        assert [t for t, m in zip(ep.completion_ids, ep.loss_mask) if m] == (
            cut_at(tok, ask, "</consult>") + cut_at(tok, answer, "</answer>"))
