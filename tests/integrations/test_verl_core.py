"""The verl integration's verl-free parts, without verl installed (they run in CI).

What must hold: an episode run through verl's server interface has the exact masks and the
policy-token reward of the TRL path; the global step reaches the schedules (verl does not
pass it: our worker injects it, and without it the agent loop refuses to run); the reward
of the tool path ignores answers that only an expert wrote; consultations of a turn go out
at once; the example configuration loads and agrees with its launch script."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import re
import sys
import time
from pathlib import Path

import pytest

from eapo.experts import ExpertPool, OracleExpert
from eapo.integrations.verl.core import (
    ConsultHandler,
    ServerBackend,
    VerlEAPOConfig,
    compute_score,
    episode_output,
    inject_step,
    load_verl_config,
    problem_of,
    schedule_at,
    step_of,
)
from eapo.models.build import TinyModelSpec, build_tiny_model, load_policy
from eapo.rollout.config import RolloutConfig
from eapo.rollout.engine import RolloutEngine
from eapo.schedules.acceptance import AcceptanceConfig
from eapo.schedules.gate import AcceptanceGate
from eapo.tasks.arithmetic import evaluate_chain
from eapo.types import ExpertReply

sys.path.insert(0, str(Path(__file__).parent))
from fake_verl import FakeServerManager  # noqa: E402

sys.path.pop(0)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    spec = TinyModelSpec(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         intermediate_size=32)
    return load_policy(str(build_tiny_model(tmp_path_factory.mktemp("m") / "p", spec)))[1]


def script(text: str) -> str:
    """Consult the whole question twice; then answer the expert's number if one replied
    (and "0" if all were refused)."""
    question = text.split("user\n")[-1].split("<|im_end|>")[0]
    done = text.split("<|im_start|>assistant\n")[-1]
    if "<expert" not in done:
        return f"hm <consult><query>{question}</query><query>again {question}</query></consult>"
    replies = re.findall(r'<expert id="\d">(\d+)</expert>', done)
    return f" <answer>{replies[0] if replies else 0}</answer>"


def cfg(**kw) -> VerlEAPOConfig:
    return VerlEAPOConfig(rollout=RolloutConfig(system_prompt="", tokens_per_turn=40, max_policy_tokens=120,
                                                max_completion_tokens=240),
                          acceptance=AcceptanceConfig(kind="inverse"), total_steps=100, pool_factory="unused:x", **kw)


def run_episodes(tok, c, samples, server, pool):
    """What EAPOAgentLoop.run does, per sample, with the verl-free pieces."""
    async def one(kwargs, executor):
        step, copy, validate = step_of(kwargs)
        problem = problem_of(kwargs)
        sched = schedule_at(c, step, validate=validate)
        uid = f"s{step}-{problem.id}-{copy}"
        backend = ServerBackend(server, asyncio.get_running_loop(), uid, tok, {"temperature": 0.7, "top_p": 1.0},
                                [tok.eos_token_id])
        engine = RolloutEngine(backend, tok, c.rollout, pool=pool, scorer="integer",
                               gate=AcceptanceGate(seed=c.seed, granularity=c.acceptance.granularity))
        [ep] = await asyncio.get_running_loop().run_in_executor(executor, lambda: engine.run(
            [problem], step=step, uids=[uid], rhos=[sched.rho], turn_budget=sched.turn_budget))
        return ep

    async def main():
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            return await asyncio.gather(*[one(s, ex) for s in samples])

    return asyncio.run(main())


def sample(question, gold, step, copy, index="p0"):
    return inject_step({"raw_prompt": [{"role": "user", "content": question}],
                        "reward_model": {"ground_truth": gold}, "extra_info": {"index": index}},
                       {"step": step, "rollout_n": copy, "validate": False})


def test_episodes_through_verls_server_interface(tok):
    pool = ExpertPool([OracleExpert(lambda r: str(evaluate_chain(r.query.removeprefix("again ")))),
                       OracleExpert(lambda r: "999")])
    server = FakeServerManager(tok, script)
    c = cfg()
    eps = run_episodes(tok, c, [sample("12+30", "42", 4, n) for n in range(8)], server, pool)
    # the step reached the schedule: rho_4 = 1/4 on every call, coins keyed on s4-p0-<copy>
    calls = [call for ep in eps for call in ep.calls]
    assert calls and all(call.rho == 0.25 for call in calls)
    assert 0 < sum(call.accepted for call in calls) < len(calls)
    gate = AcceptanceGate(seed=0)
    for n, ep in enumerate(eps):
        assert ep.uid == f"s4-p0-{n}"
        assert [call.accepted for call in ep.calls] == [gate.decide(ep.uid, call.query, i, 0.25)[0]
                                                        for i, call in enumerate(ep.calls)]
        out = episode_output(ep, response_length=1000)
        assert len(out["response_ids"]) == len(out["response_mask"]) == len(out["response_logprobs"])
        assert out["response_mask"] == ep.loss_mask and out["reward_score"] == ep.reward
        assert all(lp == -0.5 for lp, m in zip(out["response_logprobs"], out["response_mask"]) if m)
        assert all(lp == 0.0 for lp, m in zip(out["response_logprobs"], out["response_mask"]) if not m)
        # the reward is the policy's: right only when it copied the right expert's number
        first = next((c.reply for c in ep.calls if c.accepted), None)
        assert ep.reward == (1.0 if first == "42" else 0.1)
    # verl's temperature is kept (it recomputes log-probs at it); our limits and stops are added
    # (the eight episodes run in threads, so requests arrive in any order)
    assert {r["request_id"] for r in server.requests} == {f"s4-p0-{n}" for n in range(8)}
    req = next(r for r in server.requests if r["request_id"] == "s4-p0-0")
    assert req["temperature"] == 0.7 and req["max_tokens"] == 40 and req["logprobs"] is True
    assert tok.eos_token_id in req["stop_token_ids"]


def test_episode_output_is_cut_to_verls_response_length(tok):
    pool = ExpertPool([OracleExpert(lambda r: "7")])
    [ep] = run_episodes(tok, cfg(), [sample("3+4", "7", 1, 0)], FakeServerManager(tok, script), pool)
    out = episode_output(ep, response_length=10)
    assert len(out["response_ids"]) == len(out["response_mask"]) == len(out["response_logprobs"]) == 10


def test_the_agent_loop_refuses_to_run_without_the_step():
    with pytest.raises(RuntimeError, match="EAPOAgentLoopManager"):
        step_of({"raw_prompt": []})
    assert step_of(inject_step({}, {"step": 3, "rollout_n": 1, "validate": True})) == (3, 1, True)


def test_schedules_at_verls_step_and_at_validation():
    c = cfg()
    assert schedule_at(c, 1, validate=False).rho == 1.0 and schedule_at(c, 10, validate=False).rho == 0.1
    assert schedule_at(c, 0, validate=False).rho == 1.0  # verl's step before the first update
    v = schedule_at(c, 50, validate=True)
    assert v.rho == 0.0 and v.turn_budget == c.turn_budget.eval


@pytest.mark.parametrize("response, gold, reward", [
    ('<answer>7</answer>', "7", 1.0),
    ('I ask <expert id="0"><answer>7</answer></expert> and stop', "7", 0.0),
    ('<expert id="1">the answer is 7</expert> so <answer>8</answer>', "7", 0.1),
    (r'<expert id="2">\boxed{7}</expert> hence \boxed{7}', "7", 1.0),
    (r'<expert id="2">\boxed{7}</expert> <notice>answer now</notice>', "7", 0.0),
])
def test_tool_path_reward_reads_only_the_policys_text(response, gold, reward):
    assert compute_score("dapo", response, gold) == reward


def test_consult_handler_gates_at_the_step_and_asks_at_once():
    class Slow:
        name = "slow"

        async def ask(self, request):
            await asyncio.sleep(0.3)
            return ExpertReply(text=f"re:{request.query}")

    handler = ConsultHandler(cfg(), ExpertPool([Slow(), Slow(), Slow()], timeout_s=5))
    t0 = time.perf_counter()
    text, m = asyncio.run(handler.consult(episode_uid="s1-e", problem="p", queries=["a", "b", "c", "d"],
                                          asked_before=0, step=1, validate=False))
    assert time.perf_counter() - t0 < 0.8  # three calls of 0.3 s, concurrently
    assert m["queries"] == 3 and m["accepted"] == 3  # K = 3, rho_1 = 1
    assert [line for line in text.strip().splitlines()] == [
        '<expert id="0">re:a</expert>', '<expert id="1">re:b</expert>', '<expert id="2">re:c</expert>']
    text, m = asyncio.run(handler.consult(episode_uid="s1-e", problem="p", queries=["a"], asked_before=0,
                                          step=1, validate=True))
    assert "experts unavailable" in text and "accepted" not in m
    gate = AcceptanceGate(seed=0)
    _, m = asyncio.run(handler.consult(episode_uid="s20-e", problem="p", queries=["a", "b", "c"], asked_before=3,
                                       step=20, validate=False))
    assert m["rho"] == 0.05
    assert m["accepted"] == sum(gate.decide("s20-e", q, 3 + j, 0.05)[0] for j, q in enumerate("abc"))


def test_the_consult_tool_refuses_bare_consultations():
    bare = dataclasses.replace(cfg(), rollout=dataclasses.replace(cfg().rollout, consult_style="bare"))
    with pytest.raises(ValueError, match="agent loop"):
        ConsultHandler(bare, None)


def test_open_consulting_needs_experts():
    with pytest.raises(ValueError, match="experts"):
        VerlEAPOConfig()


def test_example_configuration_loads_and_agrees_with_its_launch_script():
    c = load_verl_config(str(REPO / "examples" / "verl" / "eapo_dapo_math.yaml"))
    assert len(c.experts) == 3 and c.rollout.max_queries == 3 and c.acceptance.kind == "inverse"
    assert c.turn_budget.train == 10 and c.rollout.tags.allow_boxed
    script_text = (REPO / "examples" / "verl" / "run_dapo_math_7b.sh").read_text()
    overrides = dict(re.findall(r"^\s+\+?([\w.]+)=(\S+) \\$", script_text, flags=re.M))
    assert int(overrides["trainer.total_training_steps"]) == c.total_steps
    assert c.rollout.max_completion_tokens <= int(overrides["data.max_response_length"])
    assert overrides["actor_rollout_ref.rollout.agent.agent_loop_manager_class"].endswith("EAPOAgentLoopManager")
    assert dataclasses.replace(c, pool_factory=None).experts[0].options["max_tokens"] == 8192
