"""The built-in experts: fake, oracle, noisy, Hugging Face; the factory registry; and the
promise that `import eapo.experts` stays free of torch.

The Hugging Face expert runs on throwaway tiny Qwen2 models with a byte-level tokenizer
built here (random weights, so its text is gibberish; the tests check shapes, counts,
batching, determinism and RNG isolation, not quality).
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eapo.experts import (
    EXPERTS,
    BatchExpert,
    Expert,
    ExpertPool,
    FakeBatchExpert,
    FakeExpert,
    HFModelExpert,
    NoisyExpert,
    OracleExpert,
    build_expert,
    corrupt_text,
    supports_batch,
)
from eapo.types import ExpertReply, ExpertRequest


def ask(expert, request: ExpertRequest) -> ExpertReply:
    return asyncio.run(expert.ask(request))


def req(i: int = 0, **kw) -> ExpertRequest:
    return ExpertRequest(**{"problem": "What is 6*7?", "query": f"q{i}", "key": f"ep{i}/0", **kw})


# --------------------------------------------------------------------------- import weight


def test_importing_the_expert_layer_does_not_import_torch():
    code = "import eapo.experts, sys; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- registry


def test_registry_builds_each_builtin_by_name_and_by_spec():
    assert {"fake", "oracle", "noisy", "hf"} <= set(EXPERTS.names())
    assert isinstance(build_expert("fake", name="f", delay_s=0.1), FakeExpert)
    assert isinstance(build_expert({"type": "fake", "batch": True}), FakeBatchExpert)
    assert isinstance(build_expert("oracle"), OracleExpert)
    noisy = build_expert({"type": "noisy", "inner": {"type": "oracle"}, "p": 0.5, "seed": 3})
    assert isinstance(noisy, NoisyExpert) and isinstance(noisy.inner, OracleExpert)
    hf = build_expert("hf", model_path="/nowhere")  # lazy: nothing is loaded yet
    assert isinstance(hf, HFModelExpert) and hf._model is None
    for e in (noisy, hf):
        assert isinstance(e, Expert)


def test_registry_miss_and_missing_type_say_what_is_valid():
    with pytest.raises(KeyError, match="valid: fake, hf, noisy, openai, oracle"):
        build_expert("gpt")
    with pytest.raises(KeyError, match="'type' key"):
        build_expert({"name": "x"})


# --------------------------------------------------------------------------- fake and oracle


def test_fake_expert_echoes_or_uses_reply_fn_and_refuses_unknown_failures():
    assert ask(FakeExpert(), req(3)).text == "ok:q3"
    assert ask(FakeExpert(reply_fn=lambda r: r.key.upper()), req(3)).text == "EP3/0"
    with pytest.raises(ValueError, match="fail must be"):
        FakeExpert(fail="explode")
    assert not supports_batch(FakeExpert()) and supports_batch(FakeBatchExpert())


def test_oracle_answers_with_answer_fn_or_the_gold_answer():
    oracle = OracleExpert(answer_fn=lambda r: f"{r.query}=42")
    reply = ask(oracle, req(1))
    assert (reply.text, reply.expert, reply.completion_tokens) == ("q1=42", "oracle", 5)
    assert reply.prompt_tokens == len("What is 6*7?") + len("q1")
    assert ask(OracleExpert(), req(gold="42")).text == "42"


def test_oracle_without_gold_fails_as_a_value_in_the_pool():
    (_, reply), = ExpertPool([OracleExpert()]).ask_many_sync([req()], [0])
    assert reply.error.startswith("exception:ValueError: OracleExpert without answer_fn needs request.gold")


# --------------------------------------------------------------------------- noisy


@pytest.mark.parametrize(
    "text, unchanged_prefix, unchanged_suffix",
    [
        ("the answer is 42", "the answer is ", ""),
        ("x = -3, so 17 apples.", "x = -3, so ", " apples."),
        ("5-3", "5-", ""),
        ("pi is 3.14", "pi is 3.", ""),
        ("0", "", ""),
    ],
)
def test_corrupt_moves_the_last_integer_by_one_to_nine(text, unchanged_prefix, unchanged_suffix):
    for seed in range(50):
        out = corrupt_text(text, random.Random(seed))
        assert out != text
        assert out.startswith(unchanged_prefix) and out.endswith(unchanged_suffix)
        middle = out[len(unchanged_prefix) : len(out) - len(unchanged_suffix)]
        old = text[len(unchanged_prefix) : len(text) - len(unchanged_suffix)]
        assert 1 <= abs(int(middle) - int(old)) <= 9


@pytest.mark.parametrize("text", ["use the chain rule", "yes", "", "   ", "a a a"])
def test_corrupt_without_integers_shuffles_words_or_appends_not(text):
    out = corrupt_text(text, random.Random(0))
    assert out != text
    assert sorted(out.split()) in (sorted(text.split()), sorted(text.split() + ["not"]))


@given(st.text(max_size=60), st.integers(0, 2**32))
def test_corrupt_always_changes_the_text(text, seed):
    assert corrupt_text(text, random.Random(seed)) != text


def _noisy_oracle(p: float, seed: int = 0) -> NoisyExpert:
    # Replies alternate between numeric and wordy texts so both corruptions are exercised.
    return NoisyExpert(
        OracleExpert(lambda r: f"the answer is {len(r.key)}" if r.key[-1] in "02468" else "it is the identity"),
        p=p,
        seed=seed,
    )


def test_noisy_corrupts_at_rate_p_and_always_changes_what_it_corrupts():
    p, n = 0.3, 2000
    noisy = _noisy_oracle(p)
    clean = OracleExpert(noisy.inner.answer_fn)
    requests = [req(i) for i in range(n)]
    noisy_texts = asyncio.run(_ask_all(noisy, requests))
    clean_texts = asyncio.run(_ask_all(clean, requests))
    changed = sum(a != b for a, b in zip(noisy_texts, clean_texts))
    std = (n * p * (1 - p)) ** 0.5
    assert abs(changed - n * p) < 3 * std
    assert noisy.snapshot_and_reset() == {"replies": n, "corrupted": changed}
    assert changed == sum(noisy.will_corrupt(r) for r in requests)  # every corruption changed the text
    assert all("noisy" not in t for t in noisy_texts)  # nothing marks a corrupted reply


async def _ask_all(expert, requests):
    return [r.text for r in await asyncio.gather(*(expert.ask(q) for q in requests))]


def test_noisy_is_deterministic_per_key_and_seed():
    requests = [req(i) for i in range(200)]
    a = asyncio.run(_ask_all(_noisy_oracle(0.5, seed=1), requests))
    b = asyncio.run(_ask_all(_noisy_oracle(0.5, seed=1), requests[::-1]))[::-1]
    c = asyncio.run(_ask_all(_noisy_oracle(0.5, seed=2), requests))
    assert a == b
    assert a != c
    again = _noisy_oracle(0.5, seed=1)
    assert asyncio.run(_ask_all(again, requests[:5] * 2)) == a[:5] * 2


@pytest.mark.parametrize("p, expected", [(0.0, 0), (1.0, 50)])
def test_noisy_extremes(p, expected):
    noisy = _noisy_oracle(p)
    asyncio.run(_ask_all(noisy, [req(i) for i in range(50)]))
    assert noisy.corrupted == expected


def test_noisy_passes_failures_through_and_batches_only_when_its_inner_does():
    failing = NoisyExpert(FakeExpert(fail="raise"), p=1.0)
    (_, reply), = ExpertPool([failing]).ask_many_sync([req()], [0])
    assert reply.error.startswith("exception:RuntimeError")
    errored = NoisyExpert(OracleExpert(lambda r: "7"), p=1.0)
    errored.inner.ask = _returns(ExpertReply(text="", error="http:503"))
    assert ask(errored, req()).error == "http:503" and errored.corrupted == 0

    inner = FakeBatchExpert(reply_fn=lambda r: "41")
    batched = NoisyExpert(inner, p=1.0, name="nb")
    assert supports_batch(batched) and isinstance(batched, BatchExpert)
    assert not supports_batch(NoisyExpert(FakeExpert(), p=1.0))
    out = ExpertPool([batched]).ask_many_sync([req(i) for i in range(3)], [0, 0, 0])
    assert inner.batch_sizes == [3]
    assert all(r.text != "41" and r.expert == "nb" for _, r in out)
    with pytest.raises(ValueError, match="probability"):
        NoisyExpert(FakeExpert(), p=1.5)


def _returns(reply):
    async def f(request):
        return reply

    return f


# --------------------------------------------------------------------------- Hugging Face

SPECIALS = ["<|im_end|>", "<|endoftext|>", "<|im_start|>"]  # <|im_end|> is id 0 (EOS)
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _build_tiny_model(path: Path, zero_head: bool = False) -> Path:
    """A one-layer Qwen2 with a 259-token byte-level vocabulary (no merges). With
    `zero_head`, all logits are 0, so greedy decoding picks id 0 = EOS at once."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    vocab = {s: i for i, s in enumerate(SPECIALS)}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens(SPECIALS)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>", chat_template=CHAT_TEMPLATE
    )
    config = Qwen2Config(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=False,
    )
    rng_state = torch.get_rng_state()
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    torch.set_rng_state(rng_state)
    if zero_head:
        with torch.no_grad():
            model.lm_head.weight.zero_()
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    pytest.importorskip("transformers")
    return _build_tiny_model(tmp_path_factory.mktemp("tiny-expert"))


@pytest.fixture(scope="module")
def eos_model(tmp_path_factory) -> Path:
    pytest.importorskip("transformers")
    return _build_tiny_model(tmp_path_factory.mktemp("eos-expert"), zero_head=True)


def _requests(n: int) -> list[ExpertRequest]:
    # Queries of different lengths, so the batch needs left padding.
    return [ExpertRequest(problem="2+2?", query="why " * (i + 1), key=f"ep/{i}") for i in range(n)]


@pytest.mark.slow
def test_hf_expert_batch_has_true_prompt_and_completion_token_counts(tiny_model):
    import torch

    expert = HFModelExpert(str(tiny_model), max_new_tokens=8)
    requests = _requests(4)
    replies = asyncio.run(expert.ask_batch(requests))
    assert len(replies) == 4
    tok, model = expert._tokenizer, expert._model
    for request, reply in zip(requests, replies):
        assert isinstance(reply.text, str) and reply.ok and reply.expert == "hf"
        prompt = expert.render(request)
        assert prompt.startswith("<|im_start|>system\n") and request.query in prompt
        ids = tok(prompt, add_special_tokens=False, return_tensors="pt").input_ids
        assert reply.prompt_tokens == ids.shape[1]  # no padding counted
        # Reference: the same prompt alone, unbatched; count up to and including EOS.
        with torch.no_grad():
            new = model.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)[0, ids.shape[1]:]
        new = new.tolist()
        expected = new.index(tok.eos_token_id) + 1 if tok.eos_token_id in new else len(new)
        assert 1 <= reply.completion_tokens <= 8
        assert reply.completion_tokens == expected


@pytest.mark.slow
def test_hf_expert_that_stops_at_once_returns_empty_text_and_one_token(eos_model):
    reply = asyncio.run(HFModelExpert(str(eos_model), max_new_tokens=8).ask(req()))
    assert (reply.text, reply.completion_tokens, reply.error) == ("", 1, None)


@pytest.mark.slow
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_hf_expert_leaves_torch_global_rng_alone(tiny_model, temperature):
    import torch

    expert = HFModelExpert(str(tiny_model), max_new_tokens=6, temperature=temperature, top_p=0.9)
    expert.load()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    pool = ExpertPool([expert], timeout_s=60)
    out = pool.ask_many_sync(_requests(3), [0, 0, 0])
    assert all(r.ok for _, r in out)
    assert torch.equal(before, torch.get_rng_state())


@pytest.mark.slow
def test_hf_sampling_is_deterministic_per_key_whatever_the_batch(tiny_model):
    expert = HFModelExpert(str(tiny_model), max_new_tokens=12, temperature=1.0, seed=5)
    requests = _requests(4)
    batch = [r.text for r in asyncio.run(expert.ask_batch(requests))]
    alone = [asyncio.run(expert.ask(r)).text for r in requests]
    assert batch == alone
    assert len(set(batch)) > 1  # different keys draw differently
    other_seed = HFModelExpert(str(tiny_model), max_new_tokens=12, temperature=1.0, seed=6)
    assert [r.text for r in asyncio.run(other_seed.ask_batch(requests))] != batch


@pytest.mark.slow
def test_hf_expert_through_the_pool_gets_one_batch_and_chunks_it(tiny_model):
    expert = HFModelExpert(str(tiny_model), name="self", max_new_tokens=4, max_batch_size=3)
    calls = []
    generate = expert.generate
    expert.generate = lambda rs: calls.append(len(rs)) or generate(rs)
    out = ExpertPool([expert]).ask_many_sync(_requests(4), [0, 1, 2, 3])
    assert calls == [4]  # one ask_batch call for the member's whole share
    assert [r.expert for _, r in out] == ["self"] * 4 and all(r.ok for _, r in out)


def test_hf_expert_refuses_bad_settings():
    with pytest.raises(ValueError, match="temperature"):
        HFModelExpert("m", temperature=-1)
    with pytest.raises(ValueError, match="top_p"):
        HFModelExpert("m", top_p=0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        HFModelExpert("m", max_new_tokens=0)
