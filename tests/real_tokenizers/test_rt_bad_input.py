"""Bad input with real tokenizers: each fails with an error naming the problem before any
rollout or training step (`eapo.models.checks`), or, for a missing chat template, takes
the documented fallback and says so once."""

from __future__ import annotations

import logging

import pytest
from typer.testing import CliRunner

from eapo.cli.main import app
from eapo.models.build import load_policy
from eapo.models.checks import PolicyCheckError, check_policy
from eapo.protocol.tags import Tags
from eapo.rollout.config import RolloutConfig
from eapo.rollout.engine import RolloutEngine
from eapo.rollout.hf_backend import HFBackend
from eapo.types import Problem

from conftest import build_policy, tokenizer_folder


@pytest.fixture(scope="module")
def short_llama(tmp_path_factory):
    """Llama-3's BPE (128257 tokens) on a 128256-row embedding: one id past the end."""
    return build_policy(tokenizer_folder("llama-bpe"), "llama-bpe", tmp_path_factory.mktemp("short"), vocab_size=128256)


def test_a_vocabulary_smaller_than_the_tokenizer_is_refused_at_load(short_llama):
    with pytest.raises(PolicyCheckError, match="vocabulary is smaller") as err:
        load_policy(short_llama)
    assert "128256" in str(err.value) and "128257" in str(err.value)


def test_rollout_command_names_the_vocabulary_problem(short_llama, tmp_path):
    out = tmp_path / "r.jsonl"
    res = CliRunner().invoke(app, ["rollout", "--policy", str(short_llama), "--out", str(out), "--n", "1",
                                   "--cache-dir", str(tmp_path / "cache")])
    assert res.exit_code == 2, res.output
    assert "vocabulary is smaller" in " ".join(res.output.split()) and not out.exists()


def test_train_command_names_the_vocabulary_problem_before_any_step(short_llama, tmp_path):
    res = CliRunner().invoke(app, ["train", "--model", str(short_llama), "--out", str(tmp_path / "run"),
                                   "--arms", "eapo", "--set", "rl.steps=1"])
    assert res.exit_code == 2, res.output
    assert "vocabulary is smaller" in " ".join(res.output.split())
    assert not list((tmp_path / "run").glob("eapo/checkpoint-*"))


def test_a_tag_the_tokenizer_cannot_round_trip_is_refused():
    """Qwen2 normalizes to NFC: a tag written with a combining accent comes back composed,
    so the parser could never find it in the policy's text."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_folder("qwen2"))
    tags = Tags(answer_open="<re\u0301ponse>", answer_close="</re\u0301ponse>")
    with pytest.raises(PolicyCheckError, match="rollout.tags.answer_open"):
        check_policy(tok, tags=tags)
    with pytest.raises(PolicyCheckError, match="cannot round-trip"):
        RolloutEngine(None, tok, RolloutConfig(tags=tags, consult_mode="forbid"))
    check_policy(tok, tags=Tags())  # the default tags round-trip


@pytest.mark.parametrize("name", ["llama-bpe", "gpt-2", "deepseek-llm"])
def test_no_chat_template_takes_the_fallback_and_says_so_once(name, tmp_path, caplog):
    path = build_policy(tokenizer_folder(name), name, tmp_path / "p")
    with caplog.at_level(logging.INFO, logger="eapo"):
        model, tok = load_policy(path)
        engine = RolloutEngine(HFBackend(model, tok), tok, RolloutConfig(consult_mode="forbid", tokens_per_turn=2))
        engine.run([Problem(id="a", question="1+1?", answer="2")] * 2, step=1, turn_budget=1)
    said = [r for r in caplog.records if "no chat template" in r.getMessage()]
    assert len(said) == 1 and "fallback" in said[0].getMessage()
