"""The consultation as a verl tool, for verl's stock `tool_agent` loop (function calling).

The policy calls `consult(queries=[...])`; each query is gated at the step's acceptance
rate (the step arrives through `create_kwargs`, put there by `EAPOAgentLoopWorker`), the
accepted ones go to the expert pool at once (all samples of a worker share the pool and its
event loop, so a batch's consultations overlap), and the reply comes back as EAPO's
observation text (`<expert id="i">...</expert>` per query). verl then appends it as a tool
message with mask 0.

Two things the EAPO agent loop does and this path cannot: keep token ids as the record
(verl re-renders tool messages through the chat template) and compute the reward from
policy tokens (verl's reward function sees the decoded response). For the second, set
verl's custom reward function to `eapo.integrations.verl.core.compute_score`, which
deletes the observation blocks before parsing the answer.

Tool config (verl `tool_config_path`):
    tools:
      - class_name: eapo.integrations.verl.tool.EAPOConsultTool
        config: {type: native, eapo_config: examples/verl/eapo_dapo_math.yaml}
"""

from __future__ import annotations

import functools
from typing import Any
from uuid import uuid4

from eapo.integrations.verl.core import ConsultHandler, step_of
from eapo.integrations.verl.shared import shared_state


def __getattr__(name: str) -> Any:
    """`EAPOConsultTool` is built on first use, so this module imports without verl."""
    if name == "EAPOConsultTool":
        return _tool_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def consult_schema(k: int) -> Any:
    from verl.tools.schemas import OpenAIFunctionToolSchema

    return OpenAIFunctionToolSchema.model_validate({
        "type": "function",
        "function": {
            "name": "consult",
            "description": f"Ask up to {k} expert models questions at once. Each answer may be withheld; "
                           "then go on alone.",
            "parameters": {"type": "object", "required": ["queries"], "properties": {
                "queries": {"type": "array", "description": f"1 to {k} self-contained questions"}}},
        },
    })


@functools.cache
def _tool_class() -> type:
    try:
        from verl.tools.base_tool import BaseTool
        from verl.tools.schemas import ToolResponse
        from verl.utils.rollout_trace import rollout_trace_op
    except ImportError as e:
        raise ImportError(f"the EAPO consult tool needs verl (pip install 'eapo[verl]'): {e}") from e

    class EAPOConsultTool(BaseTool):
        def __init__(self, config: dict, tool_schema: Any = None) -> None:
            self.eapo, self.pool, _ = shared_state(str(config["eapo_config"]), tuple(config.get("overrides", ())))
            super().__init__(config, tool_schema or consult_schema(self.eapo.rollout.max_queries))
            self.handler = ConsultHandler(self.eapo, self.pool)
            self._instances: dict[str, dict[str, Any]] = {}

        async def create(self, instance_id: str | None = None, **kwargs: Any) -> tuple[str, Any]:
            instance_id = instance_id or uuid4().hex
            self._instances[instance_id] = dict(kwargs.get("create_kwargs") or {})
            return instance_id, ToolResponse()

        @rollout_trace_op  # as BaseTool.execute
        async def execute(self, instance_id: str, parameters: dict[str, Any], **kwargs: Any) -> tuple[Any, float, dict]:
            step, _, validate = step_of(self._instances.get(instance_id, {}))
            agent_data = kwargs.get("agent_data")
            extra = agent_data.extra_fields if agent_data is not None else {}
            uid = f"s{step}-{getattr(agent_data, 'request_id', instance_id)}"
            problem = next((m["content"] for m in getattr(agent_data, "messages", []) if m.get("role") == "user"), "")
            queries = parameters.get("queries") or []
            if isinstance(queries, str):
                queries = [queries]
            asked = int(extra.get("eapo_asked", 0))
            text, metrics = await self.handler.consult(episode_uid=uid, problem=str(problem), queries=list(queries),
                                                       asked_before=asked, step=step, validate=validate)
            extra["eapo_asked"] = asked + int(metrics.get("queries", 0))
            return ToolResponse(text=text), 0.0, metrics

        async def release(self, instance_id: str, **kwargs: Any) -> None:
            self._instances.pop(instance_id, None)

    EAPOConsultTool.__module__, EAPOConsultTool.__qualname__ = __name__, "EAPOConsultTool"
    return EAPOConsultTool
