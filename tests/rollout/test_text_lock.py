"""The expert-free lock against real tokenizers: no policy text may contain the consult tag,
whatever tokens spell it (eapo.rollout.forbid).

Why real tokenizers: with our tiny tokenizer every tag is one token and banning its id is
enough; with Qwen2's BPE `.<`, ` <`, `><` and `<c` are single tokens, so a model writes
`.<consult>` through ids that never hold `encode("<consult>")`. The ban is checked against
a brute force over the whole vocabulary, and a random-init Qwen2-architecture model wired
(by a logit bias) to write the tags through merged tokens is run through the HF backend,
the rollout engine and the vLLM backend (over the fake engine, whose `bad_words` bans
token sequences as vLLM does). Under `refuse` the same model's consultation is parsed and
refused, so the wiring is shown to reach the tag.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from eapo.protocol.tags import Tags
from eapo.rollout.backend import SamplingParams
from eapo.rollout.config import RolloutConfig
from eapo.rollout.engine import RolloutEngine
from eapo.rollout.forbid import TextBan, first_breach
from eapo.rollout.hf_backend import HFBackend
from eapo.rollout.vllm_backend import ColocateEngine, VLLMBackend
from eapo.types import Problem

sys.path.insert(0, str(Path(__file__).parent))
import fake_vllm as fv  # noqa: E402

sys.path.pop(0)

TAGS = Tags()
FORBID = (TAGS.consult_open, TAGS.consult_close)
ROOT = Path(os.environ.get("EAPO_TOKENIZERS_DIR", Path(__file__).resolve().parents[2].parent / "shared" / "tokenizers"))
NAMES = ["qwen2", "llama-bpe", "gpt-2", "phi-3", "deepseek-llm"]
# Spellings of the tag a real policy may use: each piece encoded on its own, so the ids
# differ from the tag's own encoding (merged with the text before and after).
SCRIPT = "Hmm, I need help.<consult><query>What is 2+2?</query></consult>"


def load(name: str):
    path = ROOT / name
    if not (path / "tokenizer.json").exists():
        pytest.skip(f"real tokenizer {name} not found in {ROOT} (set EAPO_TOKENIZERS_DIR)")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


@pytest.fixture(scope="module", params=NAMES)
def real(request):
    tok = load(request.param)
    return tok, TextBan(tok, FORBID)


def test_the_ban_is_exactly_the_tokens_that_would_complete_a_tag(real):
    tok, ban = real
    tails = ["", "help.", "help.<", "x <con", "<consult"[:-1], "<consult", "abc</", "q?</consul", "</consult", "<<"]
    for tail in tails:
        brute = {i for i, w in enumerate(ban.texts) if any(s in tail + w for s in FORBID)}
        assert set(ban.banned(tail)) == brute, tail
    # every tokenization of the tag ends with a banned token: the tag can't be written
    assert ban.banned("help.<consult")  # the ">" that would close it


def test_the_tag_spelled_through_merged_tokens_is_found(real):
    tok, ban = real
    ids = tok.encode(SCRIPT, add_special_tokens=False)
    opened = tok.encode(TAGS.consult_open, add_special_tokens=False)
    j = first_breach(ban, [], ids)
    assert j is not None and TAGS.consult_open in tok.decode(ids[: j + 1]) and TAGS.consult_open not in tok.decode(ids[:j])
    if tok.name_or_path.endswith("qwen2"):  # the measured case: `.<` merges, the tag's own ids never appear
        assert not any(ids[k:k + len(opened)] == opened for k in range(len(ids)))


# --------------------------------------------------------------------------- a wired Qwen2 model
@pytest.fixture(scope="module")
def qwen():
    tok = load("qwen2")
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                      tie_word_embeddings=True, eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
                      pad_token_id=tok.pad_token_id)
    model = Qwen2ForCausalLM(cfg).eval()
    return model, tok


class Wired:
    """Adds a large logit to the script's next token, by position after the context, so a
    random model writes `SCRIPT` (its canonical BPE, which spells the tags with merged
    tokens) unless a ban takes the token away. Position comes from each row's last position
    id (generate derives them from the attention mask, so left padding does not shift it)."""

    def __init__(self, model, script: list[int] | list[list[int]], start: int, bias: float = 40.0) -> None:
        self.scripts = script if script and isinstance(script[0], list) else None  # one per row
        self.script, self.start, self.bias = script, start, bias
        self.handle = model.register_forward_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs, output):
        for b, last in enumerate(kwargs["position_ids"][:, -1].tolist()):
            n = last + 1 - self.start
            script = self.scripts[b] if self.scripts else self.script
            if 0 <= n < len(script):
                output.logits[b, -1, script[n]] += self.bias
        return output

    def remove(self) -> None:
        self.handle.remove()


def contexts(tok):
    return [tok.encode("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False)]


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_hf_backend_cannot_write_the_tag_whatever_its_spelling(qwen, temperature):
    model, tok = qwen
    ctx = contexts(tok)[0]
    script = tok.encode(SCRIPT, add_special_tokens=False)
    wired = Wired(model, script, len(ctx))
    try:
        backend = HFBackend(model, tok)
        free = backend.generate([ctx] * 4, [len(script)] * 4, SamplingParams(temperature=temperature, seed=1))
        assert all(TAGS.consult_open in tok.decode(g.ids) for g in free)  # the wiring reaches the tag
        locked = backend.generate([ctx] * 4, [len(script) + 8] * 4,
                                  SamplingParams(temperature=temperature, seed=1, forbidden=FORBID))
    finally:
        wired.remove()
    for g in locked:
        text = tok.decode(g.ids, skip_special_tokens=True)
        assert TAGS.consult_open not in text and TAGS.consult_close not in text
        assert text.startswith("Hmm, I need help.<consult")  # only the closing `>` was taken away


def problem():
    return Problem(id="p0", question="What is 2+2?", answer="4")


@pytest.mark.parametrize("mode", ["forbid", "refuse"])
def test_the_engine_under_each_lock_with_the_real_tokenizer(qwen, mode):
    """forbid: no consultation can be written; refuse: the merged-token consultation is
    parsed as one and refused (its query read from the text)."""
    model, tok = qwen
    cfg = RolloutConfig(consult_mode=mode, tokens_per_turn=32, max_policy_tokens=64, max_completion_tokens=160,
                        temperature=0.0)
    engine = RolloutEngine(HFBackend(model, tok), tok, cfg, scorer="integer", seed=0)
    ctx = engine.prompt(problem())
    wired = Wired(model, tok.encode(SCRIPT, add_special_tokens=False), len(ctx))
    try:
        [ep] = engine.run([problem()], step=0, turn_budget=2)
    finally:
        wired.remove()
    own = tok.decode([t for t, m in zip(ep.completion_ids, ep.loss_mask) if m], skip_special_tokens=True)
    if mode == "forbid":
        assert ep.consults == 0 and TAGS.consult_open not in own and TAGS.consult_close not in own
    else:
        assert ep.consults == 1 and ep.turns[0].queries == ["What is 2+2?"]
        assert [c.reason for c in ep.turns[0].calls] == ["locked"]


def scripted_vllm(tok, script: list[int], start: int):
    def next_token(prompt, generated):
        n = len(prompt) - start + len(generated)
        want = script[n] if n < len(script) else tok.convert_tokens_to_ids("<|im_end|>")
        return {want: 0.98, tok.encode("x", add_special_tokens=False)[0]: 0.01,
                tok.encode(" ok", add_special_tokens=False)[0]: 0.01}
    return next_token


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_vllm_backend_holds_the_lock_past_bad_words(qwen, temperature):
    """vLLM's `bad_words` bans the tag's own token sequence, which the script never uses; the
    backend finds the merged spelling in the text, cuts it and resamples that position with
    the completing ids banned through `logit_bias`."""
    _, tok = qwen
    ctx = contexts(tok)[0]
    script = tok.encode(SCRIPT, add_special_tokens=False)
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    llm = fv.FakeLLM(scripted_vllm(tok, script, len(ctx)), tok, eos)
    be = VLLMBackend(ColocateEngine(llm, fv.SamplingParams), tok, (eos,))
    free = be.generate([ctx], [len(script) + 4], SamplingParams(temperature=temperature, seed=2))[0]
    assert TAGS.consult_open in tok.decode(free.ids)
    params = SamplingParams(temperature=temperature, seed=2, forbidden=FORBID)
    gens = be.generate([ctx] * 3, [len(script) + 4] * 3, params)
    for g in gens:
        text = tok.decode(g.ids, skip_special_tokens=True)
        assert TAGS.consult_open not in text and TAGS.consult_close not in text
        assert len(g.ids) == len(g.logprobs) <= len(script) + 4
    assert any(g.meta.get("lock_resampled", 0) >= 1 for g in gens)
    # the one-position resample sent the completing ids as a bias, not as bad words
    biased = [sp for _, sps in llm.calls for sp in sps if sp.logit_bias]
    assert biased and all(sp.max_tokens == 1 for sp in biased)


class ServerOverFakeVLLM:
    """verl's server interface (`generate(request_id, prompt_ids=, sampling_params=)` ->
    TokenOutput) over the fake vLLM engine, converting the parameters as verl's vLLM server
    does (`logprobs=True` -> 0), so `bad_words` and `logit_bias` act as in vLLM."""

    def __init__(self, llm) -> None:
        self.llm, self.requests = llm, []

    async def generate(self, request_id, *, prompt_ids, sampling_params, **kwargs):
        from types import SimpleNamespace

        sp = dict(sampling_params, logprobs=0, seed=len(self.requests))
        self.requests.append(sp)
        [out] = self.llm.generate([{"prompt_token_ids": list(prompt_ids)}], fv.SamplingParams(**sp), use_tqdm=False)
        o = out.outputs[0]
        return SimpleNamespace(token_ids=list(o.token_ids), extra_fields={},
                               log_probs=[float(pos[t].logprob) for pos, t in zip(o.logprobs, o.token_ids)])


def test_verl_backend_holds_the_lock_past_bad_words(qwen):
    """The same hold in the verl adapter's backend (its servers ban words as vLLM does)."""
    import asyncio
    import threading

    from eapo.integrations.verl.core import ServerBackend

    _, tok = qwen
    ctx = contexts(tok)[0]
    script = tok.encode(SCRIPT, add_special_tokens=False)
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    server = ServerOverFakeVLLM(fv.FakeLLM(scripted_vllm(tok, script, len(ctx)), tok, eos))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        bans: dict = {}
        be = ServerBackend(server, loop, "ep", tok, {"temperature": 1.0, "top_p": 1.0}, (eos,), bans=bans)
        free = be.generate([ctx], [len(script) + 4], SamplingParams(temperature=1.0))[0]
        assert TAGS.consult_open in tok.decode(free.ids)
        [g] = be.generate([ctx], [len(script) + 4], SamplingParams(temperature=1.0, forbidden=FORBID))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
    text = tok.decode(g.ids, skip_special_tokens=True)
    assert TAGS.consult_open not in text and TAGS.consult_close not in text
    assert g.meta.get("lock_resampled", 0) >= 1 and len(g.ids) == len(g.logprobs)
    assert any(r.get("logit_bias") and r["max_tokens"] == 1 for r in server.requests)
    assert list(bans) == [FORBID]  # the lock's table is shared by the loop's episodes


def test_a_row_ended_by_a_stop_string_is_not_read_as_eos_when_pad_is_eos(qwen):
    """Qwen2's pad is its EOS: a row that ends on a multi-token stop string while another
    row goes on is padded with the EOS id, which must not count as the row's EOS."""
    model, tok = qwen
    assert tok.pad_token_id == tok.eos_token_id
    ctx = contexts(tok)[0]
    short = tok.encode("4</answer>", add_special_tokens=False)
    long = tok.encode("Let me think about this for a while longer", add_special_tokens=False)
    wired = Wired(model, [short, long], len(ctx))
    try:
        gens = HFBackend(model, tok).generate([ctx, ctx], [len(long)] * 2,
                                              SamplingParams(temperature=0.0, stop_strings=("</answer>",)))
    finally:
        wired.remove()
    assert gens[0].ids == short and gens[0].finish == "stop"
    assert gens[1].ids == long and gens[1].finish == "length"
