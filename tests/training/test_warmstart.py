"""Warm start: examples in the engine's exact token layout, TRL's labels honour the mask,
the result folder is atomic, cached and loadable."""

from __future__ import annotations

import dataclasses
import json

import pytest

from eapo.experts.oracle import OracleExpert
from eapo.experts.pool import ExpertPool
from eapo.models.build import TinyModelSpec, build_tiny_model, load_policy
from eapo.models.tokenizer import build_tokenizer
from eapo.protocol.render import render_observation, render_refusal
from eapo.protocol.tags import Tags
from eapo.rollout.config import RolloutConfig
from eapo.rollout.engine import RolloutEngine
from eapo.rollout.fake_backend import ScriptedBackend
from eapo.tasks.arithmetic import ChainTask, evaluate_chain
from eapo.training import warmstart as ws
from eapo.training.config import WarmStartConfig
from eapo.training.warmstart import build_examples, encode_pieces, warm_start
from eapo.types import Problem

TAGS = Tags()
SMALL = TinyModelSpec(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                      intermediate_size=64, max_position_embeddings=512)
TASK = ChainTask(min_len=2, max_len=3, sizes=(("train", 20), ("val", 10), ("test", 10)))


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer(TAGS)


def turns_of(pieces):
    """The policy's segments between observations, as the engine would sample them."""
    turns, cur = [], ""
    for text, is_policy in pieces:
        if is_policy:
            cur += text
        else:
            turns.append(cur)
            cur = ""
    return turns + [cur]


@pytest.mark.parametrize("question, consult, refused", [
    ("47+38-19+66", frozenset(), frozenset()),
    ("47+38-19+66", frozenset({1}), frozenset()),
    ("47+38-19+66", frozenset({0, 2}), frozenset({0, 2})),
    ("12+30", frozenset({0}), frozenset({0})),
])
def test_engine_completion_equals_warm_start_example(tok, question, consult, refused):
    task = ChainTask()
    pieces = ChainTask.solution_text(question, consult, refused_steps=refused, tags=TAGS)
    ids, mask, prompt_len = encode_pieces(tok, question, pieces)
    turns = turns_of(pieces)
    backend = ScriptedBackend(lambda ctx, call: tok.encode(turns[call - 1], add_special_tokens=False),
                              (tok.eos_token_id,))
    engine = RolloutEngine(backend, tok, RolloutConfig(system_prompt="", max_queries=1, tokens_per_turn=200),
                           pool=ExpertPool([OracleExpert(task.oracle_answer)]))
    # rho 1 accepts every consultation, rho 0 refuses every one
    rho = 0.0 if refused else 1.0
    [ep] = engine.run([Problem("p", question, str(evaluate_chain(question)))], step=1, rhos=rho,
                      turn_budget=len(turns) + 2)
    assert ep.stop_reason == "answer" and ep.score == 1.0
    assert ep.prompt_ids == ids[:prompt_len]
    assert ep.completion_ids == ids[prompt_len:]
    assert ep.loss_mask == mask[prompt_len:]
    assert len(ep.turns) == len(turns)


def test_refused_step_is_rendered_as_the_engine_does():
    pieces = ChainTask.solution_text("47+38-19", frozenset({0, 1}), refused_steps=frozenset({1}))
    obs = [t for t, p in pieces if not p]
    assert obs == ['\n<expert id="0">85</expert>\n', render_observation([render_refusal(0, TAGS)])]
    policy = "".join(t for t, p in pieces if p)
    assert policy == ("<consult><query>47+38</query></consult>47+38=85 <consult><query>85-19</query></consult>"
                      "85-19=66 <answer>66</answer>")
    with pytest.raises(ValueError, match="subset"):
        ChainTask.solution_text("47+38", frozenset(), refused_steps=frozenset({0}))


def test_examples_are_deterministic_mix_all_lengths_and_avoid_held_out(tok):
    cfg = WarmStartConfig(min_len=1, max_len=4, consult_prob=0.5, refusal_prob=0.5, seed=3)
    a = build_examples(tok, TASK, cfg, 200)
    assert a == build_examples(tok, TASK, cfg, 200)
    assert a != build_examples(tok, TASK, dataclasses.replace(cfg, seed=4), 200)
    held = {p.question for s in ("val", "test") for p in TASK.split(s)}
    texts = [tok.decode(e["input_ids"]) for e in a]
    questions = [t.split("user\n")[1].split("<|im_end|>")[0] for t in texts]
    assert not held & set(questions)
    assert {len(ChainTask.solution_text(q)) - 1 for q in questions} == {1, 2, 3, 4}
    for e, text in zip(a, texts):
        assert len(e["input_ids"]) == len(e["completion_mask"])
        obs = tok.decode([t for t, m in zip(e["input_ids"], e["completion_mask"]) if not m])
        assert "<expert" not in tok.decode([t for t, m in zip(e["input_ids"], e["completion_mask"]) if m])
        assert obs.count("<expert") == text.count("<expert")
    assert any("expert unavailable" in t for t in texts) and any('">' in t and "unavailable" not in t for t in texts)


def test_trl_labels_follow_the_mask_with_zeros_in_the_middle(tok, tmp_path):
    model_dir = build_tiny_model(tmp_path / "m", SMALL)
    model, tokenizer = load_policy(model_dir)
    cfg = WarmStartConfig(steps=1, batch_size=2, consult_prob=1.0, refusal_prob=0.5)
    examples = build_examples(tokenizer, TASK, cfg, 4)
    trainer = ws.make_trainer(model, tokenizer, examples, cfg, tmp_path / "out")
    for ex, row in zip(examples, trainer.train_dataset):
        want = [t if m else -100 for t, m in zip(ex["input_ids"], ex["completion_mask"])]
        assert row["labels"] == want
        inner = ex["completion_mask"][ex["completion_mask"].index(1):]
        assert 0 in inner  # observation tokens between policy tokens are masked
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    assert batch["labels"].shape == batch["input_ids"].shape


def test_warm_start_is_cached_atomic_and_loadable(tmp_path, monkeypatch):
    model_dir = build_tiny_model(tmp_path / "m", SMALL)
    cfg = WarmStartConfig(steps=2, batch_size=4)
    out = warm_start(model_dir, tmp_path / "ws", TASK, cfg)
    marker = json.loads((out / ws.MARKER_FILE).read_text())
    assert marker["key"] == out.name.removeprefix("warmstart-") and marker["cfg"]["steps"] == 2
    assert [p.name for p in (tmp_path / "ws").iterdir()] == [out.name]  # no temp folders left
    assert not (out / "_trainer").exists()
    model, tokenizer = load_policy(out)
    assert tokenizer.encode("<consult>", add_special_tokens=False) == [tokenizer.convert_tokens_to_ids("<consult>")]

    def boom(*a, **k):
        raise AssertionError("a cached warm start must not train again")

    monkeypatch.setattr(ws, "_train", boom)
    assert warm_start(model_dir, tmp_path / "ws", TASK, cfg) == out
    with pytest.raises(AssertionError, match="cached"):  # another config is another folder
        warm_start(model_dir, tmp_path / "ws", TASK, dataclasses.replace(cfg, seed=1))
    assert [p.name for p in (tmp_path / "ws").iterdir()] == [out.name]  # the failed build left nothing


def test_config_validation():
    with pytest.raises(ValueError, match="min_len"):
        WarmStartConfig(min_len=3, max_len=2)
    with pytest.raises(ValueError, match="consult_prob"):
        WarmStartConfig(consult_prob=1.5)


def test_prefix_query_asks_the_question_so_far_and_replays_through_the_engine(tok):
    question = "47+38-19+66"
    pieces = ChainTask.solution_text(question, frozenset({1, 2}), tags=TAGS, query="prefix")
    policy = "".join(t for t, p in pieces if p)
    assert policy == ("47+38=85 <consult><query>47+38-19</query></consult>85-19=66 "
                      "<consult><query>47+38-19+66</query></consult>66+66=132 <answer>132</answer>")
    ids, mask, prompt_len = encode_pieces(tok, question, pieces)
    turns = turns_of(pieces)
    backend = ScriptedBackend(lambda ctx, call: tok.encode(turns[call - 1], add_special_tokens=False),
                              (tok.eos_token_id,))
    engine = RolloutEngine(backend, tok, RolloutConfig(system_prompt="", max_queries=1, tokens_per_turn=200),
                           pool=ExpertPool([OracleExpert(ChainTask().oracle_answer)]))
    [ep] = engine.run([Problem("p", question, "132")], step=1, rhos=1.0, turn_budget=len(turns) + 2)
    assert ep.score == 1.0 and ep.completion_ids == ids[prompt_len:] and ep.loss_mask == mask[prompt_len:]


def test_a_slip_is_shown_untrained_and_an_accepted_prefix_reply_repairs_the_chain():
    # step 0 slipped to 90 (true 85): step 1 goes on from it; the prefix reply at step 2
    # brings back the true running value 66+66=132, and the answer is right
    pieces = ChainTask.solution_text("47+38-19+66", frozenset({2}), tags=TAGS, query="prefix", slips={0: 90})
    assert pieces[0] == ("47+38=90", False)
    assert pieces[1] == (" 90-19=71", True)
    assert pieces[2] == (" <consult><query>47+38-19+66</query></consult>", True)
    assert pieces[3] == ('\n<expert id="0">132</expert>\n', False)
    assert pieces[4] == ("71+66=132", True)  # the reply's value, after the policy's own running value
    assert pieces[-1] == (" <answer>132</answer>", True)
    # a refused consultation cannot repair it: the chain stays off and so does the answer
    refused = ChainTask.solution_text("47+38-19+66", frozenset({2}), refused_steps=frozenset({2}), tags=TAGS,
                                      query="prefix", slips={0: 90})
    assert refused[-1] == (" <answer>137</answer>", True)
    # a step query is answered literally, so it carries the slip on
    step = ChainTask.solution_text("47+38-19+66", frozenset({2}), tags=TAGS, slips={0: 90})
    assert step[2][0].endswith("<query>71+66</query></consult>") and step[-1] == (" <answer>137</answer>", True)
    with pytest.raises(ValueError, match="consulted"):
        ChainTask.solution_text("47+38-19", frozenset({0}), query="prefix", slips={0: 3})
    with pytest.raises(ValueError, match="query"):
        ChainTask.solution_text("47+38-19", query="whole")


def test_slipped_demonstrations_always_end_right(tok):
    """Slips are drawn only before an accepted consultation, so every demonstration still
    teaches a correct answer, and slipped steps are never trained on."""
    cfg = WarmStartConfig(min_len=2, max_len=6, consult_prob=0.3, refusal_prob=0.3, seed=5, query="prefix", slip_prob=1.0)
    import random
    rng = random.Random(0)
    slipped = 0
    for _ in range(300):
        q, gold = ChainTask(min_len=2, max_len=6)._problem(rng)
        pieces = ws.sample_pieces(q, rng, cfg, TAGS)
        assert pieces[-1] == (f" {TAGS.answer_open}{gold}{TAGS.answer_close}", True)
        bad = [t for t, p in pieces if not p and "<" not in t]
        slipped += bool(bad)
        for t in bad:
            assert evaluate_chain(t.strip().split("=")[0]) != int(t.rsplit("=", 1)[1])
    assert slipped > 100


def test_slips_need_prefix_queries():
    with pytest.raises(ValueError, match="prefix"):
        WarmStartConfig(slip_prob=0.5)
    with pytest.raises(ValueError, match="query"):
        WarmStartConfig(query="whole")


def test_new_fields_at_their_defaults_keep_the_cached_key(tmp_path):
    """Warm starts cached before `query`, `slip_prob`, `consult_style` and `bare_refusal` existed keep their folder names."""
    src = tmp_path / "p"
    src.mkdir()
    (src / "eapo_model.json").write_text(json.dumps({"key": "k", "spec": {}}))
    key = ws.warm_start_key(src, TASK, WarmStartConfig())
    payload = {"format": ws.FORMAT_VERSION, "source": {"tiny_model_key": "k", "spec": {}},
               "task": {k: v for k, v in dataclasses.asdict(TASK).items() if k != "oracle"},
               "cfg": {k: v for k, v in dataclasses.asdict(WarmStartConfig()).items() if k not in ("query", "slip_prob", "consult_style", "bare_refusal")}}
    import hashlib
    assert key == hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]
    assert ws.warm_start_key(src, TASK, WarmStartConfig(query="prefix")) != key
    assert ws.warm_start_key(src, dataclasses.replace(TASK, oracle="tutor"), WarmStartConfig()) == key  # RL-time only


def bare_replay(tok, pieces, bare_refusal="block", consult_mode="open"):
    """An engine whose scripted policy writes the demonstration's policy segments, with
    bare consultations and the "write" oracle. A bare segment ends at the consult tag,
    whatever follows it (a reply, a refusal block, or nothing after a silent refusal)."""
    turns, cur = [], ""
    for text, is_policy in pieces:
        if is_policy:
            cur += text
            if text.endswith(TAGS.consult_open):
                turns, cur = turns + [cur], ""
    turns.append(cur)
    backend = ScriptedBackend(lambda ctx, call: tok.encode(turns[call - 1], add_special_tokens=False),
                              (tok.eos_token_id,))
    cfg = RolloutConfig(system_prompt="", tokens_per_turn=200, consult_style="bare", expert_sees_transcript=True,
                        bare_refusal=bare_refusal, consult_mode=consult_mode)
    engine = RolloutEngine(backend, tok, cfg, pool=ExpertPool([OracleExpert(ChainTask(oracle="write").oracle_answer)]))
    return engine, turns


@pytest.mark.parametrize("consult, replies, policy_text", [
    (frozenset({1, 2}), ["85-19=66", "66+66=132"], "47+38=85 <consult> <consult> 132+5=137 <answer>137</answer>"),
    (frozenset({0, 3}), ["47+38=85", "132+5=137"], "<consult> 85-19=66 66+66=132 <consult> <answer>137</answer>"),
])
def test_bare_consultation_replays_through_the_engine(tok, consult, replies, policy_text):
    """`consult_style: bare`: the policy writes only the tag, the "write" oracle's reply is
    the step itself, appended as it is (mask 0); the engine's record equals the warm-start
    example token for token, and the reward counts the policy's answer."""
    question = "47+38-19+66+5"
    pieces = ChainTask.solution_text(question, consult, tags=TAGS, style="bare")
    ids, mask, prompt_len = encode_pieces(tok, question, pieces)
    engine, turns = bare_replay(tok, pieces)
    [ep] = engine.run([Problem("p", question, "137")], step=1, rhos=1.0, turn_budget=len(turns) + 2)
    assert ep.stop_reason == "answer" and ep.score == 1.0
    assert ep.completion_ids == ids[prompt_len:] and ep.loss_mask == mask[prompt_len:]
    assert [c.reply for t in ep.turns for c in t.calls] == replies
    policy = tok.decode([t for t, m in zip(ep.completion_ids, ep.loss_mask) if m])
    assert policy == policy_text  # the expert's steps are observations, not the policy's


def test_bare_refusal_is_a_block_and_the_policy_writes_the_step(tok):
    question = "47+38-19"
    pieces = ChainTask.solution_text(question, frozenset({1}), refused_steps=frozenset({1}), tags=TAGS, style="bare")
    ids, mask, prompt_len = encode_pieces(tok, question, pieces)
    engine, turns = bare_replay(tok, pieces)
    [ep] = engine.run([Problem("p", question, "66")], step=1, rhos=0.0, turn_budget=5)
    assert ep.score == 1.0 and ep.completion_ids == ids[prompt_len:] and ep.loss_mask == mask[prompt_len:]
    assert tok.decode(ids[prompt_len:]) == '47+38=85 <consult>\n<expert id="0">expert unavailable</expert>\n85-19=66 <answer>66</answer>'
    with pytest.raises(ValueError, match="bare"):
        ChainTask.solution_text(question, frozenset({1}), style="bare", query="prefix")
    with pytest.raises(ValueError, match="consult_style"):
        WarmStartConfig(consult_style="inline")


class FirstRefused:
    """A gate that refuses an episode's first consultation and accepts the rest."""

    def decide(self, uid, query, index, rho):
        return index >= 1, 0.5


@pytest.mark.parametrize("consult_mode", ["open", "refuse"])
def test_silent_bare_refusal_leaves_only_the_policys_tag_and_step(tok, consult_mode):
    """`bare_refusal: silent`: a refused bare consultation (rho 0 in training, or the
    `refuse` lock at evaluation) appends nothing; the policy's next segment starts right
    after its own tag and every token it writes is trained (mask 1), exactly as the
    silent-refusal demonstration lays it out."""
    question = "47+38-19+66"
    pieces = ChainTask.solution_text(question, frozenset({1, 2}), refused_steps=frozenset({1}), tags=TAGS,
                                     style="bare", bare_refusal="silent")
    assert pieces[1:4] == [(" <consult>", True), ("85-19=66", True), (" <consult>", True)]
    ids, mask, prompt_len = encode_pieces(tok, question, pieces)
    engine, turns = bare_replay(tok, pieces, bare_refusal="silent", consult_mode=consult_mode)
    # open: the first consultation is refused, the second answered; the lock refuses both
    if consult_mode == "open":
        engine.gate = FirstRefused()
        [ep] = engine.run([Problem("p", question, "132")], step=1, rhos=1.0, turn_budget=len(turns) + 2)
        assert ep.completion_ids == ids[prompt_len:] and ep.loss_mask == mask[prompt_len:]
        assert tok.decode(ep.completion_ids) == "47+38=85 <consult>85-19=66 <consult>66+66=132 <answer>132</answer>"
        assert [(c.accepted, c.reply) for t in ep.turns for c in t.calls] == [(False, ""), (True, "66+66=132")]
    else:
        refused_all = ChainTask.solution_text(question, frozenset({1, 2}), refused_steps=frozenset({1, 2}), tags=TAGS,
                                              style="bare", bare_refusal="silent")
        ids, mask, prompt_len = encode_pieces(tok, question, refused_all)
        engine, turns = bare_replay(tok, refused_all, bare_refusal="silent", consult_mode=consult_mode)
        [ep] = engine.run([Problem("p", question, "132")], step=1, rhos=1.0, turn_budget=len(turns) + 2)
        assert ep.completion_ids == ids[prompt_len:] and ep.loss_mask == [1] * len(ep.completion_ids)
        assert all(t.observation_tokens == 0 for t in ep.turns)
        assert [c.reason for t in ep.turns for c in t.calls] == ["locked", "locked"]
    assert ep.score == 1.0 and ep.stop_reason == "answer"


def test_silent_refusal_needs_bare_consultations():
    with pytest.raises(ValueError, match="bare_refusal"):
        RolloutConfig(bare_refusal="silent")
    with pytest.raises(ValueError, match="bare_refusal"):
        RolloutConfig(consult_style="bare", bare_refusal="quiet")
    with pytest.raises(ValueError, match="bare_refusal"):
        WarmStartConfig(bare_refusal="silent")
    with pytest.raises(ValueError, match="bare_refusal"):
        ChainTask.solution_text("47+38", frozenset({0}), bare_refusal="silent")
    assert ws._cfg_identity(WarmStartConfig()) == ws._cfg_identity(WarmStartConfig(bare_refusal="block"))
    assert "bare_refusal" in ws._cfg_identity(WarmStartConfig(consult_style="bare", bare_refusal="silent"))


@pytest.mark.parametrize("warm, roll, match", [
    ({}, {"consult_style": "bare"}, "consult_style"),
    ({"consult_style": "bare"}, {}, "consult_style"),
    ({"consult_style": "bare"}, {"consult_style": "bare", "bare_refusal": "silent"}, "bare_refusal"),
])
def test_a_warm_start_in_another_layout_than_rl_is_refused_before_it_runs(tmp_path, monkeypatch, warm, roll, match):
    """Building the warm start here with demonstrations in another consultation layout than
    the rollout's is refused before any training; a given `--model` is not checked."""
    from eapo.config import ConfigError
    from eapo.training import compare
    from eapo.training.config import TrainConfig

    cfg = TrainConfig(warmstart=dataclasses.replace(TrainConfig().warmstart, **warm),
                      rollout=dataclasses.replace(TrainConfig().rollout, **roll))
    monkeypatch.setattr("eapo.models.build.ensure_tiny_models", lambda cache: {"policy": tmp_path / "tiny"})
    monkeypatch.setattr("eapo.training.warmstart.warm_start", lambda *a: pytest.fail("the warm start ran"))
    with pytest.raises(ConfigError, match=match):
        compare.prepare_policy(cfg, None, tmp_path)
    assert compare.prepare_policy(cfg, str(tmp_path / "given"), tmp_path) == str(tmp_path / "given")
    ok = dataclasses.replace(cfg, warmstart=dataclasses.replace(cfg.warmstart, consult_style=cfg.rollout.consult_style,
                                                                bare_refusal=cfg.rollout.bare_refusal))
    monkeypatch.setattr("eapo.training.warmstart.warm_start", lambda *a: tmp_path / "ws")
    assert compare.prepare_policy(ok, None, tmp_path) == str(tmp_path / "ws")
