"""What the pool accounts for and how it reaches a run's metrics: calls, failures by cause,
latency percentiles, tokens, cost from per-member prices, the members' own counters
(retries, cache hits, ...), weights, and the training callback that adds it all to each
log row. Exact values on hand-made numbers; no network."""

from __future__ import annotations

import pytest

from eapo.config import load_config
from eapo.experts import ExpertPool, FakeExpert, OpenAIExpert, OracleExpert, PoolStats, Prices, pool_metrics
from eapo.experts.pool import percentile
from eapo.training.config import TrainConfig
from eapo.types import ExpertReply, ExpertRequest


@pytest.mark.parametrize("values, q, expected", [
    ([], 0.5, 0.0),
    ([3.0], 0.99, 3.0),
    ([1.0, 2.0], 0.5, 1.5),
    ([5.0, 1.0, 4.0, 2.0, 3.0], 0.5, 3.0),
    ([1.0, 2.0, 3.0, 4.0, 5.0], 0.9, 4.6),
    ([float(i) for i in range(1, 101)], 0.99, 99.01),
    ([1.0, 2.0, 3.0, 4.0, 5.0], 1.0, 5.0),
])
def test_percentile_is_linear_interpolation(values, q, expected):
    assert percentile(values, q) == pytest.approx(expected)


def reply(latency: float, error: str | None = None, pt: int = 0, ct: int = 0) -> ExpertReply:
    return ExpertReply(text="" if error else "x", latency_s=latency, error=error, prompt_tokens=pt, completion_tokens=ct)


def test_pool_metrics_exact_values_and_the_old_names_still_there():
    a = PoolStats(name="qwq", prices=Prices(prompt_per_mtok=1.0, completion_per_mtok=4.0))
    for r in [reply(0.1, pt=1000, ct=500), reply(0.2, pt=3000, ct=500), reply(0.3, "http_429: slow down"),
              reply(0.4, "timeout")]:
        a.record(r)
    a.counters = {"retries": 3.0, "cache_hits": 1.0}
    b = PoolStats(name="oracle")
    b.record(reply(0.5, "timeout"))
    m = pool_metrics([a, b], prefix="expert/pool")
    assert m["expert/pool/0_qwq/calls"] == 4 and m["expert/pool/0_qwq/failures"] == 2
    assert m["expert/pool/0_qwq/failures_http_429"] == 1 and m["expert/pool/0_qwq/failures_timeout"] == 1
    assert m["expert/pool/0_qwq/mean_latency_s"] == pytest.approx(0.25)
    assert m["expert/pool/0_qwq/max_latency_s"] == pytest.approx(0.4)
    assert m["expert/pool/0_qwq/latency_p50_s"] == pytest.approx(0.25)
    assert m["expert/pool/0_qwq/latency_p90_s"] == pytest.approx(0.37)
    assert m["expert/pool/0_qwq/latency_p99_s"] == pytest.approx(0.397)
    assert (m["expert/pool/0_qwq/prompt_tokens"], m["expert/pool/0_qwq/completion_tokens"]) == (4000, 1000)
    assert m["expert/pool/0_qwq/cost_usd"] == pytest.approx((4000 * 1.0 + 1000 * 4.0) / 1e6)
    assert m["expert/pool/0_qwq/retries"] == 3 and m["expert/pool/0_qwq/cache_hits"] == 1
    assert m["expert/pool/1_oracle/cost_usd"] == 0.0
    # pool totals
    assert m["expert/pool/calls"] == 5 and m["expert/pool/failures"] == 3
    assert m["expert/pool/failure_rate"] == pytest.approx(3 / 5)
    assert m["expert/pool/failures_timeout"] == 2 and m["expert/pool/failures_http_429"] == 1
    assert m["expert/pool/latency_p50_s"] == pytest.approx(0.3)
    assert m["expert/pool/mean_latency_s"] == pytest.approx(0.3)
    assert m["expert/pool/cost_usd"] == pytest.approx(0.008)
    assert m["expert/pool/retries"] == 3 and m["expert/pool/prompt_tokens"] == 4000
    # reset clears everything, latencies and counters included
    snap = a.snapshot_and_reset()
    assert snap.latencies == [0.1, 0.2, 0.3, 0.4] and snap.counters == {"retries": 3.0, "cache_hits": 1.0}
    assert (a.calls, a.latencies, a.counters, a.failures, a.cost_usd) == (0, [], {}, {}, 0.0)


class Counted(FakeExpert):
    """A fake with its own counters, as the network expert has."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.handed = 0

    def snapshot_and_reset(self):
        self.handed += 1
        return {"retries": 2, "flag": True, "note": "not a number"}


def test_the_pool_folds_member_counters_in_once_per_member_and_prices_per_index():
    shared = Counted(name="ep")
    other = FakeExpert(name="local")
    pool = ExpertPool([shared, other, shared], prices=[Prices(1.0, 0.0), Prices(), Prices(1.0, 0.0)])
    pool.ask_many_sync([ExpertRequest(problem="pp", query=f"q{i}") for i in range(3)], [0, 1, 2])
    stats = pool.snapshot_and_reset()
    assert shared.handed == 1  # one object at two indices reports once, at its first index
    assert stats[0].counters == {"retries": 2.0} and stats[2].counters == {}  # bools and text are not counts
    assert [s.prompt_tokens for s in stats] == [4, 4, 4]
    assert [s.cost_usd for s in stats] == pytest.approx([4e-6, 0.0, 4e-6])
    with pytest.raises(ValueError, match="one per member"):
        ExpertPool([other], prices=[Prices(), Prices()])
    with pytest.raises(ValueError, match="USD per million"):
        Prices(prompt_per_mtok=-1)


def test_the_training_callback_adds_interval_metrics_and_running_totals():
    from eapo.training.callbacks import PoolMetrics

    pool = ExpertPool([FakeExpert(name="a")], prices=Prices(prompt_per_mtok=1e6))
    cb = PoolMetrics(pool)
    pool.ask_many_sync([ExpertRequest(problem="p", query="q")] * 2, [0, 0])
    row = {"loss": 0.1}
    cb.on_log(None, None, None, logs=row)
    assert row["loss"] == 0.1 and row["expert/pool/calls"] == 2 and row["expert/pool/total_calls"] == 2
    assert row["expert/pool/cost_usd"] == pytest.approx(4.0) and row["expert/pool/0_a/calls"] == 2
    pool.ask_many_sync([ExpertRequest(problem="p", query="q")], [0])
    row = {"loss": 0.2}
    cb.on_log(None, None, None, logs=row)
    assert row["expert/pool/calls"] == 1 and row["expert/pool/total_calls"] == 3
    assert row["expert/pool/total_cost_usd"] == pytest.approx(6.0)
    summary = {"train_runtime": 1.0}
    cb.on_log(None, None, None, logs=summary)
    assert summary == {"train_runtime": 1.0}  # nothing new: the closing row stays as it was


@pytest.mark.parametrize("weights, order", [
    ([1], [0]),
    ([2, 1], [0, 1, 0]),
    ([1, 2], [1, 0, 1]),
    ([3, 1], [0, 0, 1, 0]),
    ([2, 2, 1], [0, 1, 2, 0, 1]),
])
def test_weighted_order_spreads_members_by_weight(weights, order):
    from eapo.assembly.pool import weighted_order

    got = weighted_order(weights)
    assert got == order
    assert [got.count(i) for i in range(len(weights))] == weights


def test_a_configured_pool_has_its_members_weights_prices_and_deadline():
    from eapo.tasks.arithmetic import ChainTask
    from eapo.assembly.pool import build_pool

    cfg = load_config(TrainConfig, None, [
        "experts.kind=pool", "experts.routing=round_robin", "experts.timeout_s=20",
        "experts.members=[{base_url: 'http://127.0.0.1:9/v1', model: big, name: big, weight: 2, timeout_s: 5, "
        "retries: 4, max_concurrency: 8, price_prompt_per_mtok: 0.5, price_completion_per_mtok: 2, "
        "extra_body: {chat_template_kwargs: {enable_thinking: false}}}, {type: oracle}, {type: noisy, noise_p: 0.5}]",
    ])
    pool = build_pool(cfg, ChainTask(), "unused")
    names = [m.name for m in pool.members]
    assert names == ["big", "oracle", "noisy:oracle", "big"]
    big = pool.members[0]
    assert isinstance(big, OpenAIExpert) and pool.members[3] is big
    assert (big.timeout_s, big.deadline_s, big.retry.retries, big.max_concurrency) == (5.0, 20.0, 4, 8)
    assert big.extra_body == {"chat_template_kwargs": {"enable_thinking": False}}
    assert isinstance(pool.members[1], OracleExpert) and pool.timeout_s == 20.0 and pool.routing == "round_robin"
    stats = pool.snapshot_and_reset()
    assert [s.prices for s in stats] == [Prices(0.5, 2.0), Prices(), Prices(), Prices(0.5, 2.0)]
    # round robin over the slots gives each member its weight's share
    routed = pool.route([ExpertRequest(problem="p", query=str(i)) for i in range(400)], [0] * 400)
    share = sum(names[m] == "big" for m in routed) / 400
    assert share == pytest.approx(0.5)
    big.close()


def test_the_expert_examples_load_and_build(monkeypatch):
    from pathlib import Path

    from eapo.config import load_yaml
    from eapo.tasks.arithmetic import ChainTask
    from eapo.assembly.pool import build_pool

    folder = Path(__file__).resolve().parents[1] / "examples" / "experts"
    files = sorted(folder.glob("*.yaml"))
    assert {f.stem for f in files} >= {"vllm", "sglang", "hosted", "serve_oracle"}
    monkeypatch.setenv("OPENAI_API_KEY", "sk-placeholder")
    for f in files:
        cfg = load_yaml(TrainConfig, f)
        pool = build_pool(cfg, ChainTask(), "unused")
        assert all(isinstance(m, OpenAIExpert) for m in pool.members), f
        assert len(pool) == sum(m.weight for m in cfg.experts.members)
        for m in set(pool.members):
            m.close()
