"""Our verl classes against verl 0.9.1's installed ones: bases, signatures, return types,
registration, pickling; and our fake of verl (tests/integrations/fake_verl.py, which the
main suite runs without verl) against the real interface it copies."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import pickle
import sys
from pathlib import Path

import pytest

pytest.importorskip("verl", reason="verl is not installed (make test-verl builds .venv-verl with it)")

from verl.experimental.agent_loop.agent_loop import (  # noqa: E402
    AgentLoopBase,
    AgentLoopManager,
    AgentLoopOutput,
    AgentLoopWorker,
)
from verl.tools.base_tool import BaseTool  # noqa: E402
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse  # noqa: E402
from verl.workers.rollout.llm_server import LLMServerClient  # noqa: E402
from verl.workers.rollout.replica import TokenOutput  # noqa: E402

from eapo.integrations.verl import agent_loop as al  # noqa: E402
from eapo.integrations.verl import tool as tl  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fake_verl  # noqa: E402

sys.path.pop(0)


def params(fn):
    """A signature without annotations: (name, kind, default) per parameter."""
    fn = inspect.unwrap(fn)
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def test_agent_loop_is_a_concrete_agent_loop_base_with_verls_run_signature():
    cls = al.EAPOAgentLoop
    assert issubclass(cls, AgentLoopBase) and not inspect.isabstract(cls)
    assert inspect.iscoroutinefunction(cls.run)
    assert params(cls.run) == params(AgentLoopBase.run)  # (self, sampling_params, **kwargs)
    assert inspect.signature(inspect.unwrap(cls.run)).return_annotation in (AgentLoopOutput, "AgentLoopOutput")
    assert cls.run is not inspect.unwrap(cls.run)  # traced, as verl's loops are (rollout_trace_op)
    # verl's worker instantiates every agent loop with these keywords (AgentLoopWorker._run_agent_loop)
    src = inspect.getsource(AgentLoopWorker._run_agent_loop)
    for kw in ("trainer_config", "server_manager", "tokenizer", "processor", "hf_model_type", "dataset_cls",
               "data_config", "tools"):
        assert f"{kw}=" in src
    sig = inspect.signature(cls.__init__)
    sig.bind(object(), trainer_config=1, server_manager=2, tokenizer=3, processor=4, hf_model_type="qwen2",
             dataset_cls=5, data_config=6, tools=7, eapo_config="x.yaml")
    base = inspect.signature(AgentLoopBase.__init__)
    base.bind(object(), trainer_config=1, server_manager=2, tokenizer=3, processor=4, hf_model_type="qwen2",
              dataset_cls=5, data_config=6, tools=7)  # what super().__init__ receives (tools via **kwargs)


def test_agent_loop_yaml_entry_registers_as_verls_worker_loads_it():
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    repo = Path(__file__).resolve().parents[3]
    [entry] = OmegaConf.load(repo / "examples" / "verl" / "agent_loop.yaml")
    assert entry.name == "eapo_agent" and get_class(entry._target_) is al.EAPOAgentLoop


def test_worker_and_manager_subclass_verls_and_keep_its_signatures():
    assert issubclass(al.EAPOAgentLoopWorker, AgentLoopWorker)
    assert params(al.EAPOAgentLoopWorker._run_agent_loop) == params(AgentLoopWorker._run_agent_loop)
    assert issubclass(al.EAPOAgentLoopManager, AgentLoopManager)
    # AgentLoopManager.__init__ keeps a subclass's agent_loop_workers_class (hasattr check)
    assert "hasattr(self, \"agent_loop_workers_class\")" in inspect.getsource(AgentLoopManager.__init__)
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"actor_rollout_ref": {"rollout": {}, "model": {}}})
    m = al.EAPOAgentLoopManager(cfg, llm_client=None)  # no Ray call before create()/_init_agent_loop_workers
    assert m.agent_loop_workers_class.__ray_metadata__.modified_class.__name__ == "EAPOAgentLoopWorker"
    # Ray and hydra find the classes by module and name
    for cls in (al.EAPOAgentLoop, al.EAPOAgentLoopWorker, al.EAPOAgentLoopManager, tl.EAPOConsultTool):
        assert pickle.loads(pickle.dumps(cls)) is cls


def test_consult_tool_matches_base_tool(tmp_path, eapo_yaml):
    cls = tl.EAPOConsultTool
    assert issubclass(cls, BaseTool)
    for name in ("create", "execute", "release", "calc_reward"):
        ours, base = getattr(cls, name), getattr(BaseTool, name)
        assert inspect.iscoroutinefunction(ours), name
        assert [p[:2] for p in params(ours)] == [p[:2] for p in params(base)], name
    assert cls.execute is not inspect.unwrap(cls.execute)  # rollout_trace_op, as BaseTool.execute
    tool = cls({"type": "native", "eapo_config": eapo_yaml})
    assert isinstance(tool.tool_schema, OpenAIFunctionToolSchema) and tool.name == "consult"
    assert tool.get_openai_tool_schema().function.parameters.required == ["queries"]

    async def calls():
        # as ToolAgentLoop._call_tool calls it, and the BaseTool defaults (instance_id given)
        iid, created = await tool.create(create_kwargs={"eapo_global_step": 1})
        iid2, _ = await tool.create("mine")
        resp, reward, metrics = await tool.execute(iid, {"queries": ["2+3"]})
        score = await tool.calc_reward(iid)
        released = await tool.release(iid)
        return iid, created, iid2, resp, reward, metrics, score, released

    iid, created, iid2, resp, reward, metrics, score, released = asyncio.run(calls())
    assert isinstance(iid, str) and isinstance(created, ToolResponse) and iid2 == "mine"
    assert isinstance(resp, ToolResponse) and resp.text.strip() == '<expert id="0">5</expert>'
    assert isinstance(reward, float) and isinstance(metrics, dict) and score == 0.0 and released is None


def test_fake_server_manager_has_the_real_generate_signature():
    assert params(fake_verl.FakeServerManager.generate) == params(LLMServerClient.generate)
    assert inspect.iscoroutinefunction(fake_verl.FakeServerManager.generate)


def test_fake_token_output_has_the_real_fields():
    def default(f):
        if f.default is not dataclasses.MISSING:
            return f.default
        return f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING

    fake = {f.name: default(f) for f in dataclasses.fields(fake_verl.TokenOutput)}
    real = {name: (f.get_default(call_default_factory=True) if not f.is_required() else dataclasses.MISSING)
            for name, f in TokenOutput.model_fields.items()}
    assert list(fake) == list(real)
    assert {k: v for k, v in fake.items() if k != "token_ids"} == {k: v for k, v in real.items() if k != "token_ids"}
