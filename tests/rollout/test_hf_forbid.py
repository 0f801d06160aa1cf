"""Expert-free evaluation with lock "forbid" on a real (tiny, untrained) model: the consult
tag must be impossible to generate.

Why this needs a real model: the engine passes the single-token closing tags as stop ids,
which the transformers backend hands to `generate` as EOS ids, and transformers' own
`bad_words_ids` ban silently drops any banned sequence that is a single EOS id. With the
tiny tokenizer `</consult>` is one token, so it stayed sampleable under "forbid" and each
stray closing tag parsed as a consultation attempt (0.14 per episode in the run below)."""

from __future__ import annotations

import pytest

from eapo.models.build import TinyModelSpec, build_tiny_model, load_policy
from eapo.rollout.backend import SamplingParams
from eapo.rollout.config import RolloutConfig
from eapo.rollout.engine import RolloutEngine
from eapo.rollout.hf_backend import HFBackend
from eapo.tasks import ChainTask


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    spec = TinyModelSpec(hidden_size=64, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         intermediate_size=128)
    return load_policy(build_tiny_model(tmp_path_factory.mktemp("m") / "policy", spec))


def test_a_forbidden_token_that_is_also_a_stop_token_is_never_sampled(policy):
    model, tok = policy
    backend = HFBackend(model, tok)
    close = tok.convert_tokens_to_ids("</consult>")
    ctx = tok.encode("1+1=", add_special_tokens=False)
    free = SamplingParams(temperature=3.0, stop_token_ids=(close,), seed=0)
    assert any(g.ids[-1] == close for g in backend.generate([ctx] * 16, [80] * 16, free))  # reachable
    banned = SamplingParams(temperature=3.0, stop_token_ids=(close,), forbidden=("</consult>",), seed=0)
    gens = backend.generate([ctx] * 16, [80] * 16, banned)
    assert all(close not in g.ids for g in gens)
    assert all(g.finish in ("eos", "length") for g in gens)


def run(policy, mode: str, n: int):
    model, tok = policy
    cfg = RolloutConfig(consult_mode=mode, tokens_per_turn=48, max_policy_tokens=96, max_completion_tokens=192)
    engine = RolloutEngine(HFBackend(model, tok), tok, cfg, scorer="integer", seed=0)
    return engine.run(ChainTask().split("test")[:n], step=0, turn_budget=2)


def test_forbid_gives_zero_consult_attempts_over_many_sampled_episodes(policy):
    _, tok = policy
    tags = {tok.convert_tokens_to_ids("<consult>"), tok.convert_tokens_to_ids("</consult>")}
    # the same untrained policy writes the tag when it is only refused, not forbidden
    refused = run(policy, "refuse", 64)
    assert sum(ep.consults for ep in refused) > 0
    episodes = run(policy, "forbid", 256)
    assert len(episodes) == 256
    assert sum(ep.consults for ep in episodes) == 0
    assert not tags & {t for ep in episodes for t in ep.completion_ids}
    assert sum(ep.policy_tokens for ep in episodes) > 256 * 48  # many tokens sampled, not an early stop
