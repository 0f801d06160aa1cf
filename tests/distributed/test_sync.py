"""The cross-process parts of the EAPO rollout, with threads standing in for processes.

`ThreadGroup` implements `Collective.all_gather_object` with a barrier, so several
`EAPORollout`s can run "on different ranks" inside one test process in a fraction of a
second. What must hold: a global batch split over ranks (a group straddling two of them)
gives exactly the episodes, rewards, metrics and adaptive history of one rank running the
whole batch; and under lockstep every rank makes the same number of generate calls however
many turns its own episodes need.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest

from eapo.distributed.collective import LocalCollective
from eapo.distributed.generation import LockstepBackend
from eapo.distributed.sync import gather_step, global_uids, merge_history, step_metrics, summarize
from eapo.experts import ExpertPool, OracleExpert
from eapo.models.build import TinyModelSpec, build_tiny_model, load_policy
from eapo.rollout.backend import Generation, SamplingParams
from eapo.rollout.config import RolloutConfig
from eapo.rollout.engine import RolloutEngine
from eapo.rollout.fake_backend import ScriptedBackend
from eapo.rollout.metrics import rollout_metrics
from eapo.schedules.acceptance import AcceptanceConfig
from eapo.schedules.adaptive import AdaptiveConfig, ProblemHistory
from eapo.schedules.budget import TurnBudgetConfig
from eapo.schedules.gate import AcceptanceGate
from eapo.schedules.penalty import PenaltyConfig
from eapo.tasks.arithmetic import ChainTask, evaluate_chain
from eapo.training.rollout_func import EAPORollout


class ThreadGroup:
    def __init__(self, n: int) -> None:
        self.n = n
        self.barrier = threading.Barrier(n, timeout=20)
        self.slots: list[Any] = [None] * n

    def member(self, rank: int) -> ThreadCollective:
        return ThreadCollective(self, rank)


class ThreadCollective:
    def __init__(self, group: ThreadGroup, rank: int) -> None:
        self.group, self.rank, self.world_size = group, rank, group.n

    def all_gather_object(self, obj: Any) -> list[Any]:
        self.group.slots[self.rank] = obj
        self.group.barrier.wait()
        out = list(self.group.slots)
        self.group.barrier.wait()  # nobody overwrites a slot before everyone has read
        return out

    def barrier(self) -> None:
        self.group.barrier.wait()


def on_ranks(n: int, fn) -> list[Any]:
    group = ThreadGroup(n)
    with ThreadPoolExecutor(n) as ex:
        return [f.result(timeout=60) for f in [ex.submit(fn, group.member(r)) for r in range(n)]]


def test_global_uids_number_copies_across_ranks():
    pids = ["a", "a", "a", "b", "b", "b"]  # two groups of 3, split 4 / 2
    single = global_uids(1, pids, LocalCollective())
    split = on_ranks(2, lambda c: global_uids(1, pids[:4] if c.rank == 0 else pids[4:], c))
    assert split[0] + split[1] == single == ["s1-a-0", "s1-a-1", "s1-a-2", "s1-b-0", "s1-b-1", "s1-b-2"]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    spec = TinyModelSpec(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         intermediate_size=32)
    return load_policy(str(build_tiny_model(tmp_path_factory.mktemp("m") / "p", spec)))[1]


def make_rollout(tok, task, problems, collective=None, history=None):
    def script(ctx, call):
        text = tok.decode(ctx)
        question = text.split("user\n")[-1].split("<|im_end|>")[0]
        done = text.split("<|im_start|>assistant\n")[-1]
        if "unavailable" in done:
            return tok.encode(" <answer>0</answer>", add_special_tokens=False)
        if "<expert" in done:
            return tok.encode(f" <answer>{evaluate_chain(question)}</answer>", add_special_tokens=False)
        return tok.encode(f"<consult><query>{question}</query><query>{question}?</query></consult>",
                          add_special_tokens=False)

    engine = RolloutEngine(None, tok, RolloutConfig(system_prompt="", tokens_per_turn=40, max_policy_tokens=120,
                                                   max_completion_tokens=240),
                           pool=ExpertPool([OracleExpert(task.oracle_answer)] * 2), scorer=task.scorer,
                           gate=AcceptanceGate(seed=0))
    return EAPORollout(engine, problems, acceptance=AcceptanceConfig(kind="constant", value=0.5),
                       budget=TurnBudgetConfig(train=3, eval=2), penalty=PenaltyConfig(), total_steps=4,
                       history=history, collective=collective,
                       backend_factory=lambda model, t: ScriptedBackend(script, (t.eos_token_id,)))


def fake_trainer(step: int) -> Any:
    return SimpleNamespace(state=SimpleNamespace(global_step=step - 1), use_vllm=False,
                           accelerator=SimpleNamespace(num_processes=1, unwrap_model=lambda m: m),
                           model=None, model_wrapped=None, args=SimpleNamespace(ds3_gather_for_generation=True))


@pytest.fixture()
def no_unwrap(monkeypatch):
    """The scripted backend needs no model: skip TRL's unwrapping of the (absent) model."""
    import contextlib

    import eapo.training.rollout_func as rf

    monkeypatch.setattr(rf, "generation_model", lambda trainer: contextlib.nullcontext(None))
    monkeypatch.setattr(rf, "needs_lockstep", lambda trainer: False)


def test_a_split_batch_rolls_out_like_one_rank(tok, no_unwrap):
    task = ChainTask(name="chain", min_len=1, max_len=2, seed=0, sizes=(("train", 6),))
    problems = task.split("train")
    adaptive = AdaptiveConfig(window=4, open_rho=0.5, min_samples=1)
    prompts = [p.question for p in problems[:3] for _ in range(4)]  # 3 groups of 4, split 6 / 6
    single_hist = ProblemHistory(adaptive)
    single = make_rollout(tok, task, problems, history=single_hist)
    ref = [single(prompts, fake_trainer(s)) for s in (1, 2)]
    ref_eps = single.last_episodes

    def rank(c):
        hist = ProblemHistory(adaptive)
        r = make_rollout(tok, task, problems, collective=c, history=hist)
        mine = prompts[:6] if c.rank == 0 else prompts[6:]
        outs = [r(mine, fake_trainer(s)) for s in (1, 2)]
        return outs, r.last_episodes, hist

    (out0, eps0, hist0), (out1, eps1, hist1) = on_ranks(2, rank)
    for step in (0, 1):
        for key in ("completion_ids", "env_mask", "eapo_reward", "logprobs"):
            assert out0[step][key] + out1[step][key] == ref[step][key], (step, key)
        m = ref[step]["eapo_metrics"][0]
        assert out0[step]["eapo_metrics"][0] == out1[step]["eapo_metrics"][0]
        for key, value in m.items():
            if not key.startswith("time/"):
                assert out0[step]["eapo_metrics"][0][key] == value, key
        assert m["rollout/episodes"] == 12
    assert [e.uid for e in eps0 + eps1] == [e.uid for e in ref_eps]
    assert 0 < sum(ep.reward == 1.0 for ep in ref_eps) < 12  # the coins differ inside groups
    assert hist0.state_dict() == hist1.state_dict() == single_hist.state_dict()


def test_gathered_metrics_equal_the_metrics_of_all_episodes(tok):
    task = ChainTask(name="chain", min_len=1, max_len=2, seed=1, sizes=(("train", 5),))
    rollout = make_rollout(tok, task, task.split("train"))
    rollout.engine.backend = rollout.backend_factory(None, tok)
    eps = rollout.engine.run(task.split("train") * 2, step=1, rhos=0.5, turn_budget=3)
    halves = on_ranks(2, lambda c: gather_step(eps[:7] if c.rank == 0 else eps[7:], [0.5] * (7 if c.rank == 0 else 3),
                                               {"time/rollout_s": 1.0 + c.rank}, c))
    metrics = step_metrics(halves[0])
    expected = rollout_metrics(eps)
    assert {k: metrics[k] for k in expected} == expected
    assert metrics["rollout/episodes"] == 10 and metrics["time/rollout_s"] == 2.0  # the slowest rank
    assert [summarize(e).policy_tokens for e in eps] == [e.policy_tokens for e in eps]
    hist = ProblemHistory(AdaptiveConfig())
    assert merge_history(hist, halves[1], 1) == sum(e.accepted_calls == 0 for e in eps)


class CountingBackend:
    eos_token_ids = (0,)

    def __init__(self) -> None:
        self.calls: list[int] = []

    def generate(self, contexts, max_new_tokens, params):
        self.calls.append(len(contexts))
        return [Generation(ids=[1], logprobs=[-1.0], finish="length") for _ in contexts]


@pytest.mark.parametrize("turns", [(3, 1), (1, 4), (2, 2, 5)])
def test_lockstep_makes_every_rank_call_generate_equally_often(turns):
    def rank(c):
        inner = CountingBackend()
        backend = LockstepBackend(inner, c, filler=[5])
        for _ in range(turns[c.rank]):
            backend.generate([[1, 2]], [4], SamplingParams())
        backend.finish(SamplingParams())
        return backend.calls, backend.dummy_calls, inner.calls

    results = on_ranks(len(turns), rank)
    assert {len(inner) for _, _, inner in results} == {max(turns)}
    for (real, dummy, inner), n in zip(results, turns):
        assert real == n and dummy == max(turns) - n
        assert inner[n:] == [1] * dummy  # fillers are one-context, one-token calls


def test_uneven_batches_are_refused():
    from eapo.distributed.collective import per_process_batch

    assert per_process_batch(24, 4) == 6
    with pytest.raises(ValueError, match="multiple of 2"):
        per_process_batch(9, 2)


def test_pool_accounting_merges_every_process():
    from eapo.distributed.sync import GatheredPoolStats
    from eapo.types import ExpertRequest

    def rank(c):
        pool = ExpertPool([OracleExpert(lambda r: "1", name="a"), OracleExpert(lambda r: "2", name="b")])
        n = 3 if c.rank == 0 else 5
        pool.ask_many_sync([ExpertRequest(problem="p", query=f"q{i}") for i in range(n)], list(range(n)))
        return GatheredPoolStats(pool, c).snapshot_and_reset()

    r0, r1 = on_ranks(2, rank)
    assert [(s.name, s.calls) for s in r0] == [(s.name, s.calls) for s in r1] == [("a", 2 + 3), ("b", 1 + 2)]
    assert len(r0[0].latencies) == 5


@pytest.mark.parametrize("closed, forbids", [("forbid", True), ("refuse", False)])
def test_a_closed_step_forbids_the_consult_tag_only_when_configured(tok, no_unwrap, closed, forbids):
    """acceptance.closed "forbid": a step whose rho_s is 0 decodes as the forbid lock does
    (consult tags banned); open steps, and every step under "refuse", do not. The engine's
    own sampling settings are restored after the step."""
    task = ChainTask(name="chain", min_len=1, max_len=2, seed=0, sizes=(("train", 4),))
    rollout = make_rollout(tok, task, task.split("train"))
    rollout.acceptance = AcceptanceConfig(kind="phased", steps=1, closed=closed)  # rho 1 at step 1, then 0
    seen: list[SamplingParams] = []
    inner = rollout.backend_factory

    def recording(model, t):
        backend = inner(model, t)
        generate = backend.generate

        def spy(contexts, limits, params):
            seen.append(params)
            return generate(contexts, limits, params)

        backend.generate = spy
        return backend

    rollout.backend_factory = recording
    prompts = [p.question for p in task.split("train")]
    before = rollout.engine.params
    rollout(prompts, fake_trainer(1))
    assert all(p.forbidden == () for p in seen)  # open step
    seen.clear()
    rollout(prompts, fake_trainer(2))
    assert seen and all(bool(p.forbidden) == forbids for p in seen)
    if forbids:
        assert seen[0].forbidden == rollout.engine.consult_tags()
    assert rollout.engine.params == before
