"""Fixtures of the real-verl tier (`make test-verl`; skipped where verl is not importable).

verl 0.9.1 pins transformers < 5.11, so this tier runs in its own environment, .venv-verl.
Each module starts with `pytest.importorskip("verl")`; the fixtures import verl lazily so
that this file loads without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
QWEN2 = Path(os.environ.get("EAPO_TOKENIZERS_DIR", REPO.parent / "shared" / "tokenizers")) / "qwen2"


@pytest.fixture(scope="session")
def qwen2_tok():
    if not (QWEN2 / "tokenizer_config.json").exists() and not (QWEN2 / "tokenizer.json").exists():
        pytest.skip(f"the real Qwen2 tokenizer is not at {QWEN2} (../shared/tokenizers/qwen2 or $EAPO_TOKENIZERS_DIR)")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(QWEN2))


@pytest.fixture(scope="session")
def qwen2_model_dir(tmp_path_factory, qwen2_tok):
    """A random-init Qwen2-architecture model folder with the real tokenizer: what verl's
    `actor_rollout_ref.model.path` points at (HFModelConfig reads its config, tokenizer and
    generation config). Its generation config ends generation on <|im_end|> and
    <|endoftext|>, as Qwen2.5-Instruct's does."""
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    d = tmp_path_factory.mktemp("qwen2-tiny")
    eos = [qwen2_tok.convert_tokens_to_ids("<|im_end|>"), qwen2_tok.eos_token_id]
    config = Qwen2Config(vocab_size=len(qwen2_tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=1, intermediate_size=32, max_position_embeddings=4096,
                         eos_token_id=eos, tie_word_embeddings=True)
    Qwen2ForCausalLM(config).save_pretrained(d)
    qwen2_tok.save_pretrained(d)
    GenerationConfig(eos_token_id=eos, pad_token_id=qwen2_tok.pad_token_id).save_pretrained(d)
    return d


@pytest.fixture()
def eapo_yaml(tmp_path, monkeypatch):
    """The EAPO side (VerlEAPOConfig): the protocol's default system prompt (so the real
    chat template renders it), oracle experts, inverse acceptance (rho_1 = 1)."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    path = tmp_path / "eapo.yaml"
    path.write_text("""
total_steps: 100
scorer: integer
pool_factory: "verl_harness:oracle_pool"
acceptance: {kind: inverse}
rollout: {tokens_per_turn: 64, max_policy_tokens: 192, max_completion_tokens: 400}
""")
    return str(path)


@pytest.fixture()
def verl_config(qwen2_model_dir, eapo_yaml, tmp_path):
    """verl's own trainer config (ppo_trainer.yaml, composed by hydra as verl's main does),
    pointing at the tiny model, our agent-loop registry entry and our consult tool."""
    import verl
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    entries = OmegaConf.load(REPO / "examples" / "verl" / "agent_loop.yaml")
    for e in entries:
        e.eapo_config = eapo_yaml
    agent_yaml = tmp_path / "agent_loop.yaml"
    OmegaConf.save(entries, agent_yaml)
    tool_yaml = tmp_path / "consult_tool.yaml"
    tool_yaml.write_text((REPO / "examples" / "verl" / "consult_tool.yaml").read_text()
                         .replace("examples/verl/eapo_dapo_math.yaml", eapo_yaml))
    overrides = [
        f"actor_rollout_ref.model.path={qwen2_model_dir}",
        "actor_rollout_ref.rollout.name=vllm",
        "actor_rollout_ref.rollout.prompt_length=512",
        "actor_rollout_ref.rollout.response_length=400",
        "actor_rollout_ref.rollout.calculate_log_probs=True",
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={agent_yaml}",
        f"actor_rollout_ref.rollout.multi_turn.tool_config_path={tool_yaml}",
        "actor_rollout_ref.rollout.multi_turn.format=hermes",
        "actor_rollout_ref.rollout.multi_turn.max_assistant_turns=4",
    ]
    config_dir = str(Path(verl.__file__).parent / "trainer" / "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        return compose(config_name="ppo_trainer", overrides=overrides)
