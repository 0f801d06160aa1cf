"""The verl adapter against verl itself (0.9.1): skipped where verl is not installed.

verl pins transformers < 5.11, so it lives in its own environment (FACTS.md); these tests
ran there on CPU (docs/SCALING.md has the command). They use verl's real classes: the agent
loop is built by hydra from our agent_loop.yaml entry exactly as verl's worker builds it,
runs against a fake of verl's server interface (tests/integrations/fake_verl.py), and returns
verl's `AgentLoopOutput`; the worker subclass injects the step; the consult tool is loaded
by verl's tool registry from our tool YAML and called as verl's tool agent calls it; the
launch script's overrides compose against verl's own config schema. Not run: Ray actors,
GPUs, vLLM/SGLang servers, a training step.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

verl = pytest.importorskip("verl")

from omegaconf import OmegaConf  # noqa: E402

from eapo.integrations.verl.core import inject_step  # noqa: E402
from eapo.models.build import TinyModelSpec, build_tiny_model, load_policy  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import fake_verl  # noqa: E402

sys.path.pop(0)

REPO = Path(__file__).resolve().parents[2]


def oracle_pool(cfg):
    """pool_factory for the test config: two oracle experts for the chain task."""
    from eapo.experts import ExpertPool, OracleExpert
    from eapo.tasks.arithmetic import evaluate_chain

    return ExpertPool([OracleExpert(lambda r: str(evaluate_chain(r.query)), name=f"o{i}") for i in range(2)])


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    spec = TinyModelSpec(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         intermediate_size=32)
    return load_policy(str(build_tiny_model(tmp_path_factory.mktemp("m") / "p", spec)))[1]


@pytest.fixture()
def eapo_yaml(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    path = tmp_path / "eapo.yaml"
    path.write_text("""
total_steps: 100
scorer: integer
pool_factory: "test_verl_adapter:oracle_pool"
acceptance: {kind: inverse}
rollout: {system_prompt: "", tokens_per_turn: 40, max_policy_tokens: 120, max_completion_tokens: 240}
""")
    return str(path)


def script(text: str) -> str:
    question = text.split("user\n")[-1].split("<|im_end|>")[0]
    done = text.split("<|im_start|>assistant\n")[-1]
    if "<expert" not in done:
        return f"hm <consult><query>{question}</query></consult>"
    got = re.findall(r'<expert id="\d">(\d+)</expert>', done)
    return f" <answer>{got[0] if got else 0}</answer>"


def build_agent_loop(tok, eapo_yaml, server):
    """As verl's AgentLoopWorker._run_agent_loop does: hydra.utils.instantiate on the
    registry entry of agent_loop.yaml."""
    import hydra
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap
    from verl.utils.dataset.rl_dataset import RLHFDataset

    [entry] = OmegaConf.load(REPO / "examples" / "verl" / "agent_loop.yaml")
    entry.eapo_config = eapo_yaml
    config = OmegaConf.create({"actor_rollout_ref": {"rollout": {"prompt_length": 256, "response_length": 200}},
                               "data": {}})
    return hydra.utils.instantiate(config=entry, trainer_config=DictConfigWrap(config=config), server_manager=server,
                                   tokenizer=tok, processor=None, hf_model_type="qwen2", dataset_cls=RLHFDataset,
                                   data_config=DictConfigWrap(config.data), tools=ToolListWrap([]))


def test_eapo_agent_loop_returns_verls_output_with_policy_token_reward(tok, eapo_yaml):
    from verl.experimental.agent_loop.agent_loop import AgentLoopOutput
    from verl.workers.rollout.replica import TokenOutput

    server = fake_verl.FakeServerManager(tok, script, token_output=TokenOutput)

    async def main():
        loop = build_agent_loop(tok, eapo_yaml, server)
        samples = [inject_step({"raw_prompt": [{"role": "user", "content": "12+30"}],
                                "reward_model": {"ground_truth": "42"}, "extra_info": {"index": "p7"}},
                               {"step": 2, "rollout_n": n, "validate": False}) for n in range(6)]
        return await asyncio.gather(*[loop.run({"temperature": 1.0, "top_p": 1.0, "logprobs": True}, **s)
                                      for s in samples])

    outs = asyncio.run(main())
    for n, out in enumerate(outs):
        assert isinstance(out, AgentLoopOutput)
        assert len(out.response_ids) == len(out.response_mask) == len(out.response_logprobs) <= 200
        assert out.extra_fields["eapo_rho"] == 0.5 and out.extra_fields["eapo_step"] == 2  # rho_2 = 1/2
        accepted = out.extra_fields["eapo_accepted"] > 0
        assert out.reward_score == (1.0 if accepted else 0.1)
        d = out.as_dict()  # what verl batches: rm_scores carries our reward on the last token
        assert float(d["rm_scores"][-1]) == pytest.approx(out.reward_score) and int(d["response_mask"].sum()) < len(out.response_ids)
    assert {out.extra_fields["eapo_accepted"] > 0 for out in outs} == {True, False}
    assert {r["request_id"] for r in server.requests} == {f"s2-p7-{n}" for n in range(6)}


def test_validation_locks_consulting(tok, eapo_yaml):
    server = fake_verl.FakeServerManager(tok, script)

    async def main():
        loop = build_agent_loop(tok, eapo_yaml, server)
        s = inject_step({"raw_prompt": [{"role": "user", "content": "1+2"}], "reward_model": {"ground_truth": "3"}},
                        {"step": 9, "rollout_n": 0, "validate": True})
        return await loop.run({"temperature": 0.0}, **s)

    out = asyncio.run(main())
    assert out.extra_fields["eapo_rho"] == 0.0 and out.extra_fields["eapo_accepted"] == 0
    assert "expert unavailable" in tok.decode(out.response_ids)  # the refusal, under eval_lock=refuse


def test_worker_passes_the_step_to_agent_loops_and_consult_tools(eapo_yaml, monkeypatch):
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker

    from eapo.integrations.verl.agent_loop import EAPOAgentLoopWorker
    from eapo.integrations.verl.tool import EAPOConsultTool

    seen = {}

    async def parent(self, sampling_params, trajectory, *, agent_name, trace=True, **kwargs):
        seen.update(kwargs)

    monkeypatch.setattr(AgentLoopWorker, "_run_agent_loop", parent)
    worker = object.__new__(EAPOAgentLoopWorker)  # no Ray, no servers: only the override runs
    worker.tools = [EAPOConsultTool({"type": "native", "eapo_config": eapo_yaml})]
    asyncio.run(worker._run_agent_loop({}, {"step": 5, "rollout_n": 3, "validate": False, "sample_index": 0},
                                       agent_name="tool_agent", raw_prompt=[], tools_kwargs={}))
    assert seen["eapo_global_step"] == 5 and seen["eapo_rollout_n"] == 3
    assert seen["tools_kwargs"]["consult"]["create_kwargs"]["eapo_global_step"] == 5


def test_consult_tool_loads_through_verls_registry_and_answers(tmp_path, eapo_yaml):
    from verl.experimental.agent_loop.tool_agent_loop import AgentData
    from verl.tools.tool_registry import initialize_tools_from_config

    tool_yaml = tmp_path / "tools.yaml"
    tool_yaml.write_text((REPO / "examples" / "verl" / "consult_tool.yaml").read_text()
                         .replace("examples/verl/eapo_dapo_math.yaml", eapo_yaml))
    [tool] = initialize_tools_from_config(str(tool_yaml))
    assert tool.name == "consult"

    async def main():
        data = AgentData(messages=[{"role": "user", "content": "5+6"}], image_data=None, video_data=None,
                         audio_data=None, mm_processor_kwargs=None, metrics={}, request_id="req1", tools_kwargs={})
        iid, _ = await tool.create(create_kwargs={"eapo_global_step": 1})
        resp, reward, metrics = await tool.execute(iid, {"queries": ["5+6", "6+5"]}, agent_data=data)
        await tool.release(iid)
        return resp, metrics, data

    resp, metrics, data = asyncio.run(main())
    assert resp.text.strip().splitlines() == ['<expert id="0">11</expert>', '<expert id="1">11</expert>']
    assert metrics["accepted"] == 2 and data.extra_fields["eapo_asked"] == 2


def test_launch_script_overrides_fit_verls_config_schema():
    from hydra import compose, initialize_config_dir

    text = (REPO / "examples" / "verl" / "run_dapo_math_7b.sh").read_text().replace("$DATA", "/data")
    overrides = re.findall(r"^\s+(\+?[\w.]+=\S+) \\$", text, flags=re.M)
    assert len(overrides) > 40
    config_dir = str(Path(verl.__file__).parent / "trainer" / "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        cfg = compose(config_name="ppo_trainer", overrides=overrides)  # unknown keys raise
    rollout = cfg.actor_rollout_ref.rollout
    assert rollout.agent.agent_loop_manager_class.endswith("EAPOAgentLoopManager")
    assert rollout.response_length == 14336 and rollout.agent.default_agent_loop == "eapo_agent"
    assert cfg.actor_rollout_ref.actor.clip_ratio_high == 0.28
