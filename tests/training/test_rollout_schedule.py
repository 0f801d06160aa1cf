"""TRL's rollout on the one schedule path (`eapo.schedules.step`): at each global step it
gates with `Schedules.at(step).rho` (or the adaptive overlay of it), the engine zeroes it
unless consulting is open, and the coins are the run's gate drawn as before.

Pinned values were recorded with the code before the schedule path was shared (issue 18
item 2): changing them means a run decides differently for the same seed."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace
from typing import Any

import pytest

from eapo.experts.oracle import OracleExpert
from eapo.experts.pool import ExpertPool
from eapo.models.tokenizer import build_tokenizer
from eapo.rollout.config import RolloutConfig
from eapo.rollout.engine import RolloutEngine
from eapo.rollout.fake_backend import ScriptedBackend
from eapo.schedules.acceptance import AcceptanceConfig, acceptance_rate
from eapo.schedules.adaptive import AdaptiveConfig, ProblemHistory
from eapo.schedules.budget import TurnBudgetConfig
from eapo.schedules.gate import AcceptanceGate
from eapo.schedules.penalty import PenaltyConfig
from eapo.schedules.step import acceptance_gate
from eapo.training.rollout_func import EAPORollout
from eapo.types import Problem

PROBLEMS = [Problem(id=f"p{i}", question=f"{10 + i}+{20 + i}", answer=str(30 + 2 * i)) for i in range(3)]


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


@pytest.fixture()
def no_unwrap(monkeypatch):
    """The scripted backend needs no model: skip TRL's unwrapping of the (absent) model."""
    import eapo.training.rollout_func as rf

    monkeypatch.setattr(rf, "generation_model", lambda trainer: contextlib.nullcontext(None))
    monkeypatch.setattr(rf, "needs_lockstep", lambda trainer: False)


def trainer_at(step: int) -> Any:
    return SimpleNamespace(state=SimpleNamespace(global_step=step - 1), use_vllm=False)


def make_rollout(tok, *, mode="open", granularity="question", history=None, seed=0):
    """Consult twice in the first turn, then answer the expert's number (or 0)."""

    def script(ctx, call):
        done = tok.decode(ctx)
        if "<expert" in done or "unavailable" in done:
            return tok.encode(" <answer>0</answer>", add_special_tokens=False)
        return tok.encode("<consult><query>sum?</query><query>check</query></consult>", add_special_tokens=False)

    acceptance = AcceptanceConfig(kind="linear", granularity=granularity)
    engine = RolloutEngine(None, tok, RolloutConfig(system_prompt="", consult_mode=mode, answer_now_notice=False),
                           pool=ExpertPool([OracleExpert(lambda r: "7")]), scorer="integer",
                           gate=acceptance_gate(acceptance, seed), seed=seed)
    return EAPORollout(engine, PROBLEMS, acceptance=acceptance, budget=TurnBudgetConfig(train=4, eval=2),
                       penalty=PenaltyConfig(coef=0.1, kind="inverse"), total_steps=5, history=history,
                       backend_factory=lambda model, t: ScriptedBackend(script, (t.eos_token_id,)))


def calls(rollout) -> list[list[tuple[bool, float, str]]]:
    return [[(c.accepted, c.rho, c.reason) for c in ep.calls] for ep in rollout.last_episodes]


# accepted replies per step (6 episodes x 2 queries), recorded before the change with
# seed 0 and uids s{step}-p{i}-{copy}
PINNED = {"question": [12, 8, 4, 3, 0], "reply": [12, 9, 5, 2, 0], "episode": [12, 12, 10, 6, 0]}


@pytest.mark.parametrize("granularity", sorted(PINNED))
def test_each_step_gates_at_the_schedules_rho_with_the_runs_coins(tok, no_unwrap, granularity):
    rollout = make_rollout(tok, granularity=granularity)
    prompts = [p.question for p in PROBLEMS for _ in range(2)]
    accepted = []
    for step in range(1, 6):
        out = rollout(prompts, trainer_at(step))
        rho = acceptance_rate(step, rollout.acceptance, 5)  # the formula before the path was shared
        assert rho == (5 - step) / 4  # linear 1 -> 0 over 5 steps
        metrics = out["eapo_metrics"][0]
        assert (metrics["schedule/rho"], metrics["schedule/turn_budget"], metrics["schedule/penalty_coef"]) == (
            rollout.schedule(step)["rho"], rollout.schedule(step)["turn_budget"], rollout.schedule(step)["penalty_coef"])
        assert metrics["schedule/turn_budget"] == [4.0, 4.0, 3.0, 3.0, 2.0][step - 1]  # 3.5 rounds half up
        assert metrics["schedule/penalty_coef"] == pytest.approx(0.1 / step)
        old_gate = AcceptanceGate(seed=0, granularity=granularity)  # how run.py built it before
        for ep in rollout.last_episodes:
            assert [c.rho for c in ep.calls] == [rho, rho]
            assert [c.accepted for c in ep.calls] == [old_gate.decide(ep.uid, c.query, i, rho)[0]
                                                      for i, c in enumerate(ep.calls)]
        accepted.append([[c.accepted for c in ep.calls] for ep in rollout.last_episodes])
    assert [sum(map(sum, a)) for a in accepted] == PINNED[granularity]


def test_a_closed_consult_mode_gates_everything_at_zero(tok, no_unwrap):
    # self-exploratory RL (or any mode but "open"): rho 0 for every episode, even with an
    # adaptive history that would open the problem, and the engine says why
    rollout = make_rollout(tok, mode="refuse", history=ProblemHistory(AdaptiveConfig()))
    rollout([p.question for p in PROBLEMS], trainer_at(1))
    assert calls(rollout) == [[(False, 0.0, "locked")] * 2] * len(PROBLEMS)
    assert rollout.engine.rates([0.3, 1.0], 2) == [0.0, 0.0] and not rollout.engine.consult_open


def test_the_adaptive_overlay_combines_with_the_schedules_rho(tok, no_unwrap):
    history = ProblemHistory(AdaptiveConfig(open_rho=0.5, combine="min"))
    history.record("p0", success=True, aided=False)  # p0 solved alone: closed
    rollout = make_rollout(tok, history=history)
    rollout([p.question for p in PROBLEMS], trainer_at(4))  # rho_4 = 0.25
    assert [[c[1] for c in ep] for ep in calls(rollout)] == [[0.0, 0.0], [0.25, 0.25], [0.25, 0.25]]
    assert rollout.engine.rates([0.3, 1.0], 2) == [0.3, 1.0] and rollout.engine.consult_open
