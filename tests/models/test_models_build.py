"""The tiny built-in models: the tokenizer survives a save and an `AutoTokenizer` reload id
for id, the folders load and generate through the Auto classes, and the cache is reused,
rebuilt when incomplete, and never half-written. CPU only, a few seconds."""

from __future__ import annotations

import dataclasses
import json
import os
import time
import unicodedata

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

import eapo.models.build as build_mod
from eapo.models import (
    EXPERT_SPEC,
    POLICY_SPEC,
    TinyModelSpec,
    build_tiny_model,
    build_tokenizer,
    ensure_tiny_models,
    load_policy,
)
from eapo.models.build import MARKER_FILE, cache_key, read_marker
from eapo.models.tokenizer import EOS_TOKEN, IM_END, IM_START, PAD_TOKEN
from eapo.protocol.tags import Tags

TAGS = Tags()
SPECIALS = [EOS_TOKEN, PAD_TOKEN, IM_START, IM_END]

STRINGS = [
    "",
    "0123456789",
    "47+38=85 85-19=66",
    "12345678901234567890 * 3.14159 = ?",
    "<consult><query>85-19</query></consult>",
    "<consult><query>a</query><query>b</query><query>c</query></consult>",
    "so x<answer>42</answer>y",
    '<expert id="0">85-19=66</expert>',
    '<expert id="12"> spaced </expert>',
    "<notice>expert unavailable</notice>",
    "<consult ><query >not tags</query ></consult >",
    "line one\nline two\n\n\tindented\r\nwindows",
    "   leading and trailing   ",
    "héllo wörld, 日本語, Ελληνικά, emoji 🎉👩‍👩‍👧",
    "Café\u0301 and e\u0301: decomposed accents",
    "\\boxed{\\frac{1}{2}}",
    "it's we're they'll I'm I'd",
    "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n",
    "text<|endoftext|><|pad|>",
    "a , b . c ! d",
]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return ensure_tiny_models(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def built():
    return build_tokenizer(TAGS)


@pytest.fixture(scope="module")
def reloaded(models):
    return AutoTokenizer.from_pretrained(models["policy"])


# --- tokenizer: save and reload -------------------------------------------------------


@pytest.mark.parametrize("text", STRINGS)
def test_ids_identical_after_reload(built, reloaded, text):
    ids = built(text)["input_ids"]
    assert reloaded(text)["input_ids"] == ids
    assert reloaded.decode(ids) == built.decode(ids)


@pytest.mark.parametrize("text", [s for s in STRINGS if s == unicodedata.normalize("NFC", s)])
def test_decode_inverts_encode(reloaded, text):
    assert reloaded.decode(reloaded(text)["input_ids"]) == text


def test_text_is_nfc_normalised_like_qwen(built, reloaded):
    # Decomposed "e" + U+0301 becomes "é": the price of sharing Qwen2Tokenizer's pipeline.
    for tok in (built, reloaded):
        assert tok.decode(tok("e\u0301")["input_ids"]) == "é"


def test_reloaded_pipeline_is_the_built_one(built, reloaded):
    # AutoTokenizer rebuilds a qwen2 folder's pipeline (Qwen2Tokenizer); the built one
    # already is that pipeline, so the serialised backends agree in full.
    assert json.loads(reloaded.backend_tokenizer.to_str()) == json.loads(built.backend_tokenizer.to_str())


_pieces = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=12),
    # Combining accents after letters: the case a pipeline without NFC gets wrong.
    st.sampled_from([*TAGS.single_token_tags(), *SPECIALS, "0", "85-19", "\n", " ", "e\u0301", "a\u0308", "\u0301"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_pieces, max_size=8).map("".join))
def test_ids_identical_after_reload_property(built, reloaded, text):
    ids = built(text)["input_ids"]
    assert reloaded(text)["input_ids"] == ids
    assert reloaded.decode(ids) == built.decode(ids)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.characters(categories=("L", "M", "N", "P", "S", "Zs", "Cc"), exclude_characters="<"), max_size=40))
def test_printable_text_round_trips_up_to_nfc(reloaded, text):
    # No "<": added tokens would split the text before NFC, which can differ from NFC of the whole.
    assert reloaded.decode(reloaded(text)["input_ids"]) == unicodedata.normalize("NFC", text)


# --- tokenizer: special tokens, tags, padding, chat template --------------------------


@pytest.mark.parametrize("tag", TAGS.single_token_tags())
def test_each_tag_is_one_non_special_token(built, reloaded, tag):
    for tok in (built, reloaded):
        ids = tok(tag, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1
        assert ids[0] not in tok.all_special_ids
        assert tok.decode(ids, skip_special_tokens=True) == tag


def test_special_tokens(built, reloaded):
    for tok in (built, reloaded):
        assert tok.eos_token == EOS_TOKEN and tok.pad_token == PAD_TOKEN
        assert tok.pad_token_id != tok.eos_token_id
        assert {tok.convert_tokens_to_ids(s) for s in SPECIALS} <= set(tok.all_special_ids)
        text = f"{IM_START}user\nhi<consult>{IM_END}{EOS_TOKEN}"
        assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == "user\nhi<consult>"
    assert len(reloaded) == len(built) == 256 + len(SPECIALS) + len(TAGS.single_token_tags())


def test_pads_on_the_left_after_reload(reloaded):
    assert reloaded.padding_side == "left"
    batch = reloaded(["1", "123"], padding=True)
    assert batch["input_ids"][0][:2] == [reloaded.pad_token_id] * 2
    assert batch["attention_mask"][0] == [0, 0, 1]


def test_chat_template(built, reloaded):
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "47+38=?"}]
    expected = "<|im_start|>system\nsys<|im_end|>\n<|im_start|>user\n47+38=?<|im_end|>\n<|im_start|>assistant\n"
    for tok in (built, reloaded):
        text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        assert text == expected
        assert tok.apply_chat_template(messages, tokenize=False) == expected.removesuffix("<|im_start|>assistant\n")
        enc = tok.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)
        assert enc["input_ids"] == tok(text, add_special_tokens=False)["input_ids"]
        assert enc["input_ids"][0] == tok.convert_tokens_to_ids(IM_START)


def test_tags_must_not_clash_with_special_tokens():
    with pytest.raises(ValueError, match="collide"):
        build_tokenizer(Tags(notice_open=IM_START))


# --- models ---------------------------------------------------------------------------


def test_folder_layout_and_provenance(models):
    files = set(os.listdir(models["policy"]))
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json", MARKER_FILE} <= files
    marker = read_marker(models["policy"])
    assert marker["key"] == cache_key(POLICY_SPEC, TAGS)
    assert marker["spec"] == dataclasses.asdict(POLICY_SPEC)
    assert marker["tags"] == dataclasses.asdict(TAGS)


@pytest.mark.parametrize(
    ("role", "spec", "low", "high"),
    [("policy", POLICY_SPEC, 3e5, 7e5), ("expert", EXPERT_SPEC, 2e6, 5e6)],
)
def test_config_and_parameter_count(models, role, spec, low, high):
    model = AutoModelForCausalLM.from_pretrained(models[role])
    cfg = model.config
    assert cfg.model_type == "qwen2"
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size) == (
        spec.hidden_size,
        spec.num_hidden_layers,
        spec.intermediate_size,
    )
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight  # tied
    assert low < model.num_parameters() < high
    assert read_marker(models[role])["num_parameters"] == model.num_parameters()


def test_load_policy_generates_with_kv_cache(models):
    model, tok = load_policy(models["policy"], device="cpu")
    gen = model.generation_config
    assert gen.pad_token_id == tok.pad_token_id
    assert set(gen.eos_token_id) == {tok.eos_token_id, tok.convert_tokens_to_ids(IM_END)}
    batch = tok(["1+1=", "<consult><query>85-19</query></consult>"], return_tensors="pt", padding=True)
    prompt_len = batch["input_ids"].shape[1]
    with torch.no_grad():
        cached = model.generate(**batch, max_new_tokens=8, do_sample=False, use_cache=True)
        uncached = model.generate(**batch, max_new_tokens=8, do_sample=False, use_cache=False)
        sampled = model.generate(**batch, max_new_tokens=8, do_sample=True, temperature=1.0, use_cache=True)
    assert cached.shape[1] > prompt_len
    assert torch.equal(cached, uncached)  # the KV cache changes nothing under greedy decoding
    assert sampled.shape[0] == 2 and sampled.shape[1] > prompt_len


def test_load_policy_forces_left_padding(models, tmp_path):
    folder = tmp_path / "right"
    model = AutoModelForCausalLM.from_pretrained(models["policy"])
    model.save_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(models["policy"])
    tok.padding_side = "right"
    tok.save_pretrained(folder)
    assert AutoTokenizer.from_pretrained(folder).padding_side == "right"
    _, loaded = load_policy(folder)
    assert loaded.padding_side == "left"


def test_init_is_deterministic_and_leaves_global_rng_alone(tmp_path):
    small = dataclasses.replace(POLICY_SPEC, num_hidden_layers=1, seed=7)
    rng = torch.get_rng_state()
    a = AutoModelForCausalLM.from_pretrained(build_tiny_model(tmp_path / "a", small)).state_dict()
    assert torch.equal(torch.get_rng_state(), rng)
    b = AutoModelForCausalLM.from_pretrained(build_tiny_model(tmp_path / "b", small)).state_dict()
    c_spec = dataclasses.replace(small, seed=8)
    c = AutoModelForCausalLM.from_pretrained(build_tiny_model(tmp_path / "c", c_spec)).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["model.embed_tokens.weight"], c["model.embed_tokens.weight"])


def test_llama_variant_reloads_unchanged(tmp_path, built):
    spec = dataclasses.replace(POLICY_SPEC, model_type="llama", num_hidden_layers=1)
    folder = build_tiny_model(tmp_path / "llama", spec)
    assert AutoConfig.from_pretrained(folder).model_type == "llama"
    model, tok = load_policy(folder)
    for text in STRINGS:
        assert tok(text)["input_ids"] == built(text)["input_ids"]
    assert model.generate(**tok(["1+1="], return_tensors="pt"), max_new_tokens=3, do_sample=False).shape[1] > 4


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"hidden_size": 130}, "multiple of num_attention_heads"),
        ({"num_key_value_heads": 3}, "multiple of num_key_value_heads"),
        ({"num_hidden_layers": 0}, "num_hidden_layers"),
        ({"model_type": "gpt2"}, "model_type"),
    ],
)
def test_spec_validation(overrides, match):
    with pytest.raises(ValueError, match=match):
        TinyModelSpec(**overrides)


# --- cache and atomic writes ----------------------------------------------------------


def _count_builds(monkeypatch):
    calls = []
    real = build_mod.build_tiny_model

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(build_mod, "build_tiny_model", counting)
    return calls


def _small(seed=0):
    return (
        dataclasses.replace(POLICY_SPEC, num_hidden_layers=1, seed=seed),
        dataclasses.replace(EXPERT_SPEC, hidden_size=64, num_hidden_layers=1, intermediate_size=64),
    )


def test_cache_is_reused(tmp_path, monkeypatch):
    calls = _count_builds(monkeypatch)
    policy, expert = _small()
    first = ensure_tiny_models(tmp_path, policy=policy, expert=expert)
    assert len(calls) == 2 and set(first) == {"policy", "expert"}
    mtime = (first["policy"] / MARKER_FILE).stat().st_mtime_ns
    start = time.perf_counter()
    assert ensure_tiny_models(tmp_path, policy=policy, expert=expert) == first
    assert time.perf_counter() - start < 0.5
    assert len(calls) == 2
    assert (first["policy"] / MARKER_FILE).stat().st_mtime_ns == mtime
    changed = ensure_tiny_models(tmp_path, policy=dataclasses.replace(policy, seed=5), expert=expert)
    assert changed["policy"] != first["policy"] and changed["expert"] == first["expert"]
    assert len(calls) == 3


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("EAPO_CACHE_DIR", str(tmp_path / "env"))
    policy, expert = _small()
    paths = ensure_tiny_models(policy=policy, expert=expert)
    assert all(p.is_relative_to(tmp_path / "env") for p in paths.values())


def test_folder_without_marker_is_rebuilt(tmp_path, monkeypatch):
    policy, expert = _small()
    path = ensure_tiny_models(tmp_path, policy=policy, expert=expert)["policy"]
    (path / MARKER_FILE).unlink()  # as if written by something that died before the end
    (path / "junk").write_text("half-written")
    calls = _count_builds(monkeypatch)
    assert ensure_tiny_models(tmp_path, policy=policy, expert=expert)["policy"] == path
    assert calls == [path]
    assert read_marker(path)["key"] == cache_key(policy, TAGS)
    assert not (path / "junk").exists()


def test_leftover_temp_folders(tmp_path):
    policy, expert = _small()
    root = tmp_path / "tiny-models"
    name = f"policy-{cache_key(policy, TAGS)}"
    stale, fresh = root / f".{name}.tmp-dead0001", root / f".{name}.tmp-live0002"
    for d in (stale, fresh):
        d.mkdir(parents=True)
        (d / "config.json").write_text("{}")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    path = ensure_tiny_models(tmp_path, policy=policy, expert=expert)["policy"]
    assert path == root / name and read_marker(path) is not None
    assert not stale.exists()  # a killed build's leftover is cleared
    assert fresh.exists()  # a build that may be in progress elsewhere is left alone


def test_failed_build_leaves_nothing(tmp_path, monkeypatch):
    def dying(folder, spec, tags):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        raise RuntimeError("killed")

    monkeypatch.setattr(build_mod, "_write_model", dying)
    with pytest.raises(RuntimeError, match="killed"):
        build_tiny_model(tmp_path / "m", _small()[0])
    assert list(tmp_path.iterdir()) == []


def test_build_refuses_to_overwrite_unless_asked(tmp_path):
    spec = _small()[0]
    out = build_tiny_model(tmp_path / "m", spec)
    with pytest.raises(FileExistsError):
        build_tiny_model(out, spec)
    (out / "extra").write_text("x")
    assert build_tiny_model(out, dataclasses.replace(spec, seed=9), overwrite=True) == out
    assert not (out / "extra").exists()
    assert read_marker(out)["spec"]["seed"] == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
