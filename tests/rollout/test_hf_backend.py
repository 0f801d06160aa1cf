"""The transformers backend on a real (tiny, random) model built locally.

The sampler's log-probs must equal what a forward pass over the recorded ids gives, since
they serve as the old-policy log-probs; segments must stop on tags and respect limits."""

from __future__ import annotations

import pytest
import torch

from eapo.models.build import TinyModelSpec, build_tiny_model, load_policy
from eapo.rollout.backend import SamplingParams
from eapo.rollout.hf_backend import HFBackend


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    path = build_tiny_model(tmp_path_factory.mktemp("m") / "policy", TinyModelSpec(hidden_size=64, num_hidden_layers=2,
                                                                                   num_attention_heads=4,
                                                                                   num_key_value_heads=2,
                                                                                   intermediate_size=128))
    return load_policy(path)


def forward_logprobs(model, ctx: list[int], new: list[int], temperature: float) -> list[float]:
    ids = torch.tensor([ctx + new])
    with torch.no_grad():
        logits = model(ids).logits[0, len(ctx) - 1 : -1].float() / temperature
    return logits.log_softmax(-1).gather(-1, torch.tensor(new)[:, None]).squeeze(-1).tolist()


def test_sampler_logprobs_match_a_forward_pass(policy):
    model, tok = policy
    backend = HFBackend(model, tok)
    contexts = [tok.encode("12+34=", add_special_tokens=False), tok.encode("hello there, 9", add_special_tokens=False)]
    params = SamplingParams(temperature=0.7, seed=3)
    gens = backend.generate(contexts, [20, 7], params)
    assert len(gens[1].ids) <= 7
    for ctx, gen in zip(contexts, gens):
        assert len(gen.ids) == len(gen.logprobs) > 0
        ref = forward_logprobs(model, ctx, gen.ids, 0.7)
        assert gen.logprobs == pytest.approx(ref, abs=2e-4)
    # reproducible from the seed, and the caller's RNG untouched
    state = torch.get_rng_state()
    again = backend.generate(contexts, [20, 7], params)
    assert [g.ids for g in again] == [g.ids for g in gens]
    assert torch.equal(state, torch.get_rng_state())


def test_stops_on_tag_tokens_and_forbids_sequences(policy):
    model, tok = policy
    backend = HFBackend(model, tok)
    close = tok.convert_tokens_to_ids("</answer>")
    ctx = tok.encode("1+1=", add_special_tokens=False)
    # A random model at high temperature hits the tag now and then: every row must end at
    # its first stop token, and with this seed some rows do.
    gens = backend.generate([ctx] * 16, [80] * 16, SamplingParams(temperature=3.0, stop_token_ids=(close,), seed=0))
    stopped = [g for g in gens if g.finish == "stop"]
    assert stopped, "seeded run expected to hit the stop tag"
    for g in gens:
        assert close not in g.ids[:-1] and tok.eos_token_id not in g.ids[:-1]
        assert (g.ids[-1] == close) == (g.finish == "stop")
        assert len(g.ids) == 80 or g.finish != "length"
    forb = SamplingParams(temperature=3.0, forbidden=("</answer>",), seed=0)
    assert all(close not in g.ids for g in backend.generate([ctx] * 16, [80] * 16, forb))


def test_greedy_and_batch_padding_do_not_change_results(policy):
    model, tok = policy
    backend = HFBackend(model, tok)
    a = tok.encode("7+8=", add_special_tokens=False)
    b = tok.encode("a much longer context 12+13=", add_special_tokens=False)
    greedy = SamplingParams(temperature=0.0)
    alone = backend.generate([a], [12], greedy)[0]
    batched = backend.generate([b, a], [12, 12], greedy)[1]
    assert alone.ids == batched.ids
    assert alone.logprobs == pytest.approx(batched.logprobs, abs=1e-4)
