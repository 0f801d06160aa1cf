"""EAPO inside verl's multi-turn agent-loop rollout (optional: `pip install eapo[verl]`).

- `agent_loop.EAPOAgentLoop` (registered as "eapo_agent"): the EAPO episode of
  `eapo.rollout.engine.RolloutEngine`, generating through verl's servers, reward from
  policy tokens; `agent_loop.EAPOAgentLoopManager`/`EAPOAgentLoopWorker` pass verl's global
  step to it (and to the consult tool).
- `tool.EAPOConsultTool`: the consultation as a verl tool, for verl's stock `tool_agent`
  loop with function calling; pair it with `core.compute_score` as the reward.
- `core`: the verl-free parts (config, backend, step injection, reward), tested without verl.

Example configuration for the paper's setting: examples/verl/. What was and was not run:
docs/SCALING.md.
"""
