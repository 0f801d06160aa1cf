"""The vLLM generation backend, against a fake with vLLM's and TRL's exact interfaces
(tests/rollout/fake_vllm.py; vLLM itself cannot be installed here).

What must hold in both of TRL's modes: every keyword we send is one vLLM's
`SamplingParams` takes; a segment ends on EOS, a single-token closing tag or a multi-token
stop string, with the stopping token kept and the right finish reason; per-context token
limits hold; the recorded log-probabilities are the sampler's; forbidden sequences are
never produced; a group's identical contexts do not sample identical continuations; and
the whole EAPO rollout runs through TRL's `use_vllm` path with exact masks."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from eapo.models.build import TinyModelSpec, build_tiny_model, load_policy
from eapo.rollout.backend import SamplingParams
from eapo.rollout.vllm_backend import ColocateEngine, ServerEngine, VLLMBackend

sys.path.insert(0, str(Path(__file__).parent))
import fake_vllm as fv  # noqa: E402

sys.path.pop(0)


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    spec = TinyModelSpec(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         intermediate_size=32)
    return load_policy(str(build_tiny_model(tmp_path_factory.mktemp("m") / "p", spec)))[1]


def target_model(tok, text_for, p_target=0.9, noise=(ord("x"), ord("y"))):
    """Writes `text_for(prompt text)` then EOS, each token with probability `p_target`,
    the rest spread over `noise` tokens."""
    def next_token(prompt, generated):
        target = tok.encode(text_for(tok.decode(prompt)), add_special_tokens=False) + [tok.eos_token_id]
        want = target[len(generated)] if len(generated) < len(target) else tok.eos_token_id
        dist = {t: (1 - p_target) / len(noise) for t in noise}
        dist[want] = dist.get(want, 0.0) + p_target
        return dist
    return next_token


def backend(tok, mode, text_for, **kw):
    llm = fv.FakeLLM(target_model(tok, text_for, **kw), tok, tok.eos_token_id)
    if mode == "colocate":
        return VLLMBackend(ColocateEngine(llm, fv.SamplingParams), tok), llm
    client = fv.FakeVLLMClient(server=llm)
    return VLLMBackend(ServerEngine(client), tok, per_request_seed=False), client


def ids(tok, text):
    return tok.encode(text, add_special_tokens=False)


@pytest.mark.parametrize("mode", ["colocate", "server"])
def test_segments_end_on_eos_tags_stop_strings_and_limits(tok, mode):
    close = ids(tok, "</consult>")
    assert len(close) == 1  # the tiny tokenizer makes tags single tokens
    texts = {"a": "12 <consult><query>q</query></consult> tail", "b": "done", "c": "think stop-here more",
             "d": "a long text that runs past the limit"}
    be, _ = backend(tok, mode, lambda prompt: texts[prompt[-1]], p_target=1.0)
    params = SamplingParams(temperature=1.0, stop_token_ids=tuple(close), stop_strings=("stop-here",), seed=3)
    gens = be.generate([ids(tok, "a"), ids(tok, "b"), ids(tok, "c"), ids(tok, "d")], [48, 48, 48, 5], params)
    a, b, c, d = gens
    assert tok.decode(a.ids).endswith("</consult>") and a.ids[-1] == close[0] and a.finish == "stop"
    assert b.ids == ids(tok, "done") + [tok.eos_token_id] and b.finish == "eos"
    assert tok.decode(c.ids) == "think stop-here" and c.finish == "stop"  # the completing token is kept
    assert d.ids == ids(tok, "a lon") and d.finish == "length"
    for g in gens:  # p_target = 1: the sampler's log-prob of each drawn token is log 1
        assert len(g.logprobs) == len(g.ids) and all(lp == 0.0 for lp in g.logprobs)


@pytest.mark.parametrize("mode", ["colocate", "server"])
def test_every_keyword_sent_is_a_sampling_param_and_forbidden_words_never_appear(tok, mode):
    be, sink = backend(tok, mode, lambda prompt: "<consult><query>q</query></consult>", p_target=0.99)
    forbid = ("<consult>", "</consult>")
    params = SamplingParams(temperature=0.0, stop_token_ids=(ids(tok, "</answer>")[0],), forbidden=forbid)
    [g] = be.generate([ids(tok, "p")], [12], params)
    for tag in forbid:
        assert ids(tok, tag)[0] not in g.ids
    # the fake constructs vLLM's SamplingParams from exactly what we sent (unknown keys raise)
    sent = sink.calls[-1][1][0] if mode == "colocate" else fv.SamplingParams(
        **{k: v for k, v in sink.requests[-1].items() if k != "prompts"})
    assert sent.bad_words == ["<consult>", "</consult>"] and sent.logprobs == 0 and sent.temperature == 0.0
    with pytest.raises(TypeError):
        fv.SamplingParams(stop_strings=["x"])  # our name, not vLLM's: the fake refuses it as vLLM would


def test_log_probs_are_the_processed_distributions(tok):
    """At temperature 0.5 and top-p 0.98 the recorded log-prob is that of the tempered,
    truncated distribution the token was drawn from (vLLM's processed_logprobs)."""
    be, _ = backend(tok, "colocate", lambda prompt: "zzzzzzzzzzzz", p_target=0.8)
    [g] = be.generate([ids(tok, "p")], [12], SamplingParams(temperature=0.5, top_p=0.98, seed=1))
    # tempered: z 0.64/0.66 = 0.970, x and y 0.015 each; top-p 0.98 keeps z and x (ties by id)
    kept = {ord("z"): 0.8 ** 2, ord("x"): 0.1 ** 2}
    z = sum(kept.values())
    assert ord("y") not in g.ids and len(g.ids) == 12
    for tok_id, lp in zip(g.ids, g.logprobs):
        assert lp == pytest.approx(math.log(kept[tok_id] / z), abs=1e-12)


def test_colocate_seeds_each_context_so_a_group_differs_and_a_rerun_repeats(tok):
    be, llm = backend(tok, "colocate", lambda prompt: "abcdefgh", p_target=0.5)
    params = SamplingParams(temperature=1.0, seed=7)
    first = be.generate([ids(tok, "same")] * 8, [8] * 8, params)
    assert len({tuple(g.ids) for g in first}) > 1
    again = be.generate([ids(tok, "same")] * 8, [8] * 8, params)
    assert [g.ids for g in again] == [g.ids for g in first]
    assert len({sp.seed for sp in llm.calls[-1][1]}) == 8
    assert [sp.max_tokens for sp in llm.calls[-1][1]] == [8] * 8


def test_server_sends_no_seed_and_one_request_per_token_limit(tok):
    be, client = backend(tok, "server", lambda prompt: "abcdefgh", p_target=0.5)
    gens = be.generate([ids(tok, "same")] * 8, [8, 8, 8, 8, 8, 8, 3, 3], SamplingParams(temperature=1.0, seed=7))
    assert len({tuple(g.ids) for g in gens[:6]}) > 1  # no shared seed forcing identical samples
    assert [r["max_tokens"] for r in client.requests] == [8, 3] and all("seed" not in r for r in client.requests)
    assert all(len(g.ids) <= 3 for g in gens[6:])


def fake_trainer(tok, vg, *, main=True):
    return SimpleNamespace(vllm_generation=vg, accelerator=SimpleNamespace(is_main_process=main),
                           use_vllm=True, eos_token_ids=[tok.eos_token_id], state=SimpleNamespace(global_step=0))


def test_from_trainer_uses_trl_client_on_main_and_own_http_client_elsewhere(tok, monkeypatch):
    import trl.generation.vllm_client as vc

    main_client = fv.FakeVLLMClient(server=None)
    vg = fv.FakeVLLMGeneration(mode="server", vllm_client=main_client, server_base_url="http://10.0.0.7:8000")
    assert VLLMBackend.from_trainer(fake_trainer(tok, vg), tok).engine.client is main_client
    monkeypatch.setattr(vc, "VLLMClient", fv.FakeVLLMClient)
    other = VLLMBackend.from_trainer(fake_trainer(tok, vg, main=False), tok).engine.client
    assert other is not main_client and other.base_url == "http://10.0.0.7:8000"
    assert VLLMBackend.from_trainer(fake_trainer(tok, vg, main=False), tok).engine.client is other  # made once


def test_from_trainer_refuses_what_would_deadlock(tok):
    vg = fv.FakeVLLMGeneration(mode="colocate", tensor_parallel_size=2)
    with pytest.raises(NotImplementedError, match="server"):
        VLLMBackend.from_trainer(fake_trainer(tok, vg), tok)
    vg = fv.FakeVLLMGeneration(mode="colocate", enable_sleep_mode=True)
    with pytest.raises(NotImplementedError, match="sleep"):
        VLLMBackend.from_trainer(fake_trainer(tok, vg), tok)


def test_eapo_rollout_through_trls_vllm_path(tok, monkeypatch):
    """TRL calls our rollout with `trainer.use_vllm`: episodes come from the (fake) vLLM
    engine with exact masks, the sampler's log-probs on policy tokens and 0 elsewhere."""
    import types

    vllm = types.ModuleType("vllm")  # what from_trainer imports in colocate mode
    vllm.SamplingParams = fv.SamplingParams
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    from eapo.experts import ExpertPool, OracleExpert
    from eapo.rollout.config import RolloutConfig
    from eapo.rollout.engine import RolloutEngine
    from eapo.schedules.acceptance import AcceptanceConfig
    from eapo.schedules.budget import TurnBudgetConfig
    from eapo.schedules.penalty import PenaltyConfig
    from eapo.tasks.arithmetic import ChainTask, evaluate_chain
    from eapo.training.rollout_func import EAPORollout

    task = ChainTask(name="chain", min_len=1, max_len=2, seed=0, sizes=(("train", 4),))
    problems = task.split("train")

    def policy_text(prompt_text):
        question = prompt_text.split("user\n")[-1].split("<|im_end|>")[0]
        done = prompt_text.split("<|im_start|>assistant\n")[-1]
        if "<expert" in done:
            return f" <answer>{evaluate_chain(question)}</answer>"
        return f"hm <consult><query>{question}</query></consult>"

    llm = fv.FakeLLM(target_model(tok, policy_text, p_target=0.97), tok, tok.eos_token_id)
    vg = fv.FakeVLLMGeneration(mode="colocate", llm=llm)
    engine = RolloutEngine(None, tok, RolloutConfig(system_prompt="", tokens_per_turn=40, max_policy_tokens=120,
                                                   max_completion_tokens=240),
                           pool=ExpertPool([OracleExpert(task.oracle_answer)]), scorer=task.scorer)
    rollout = EAPORollout(engine, problems, acceptance=AcceptanceConfig(kind="constant", value=1.0),
                          budget=TurnBudgetConfig(), penalty=PenaltyConfig(), total_steps=10)
    prompts = [p.question for p in problems for _ in range(2)]
    out = rollout(prompts, fake_trainer(tok, vg))
    episodes = rollout.last_episodes
    assert llm.calls and len(out["completion_ids"]) == 8
    for ep, comp, mask, lps in zip(episodes, out["completion_ids"], out["env_mask"], out["logprobs"]):
        assert len(comp) == len(mask) == len(lps)
        assert all(lp == 0.0 for lp, m in zip(lps, mask) if m == 0)
        assert all(lp < 0.0 for lp, m in zip(lps, mask) if m == 1)  # p < 1 for every sampled token
    # the expert's reply went in as mask-0 tokens; most episodes read it and answer right
    # (a sampled noise token now and then garbles a tag: the draws are seeded, so this is fixed)
    assert sum(ep.observation_tokens > 0 for ep in episodes) >= 6
    assert sum(ep.score for ep in episodes) >= 5
