"""ExpertPool: routing, concurrency, timeouts, failures as values, stats, sync entry points.

Timings use FakeExpert delays of a few tenths of a second and generous bounds, since CI
runs on shared CPUs. Not covered here: the experts themselves (test_builtin_experts.py).
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from eapo.experts import ROUTINGS, ExpertPool, FakeBatchExpert, FakeExpert, pool_metrics
from eapo.types import ExpertReply, ExpertRequest


def reqs(n: int, prefix: str = "k") -> list[ExpertRequest]:
    return [ExpertRequest(problem="p", query=f"q{i}", key=f"{prefix}{i}") for i in range(n)]


def fakes(n: int, **kw) -> list[FakeExpert]:
    return [FakeExpert(name=f"e{i}", **kw) for i in range(n)]


# --------------------------------------------------------------------------- routing


@pytest.mark.parametrize(
    "n_members, slots, expected",
    [
        (3, [0, 1, 2], [0, 1, 2]),
        (3, [0, 1, 2, 3, 4], [0, 1, 2, 0, 1]),
        (2, [0, 0, 1, 0, 1, 2], [0, 0, 1, 0, 1, 0]),
        (1, [0, 1, 2], [0, 0, 0]),
    ],
)
def test_mod_routing_sends_slot_i_to_member_i_mod_n(n_members, slots, expected):
    pool = ExpertPool(fakes(n_members), routing="mod")
    out = pool.ask_many_sync(reqs(len(slots)), slots)
    assert [m for m, _ in out] == expected
    assert [r.expert for _, r in out] == [f"e{m}" for m in expected]
    assert [r.text for _, r in out] == [f"ok:q{i}" for i in range(len(slots))]


def test_round_robin_counts_across_calls_and_resumes_from_state():
    pool = ExpertPool(fakes(3), routing="round_robin")
    assert pool.route(reqs(2), [0, 0]) == [0, 1]
    assert pool.route(reqs(3), [0, 0, 0]) == [2, 0, 1]
    state = pool.state_dict()
    assert state == {"routing": "round_robin", "router": {"next": 5}}

    resumed = ExpertPool(fakes(3), routing="round_robin")
    resumed.load_state_dict(state)
    assert resumed.route(reqs(4), [0, 1, 2, 3]) == pool.route(reqs(4), [0, 1, 2, 3]) == [2, 0, 1, 2]


def test_loading_state_of_another_routing_is_refused():
    with pytest.raises(ValueError, match="routing"):
        ExpertPool(fakes(2), routing="mod").load_state_dict({"routing": "round_robin", "router": {"next": 3}})


def test_random_routing_is_deterministic_per_key_and_seed():
    rs = reqs(200)
    a = ExpertPool(fakes(4), routing="random", seed=7).route(rs, [0] * 200)
    b = ExpertPool(fakes(4), routing="random", seed=7).route(rs[::-1], [0] * 200)[::-1]
    c = ExpertPool(fakes(4), routing="random", seed=8).route(rs, [0] * 200)
    assert a == b  # order and batch composition do not matter, only the key
    assert a != c
    assert set(a) == {0, 1, 2, 3}
    assert all(30 <= a.count(m) <= 70 for m in range(4))  # about uniform (50 each)


def test_routing_registry_lists_names_on_a_miss():
    assert {"mod", "round_robin", "random"} <= set(ROUTINGS.names())
    with pytest.raises(KeyError, match="valid: mod, random, round_robin"):
        ExpertPool(fakes(1), routing="nope")


# --------------------------------------------------------------------------- concurrency


def test_sixteen_slow_requests_run_concurrently():
    pool = ExpertPool([FakeExpert(delay_s=0.2)])
    start = time.perf_counter()
    out = pool.ask_many_sync(reqs(16), list(range(16)))
    elapsed = time.perf_counter() - start
    assert elapsed < 0.6, f"16 x 0.2 s took {elapsed:.2f} s: calls are not concurrent"
    assert all(r.ok for _, r in out)
    assert all(0.15 < r.latency_s < 0.6 for _, r in out)


def test_batch_member_gets_its_share_in_one_call_and_others_run_beside_it():
    batcher = FakeBatchExpert(name="b", delay_s=0.2)
    single = FakeExpert(name="s", delay_s=0.2)
    pool = ExpertPool([batcher, single])
    start = time.perf_counter()
    out = pool.ask_many_sync(reqs(8), list(range(8)))
    assert time.perf_counter() - start < 0.6
    assert batcher.batch_sizes == [4]
    assert single.calls == 4
    assert [m for m, _ in out] == [0, 1] * 4
    assert [r.text for _, r in out] == [f"ok:q{i}" for i in range(8)]


def test_hanging_member_times_out_while_the_others_answer():
    pool = ExpertPool([FakeExpert(name="good", delay_s=0.05), FakeExpert(name="dead", fail="hang")], timeout_s=0.3)
    start = time.perf_counter()
    out = pool.ask_many_sync(reqs(4), [0, 1, 2, 3])
    elapsed = time.perf_counter() - start
    assert elapsed < 0.6, f"a dead expert held the round for {elapsed:.2f} s"
    assert [(m, r.error) for m, r in out] == [(0, None), (1, "timeout"), (0, None), (1, "timeout")]
    assert [r.text for _, r in out] == ["ok:q0", "", "ok:q2", ""]
    assert all(0.25 < r.latency_s < 0.6 for _, r in out if r.error)


def test_hanging_batch_member_times_out_as_a_whole():
    pool = ExpertPool([FakeBatchExpert(name="dead", fail="hang")], timeout_s=0.2)
    out = pool.ask_many_sync(reqs(3), [0, 1, 2])
    assert [r.error for _, r in out] == ["timeout"] * 3


class _StubbornExpert:
    """Takes a long time to honour a cancellation (cleanup on a slow connection): waiting
    for the cancelled call to finish, as `asyncio.wait_for` does, would blow the timeout."""

    name = "stubborn"

    async def ask(self, request: ExpertRequest) -> ExpertReply:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(2.0)  # a second cancellation (loop shutdown) ends this
            raise
        return ExpertReply(text="never")


class _BlockingThreadExpert:
    """Blocks a worker thread far past the timeout, as a slow local model would."""

    name = "blocking"

    async def ask(self, request: ExpertRequest) -> ExpertReply:
        await asyncio.to_thread(time.sleep, 2.0)
        return ExpertReply(text="late")


@pytest.mark.parametrize("expert", [_StubbornExpert(), _BlockingThreadExpert()], ids=lambda e: e.name)
def test_timeout_holds_even_when_the_expert_will_not_stop(expert):
    pool = ExpertPool([expert, FakeExpert(name="good")], timeout_s=0.3)
    start = time.perf_counter()
    out = pool.ask_many_sync(reqs(2), [0, 1])
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"the round took {elapsed:.2f} s"
    assert [r.error for _, r in out] == ["timeout", None]


def test_max_concurrency_bounds_in_flight_calls_without_eating_the_timeout():
    pool = ExpertPool([FakeExpert(delay_s=0.2)], max_concurrency=2, timeout_s=0.3)
    start = time.perf_counter()
    out = pool.ask_many_sync(reqs(4), [0, 1, 2, 3])
    elapsed = time.perf_counter() - start
    assert 0.38 < elapsed < 0.9  # two waves of two
    assert all(r.ok for _, r in out)  # queueing time does not count toward timeout_s


# --------------------------------------------------------------------------- failures as values


class _SyncAskExpert:
    name = "sync"

    def ask(self, request):  # forgot `async`
        return ExpertReply(text="x")


class _WrongLengthBatchExpert:
    name = "short"
    batches = True

    async def ask(self, request):
        return ExpertReply(text="x")

    async def ask_batch(self, requests):
        return [ExpertReply(text="x")]


@pytest.mark.parametrize(
    "expert, error",
    [
        (FakeExpert(fail="raise"), "exception:RuntimeError: fake was told to fail"),
        (FakeExpert(fail="garbage"), "bad_reply"),
        (FakeExpert(reply_fn=lambda r: None), "bad_reply"),
        (FakeExpert(reply_fn=lambda r: 42), "bad_reply"),
        (FakeExpert(reply_fn=lambda r: 1 / 0), "exception:ZeroDivisionError: division by zero"),
        (FakeBatchExpert(fail="raise"), "exception:RuntimeError: fake was told to fail"),
        (FakeBatchExpert(fail="garbage"), "bad_reply"),
        (_SyncAskExpert(), "exception:TypeError"),
        (_WrongLengthBatchExpert(), "bad_reply"),
    ],
    ids=lambda x: x if isinstance(x, str) else repr(x),
)
def test_failures_become_error_replies_never_exceptions(expert, error):
    pool = ExpertPool([expert], timeout_s=1.0)
    out = pool.ask_many_sync(reqs(2), [0, 1])
    assert len(out) == 2
    for m, reply in out:
        assert m == 0
        assert isinstance(reply, ExpertReply)
        assert reply.text == ""
        assert reply.error is not None and reply.error.startswith(error)
        assert not reply.ok
        assert reply.latency_s >= 0.0
        assert reply.expert == expert.name


def test_an_experts_own_reply_object_is_not_mutated():
    cached = ExpertReply(text="cached")

    class Caching:
        name = "cache"

        async def ask(self, request):
            return cached

    out = ExpertPool([Caching()]).ask_many_sync(reqs(1), [0])
    assert out[0][1].text == "cached" and out[0][1].expert == "cache"
    assert cached.expert == "" and cached.latency_s == 0.0


# --------------------------------------------------------------------------- sync entry points


def test_ask_many_sync_works_inside_a_running_loop():
    pool = ExpertPool([FakeExpert(delay_s=0.01)])

    async def caller():
        return pool.ask_many_sync(reqs(3), [0, 1, 2])

    out = asyncio.run(caller())
    assert [r.text for _, r in out] == ["ok:q0", "ok:q1", "ok:q2"]


def test_ask_many_sync_works_from_a_thread_without_a_loop():
    pool = ExpertPool([FakeExpert()])
    results = []
    t = threading.Thread(target=lambda: results.append(pool.ask_many_sync(reqs(2), [0, 1])))
    t.start()
    t.join(5)
    assert [r.text for _, r in results[0]] == ["ok:q0", "ok:q1"]


def test_ask_many_is_awaitable_and_empty_rounds_are_fine():
    pool = ExpertPool([FakeExpert()])
    assert asyncio.run(pool.ask_many([], [])) == []
    assert [r.text for _, r in asyncio.run(pool.ask_many(reqs(1), [0]))] == ["ok:q0"]


# --------------------------------------------------------------------------- stats and validation


def test_stats_count_calls_failures_latency_and_tokens_then_reset():
    good, bad = FakeExpert(name="good", delay_s=0.01), FakeExpert(name="bad", fail="hang")
    pool = ExpertPool([good, bad], timeout_s=0.1)
    pool.ask_many_sync(reqs(4), [0, 1, 2, 3])
    pool.ask_many_sync([ExpertRequest(problem="pp", query="qqq")], [0])
    g, b = pool.snapshot_and_reset()
    assert (g.name, g.calls, g.failed) == ("good", 3, 0)
    assert (b.name, b.calls, b.failures) == ("bad", 2, {"timeout": 2})
    assert g.completion_tokens == len("ok:q0") + len("ok:q2") + len("ok:qqq")
    assert g.prompt_tokens == 3 + 3 + 5
    assert g.mean_latency_s > 0 and b.max_latency_s >= 0.09
    metrics = pool_metrics([g, b])
    assert metrics["experts/1_bad/failures_timeout"] == 2.0
    assert metrics["experts/calls"] == 5.0
    assert metrics["experts/failure_rate"] == pytest.approx(2 / 5)
    again = pool.snapshot_and_reset()
    assert [s.calls for s in again] == [0, 0] and again[1].failures == {}


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(members=[]), ValueError, "at least one member"),
        (dict(members=[object()]), TypeError, "async `ask`"),
        (dict(members=fakes(1), timeout_s=0), ValueError, "timeout_s"),
        (dict(members=fakes(1), max_concurrency=0), ValueError, "max_concurrency"),
    ],
)
def test_bad_configuration_is_refused_with_a_hint(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ExpertPool(**kwargs)


def test_one_slot_per_request():
    with pytest.raises(ValueError, match="one slot per request"):
        ExpertPool(fakes(1)).ask_many_sync(reqs(2), [0])
