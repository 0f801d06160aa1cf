"""The OpenAI-compatible expert against a real server on loopback (`eapo.serving` in a
thread of this process), one fault at a time: what it sends, how it retries, what it
gives up on, and that every failure comes back as a reply with its cause, never as an
exception. Timeouts and backoffs are tens of milliseconds."""

from __future__ import annotations

import asyncio
import email.utils
import time

import pytest

from eapo.experts import ExpertPool
from eapo.experts.messages import build_messages
from eapo.experts.openai_expert import BreakerPolicy, CircuitBreaker, OpenAIExpert, RetryPolicy, parse_retry_after
from eapo.serving import Completion, FaultPlan, OracleBackend, ServerThread, create_app
from eapo.serving.runner import bind
from eapo.types import ExpertRequest

FAST = RetryPolicy(retries=2, backoff_s=0.01, backoff_max_s=0.02, max_retry_after_s=2.0)
REQ = ExpertRequest(problem="47+38-19", query="47+38", key="s1-p0-0:0", gold="66")


class Recorder:
    """A backend that records what it was sent and how many calls overlapped."""

    name = "recorder"

    def __init__(self, delay_s: float = 0.0, text: str = "85") -> None:
        self.delay_s, self.text = delay_s, text
        self.seen: list[tuple[list[dict], object]] = []
        self.inflight = self.peak = 0

    async def complete(self, messages, params):
        self.inflight += 1
        self.peak = max(self.peak, self.inflight)
        try:
            await asyncio.sleep(self.delay_s)
            self.seen.append((messages, params))
            return Completion(text=self.text, prompt_tokens=11, completion_tokens=2)
        finally:
            self.inflight -= 1


@pytest.fixture
def serve():
    """serve(backend, **app_kwargs) -> a started ServerThread, stopped after the test."""
    started: list[ServerThread] = []

    def start(backend=None, port: int = 0, **kwargs) -> ServerThread:
        app = create_app(backend or OracleBackend(), served_model="m", **kwargs)
        srv = ServerThread(app, port=port).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def experts():
    made: list[OpenAIExpert] = []

    def make(base_url: str, **kwargs) -> OpenAIExpert:
        kwargs.setdefault("retry", FAST)
        kwargs.setdefault("timeout_s", 1.0)
        e = OpenAIExpert(base_url, "m", **kwargs)
        made.append(e)
        return e

    yield make
    for e in made:
        e.close()


def ask(expert, request=REQ, timeout_s: float = 10.0):
    """One call through a pool, as the rollout makes it; returns (reply, seconds)."""
    t0 = time.perf_counter()
    [(_, reply)] = ExpertPool([expert], timeout_s=timeout_s).ask_many_sync([request], [0])
    return reply, time.perf_counter() - t0


# --------------------------------------------------------------------------- what is sent


def test_sends_the_documented_messages_sampling_and_a_keyed_seed_never_the_gold(serve, experts):
    rec = Recorder()
    srv = serve(rec)
    e = experts(srv.base_url, temperature=0.7, top_p=0.9, max_tokens=17, seed=3, name="qwq")
    request = ExpertRequest(problem="47+38-19", query="47+38", key="s1-p0-0:0", gold="66", transcript="47+38=")
    reply, _ = ask(e, request)
    assert (reply.text, reply.expert, reply.prompt_tokens, reply.completion_tokens, reply.error) == ("85", "qwq", 11, 2, None)
    [(messages, params)] = rec.seen
    assert [{k: m[k] for k in ("role", "content")} for m in messages] == build_messages(request)
    assert messages[-1]["content"] == "Problem:\n47+38-19\n\nWork so far:\n47+38=\n\nQuestion:\n47+38"
    assert all("66" not in m["content"] for m in messages)  # the gold answer never leaves the process
    assert (params.max_tokens, params.temperature, params.top_p) == (17, 0.7, 0.9)
    assert params.seed == e.request_seed(request)
    # the seed follows the request's identity: the same key the same seed, another key another
    assert e.request_seed(request) == OpenAIExpert(srv.base_url, "m", seed=3).request_seed(request)
    assert e.request_seed(request) != e.request_seed(ExpertRequest(problem="47+38-19", query="47+38", key="s1-p0-1:0"))
    assert OpenAIExpert(srv.base_url, "m", seed=None).request_seed(request) is None


def test_max_completion_tokens_is_sent_when_asked_for(serve, experts):
    rec = Recorder()
    e = experts(serve(rec).base_url, max_tokens=9, max_tokens_param="max_completion_tokens")
    assert ask(e)[0].ok
    assert rec.seen[0][1].max_tokens == 9


# --------------------------------------------------------------------------- faults, one by one


@pytest.mark.parametrize(
    "faults, kwargs, cause, served, retries",
    [
        ("500,ok", {}, None, 2, {"retries": 1, "retried_http_500": 1}),
        ("503,502,ok", {}, None, 3, {"retries": 2, "retried_http_503": 1, "retried_http_502": 1}),
        ("500*5", {}, "http_500", 3, {"retries": 2, "retried_http_500": 2}),
        ("429:0.05*5", {}, "http_429", 3, {"retries": 2, "retried_http_429": 2}),
        ("slow:1*5", {"timeout_s": 0.1}, "timeout", 3, {"retries": 2, "retried_timeout": 2}),
        ("truncated,ok", {}, None, 2, {"retries": 1, "retried_connection": 1}),
        ("truncated*5", {}, "connection", 3, {"retries": 2, "retried_connection": 2}),
        # not retried: the same answer again, and a second bill
        ("bad_json", {}, "bad_json", 1, {}),
        ("empty", {}, "empty_reply", 1, {}),
        ("empty_body", {}, "bad_json", 1, {}),
        ("html", {}, "bad_reply", 1, {}),
        ("404", {}, "http_404", 1, {}),
        ("huge:3000000", {"max_response_bytes": 1_000_000}, "too_large", 1, {}),
    ],
)
def test_each_fault_is_retried_or_not_and_ends_as_a_reply_with_its_cause(serve, experts, faults, kwargs, cause,
                                                                           served, retries):
    plan = FaultPlan(faults)
    e = experts(serve(faults=plan).base_url, **kwargs)
    reply, _ = ask(e)
    if cause is None:
        assert (reply.text, reply.error) == ("85", None)
    else:
        assert reply.text == "" and reply.error is not None and reply.error.split(":")[0] == cause, reply.error
    assert sum(plan.served.values()) == served
    assert e.snapshot_and_reset() == retries


def test_retry_after_is_honoured_and_a_long_one_gives_up_at_once(serve, experts):
    srv = serve(faults=FaultPlan("429:0.3,ok"))
    reply, wall = ask(experts(srv.base_url))
    assert reply.ok and wall >= 0.3
    plan = FaultPlan("429:30,ok")
    reply, wall = ask(experts(serve(faults=plan).base_url))  # over max_retry_after_s (2 s)
    assert reply.error.startswith("http_429") and wall < 1.0 and sum(plan.served.values()) == 1


def test_a_huge_reply_is_cut_to_max_reply_chars_and_counted(serve, experts):
    e = experts(serve(faults=FaultPlan("huge:3000000")).base_url, max_reply_chars=1000)
    reply, _ = ask(e)
    assert reply.ok and len(reply.text) == 1000 and reply.text.startswith("85 xxx")
    assert e.snapshot_and_reset() == {"truncated": 1}


def test_retries_stop_where_the_deadline_would_pass(serve, experts):
    slow_backoff = RetryPolicy(retries=10, backoff_s=0.15, backoff_max_s=0.15)
    e = experts(serve(faults=FaultPlan("", default="500")).base_url, retry=slow_backoff, deadline_s=0.4)
    reply, wall = ask(e)
    assert reply.error.startswith("http_500") and wall < 0.5
    assert 1 <= e.snapshot_and_reset()["retries"] <= 3


def test_the_pool_timeout_cuts_a_hung_call_and_the_expert_stays_usable(serve, experts):
    plan = FaultPlan("slow:3")
    e = experts(serve(faults=plan).base_url, timeout_s=5.0)
    reply, wall = ask(e, timeout_s=0.3)
    assert reply.error == "timeout" and 0.3 <= wall < 1.0
    reply, _ = ask(e)  # a new round, on a new event loop: the cancelled call left nothing stuck
    assert reply.ok


# --------------------------------------------------------------------------- concurrency, breaker


def test_calls_run_concurrently_up_to_the_endpoint_limit(serve, experts):
    rec = Recorder(delay_s=0.2)
    srv = serve(rec)
    requests = [ExpertRequest(problem="p", query=f"{i}+1", key=str(i)) for i in range(6)]
    limited = experts(srv.base_url, max_concurrency=2)
    t0 = time.perf_counter()
    replies = ExpertPool([limited], timeout_s=10).ask_many_sync(requests, [0] * 6)
    wall = time.perf_counter() - t0
    assert all(r.ok for _, r in replies) and rec.peak == 2 and wall >= 0.55  # three waves of 0.2 s
    rec.peak = 0
    t0 = time.perf_counter()
    replies = ExpertPool([experts(srv.base_url)], timeout_s=10).ask_many_sync(requests, [0] * 6)
    assert all(r.ok for _, r in replies) and rec.peak == 6 and time.perf_counter() - t0 < 0.9  # not 1.2 s


def test_the_breaker_rests_a_dead_endpoint_then_one_trial_closes_it(serve, experts):
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()  # nothing listens: connection refused
    e = experts(f"http://127.0.0.1:{port}/v1", retry=RetryPolicy(retries=0),
                breaker=BreakerPolicy(failures=3, cooldown_s=0.4))
    causes = [ask(e)[0].error.split(":")[0] for _ in range(3)]
    assert causes == ["connection"] * 3 and e.breaker.state == "open"
    reply, wall = ask(e)
    assert reply.error.startswith("circuit_open") and wall < 0.1  # no time spent on a resting endpoint
    serve(port=port)  # the endpoint comes back on the same port
    time.sleep(0.4)
    reply, _ = ask(e)
    assert reply.ok and e.breaker.state == "closed"
    assert e.snapshot_and_reset()["breaker_opens"] == 1


def test_breaker_state_machine():
    now = [0.0]
    b = CircuitBreaker(BreakerPolicy(failures=2, cooldown_s=5), clock=lambda: now[0])
    b.record(False)
    assert b.allow() and b.state == "closed"
    b.record(True)
    b.record(False)
    assert b.state == "closed"  # a success in between resets the count
    b.record(False)
    assert (b.state, b.allow()) == ("open", False)
    now[0] = 5.0
    assert b.allow() and not b.allow()  # half-open: a single trial
    b.record(False)
    assert (b.state, b.opened) == ("open", 2)
    now[0] = 10.0
    assert b.allow()
    now[0] = 15.0
    assert b.allow()  # a trial that never reported does not wedge it
    b.record(True)
    assert b.state == "closed"
    never = CircuitBreaker(BreakerPolicy(failures=0))
    for _ in range(100):
        never.record(False)
    assert never.allow()


def test_backoff_grows_is_capped_and_jittered():
    policy = RetryPolicy(backoff_s=0.1, backoff_max_s=0.5)
    assert [policy.delay(k, 1.0) for k in range(5)] == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])
    assert [policy.delay(k, 0.0) for k in range(3)] == pytest.approx([0.05, 0.1, 0.2])


def test_retry_after_accepts_seconds_milliseconds_and_http_dates():
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    date = email.utils.formatdate(1_000_030.0, usegmt=True)
    assert parse_retry_after({"Retry-After": date}, now=1_000_000.0) == pytest.approx(30.0)
    assert parse_retry_after({}) is None and parse_retry_after({"Retry-After": "-4"}) == 0.0


# --------------------------------------------------------------------------- keys


def test_api_key_from_the_environment_and_refusals_without_it(serve, experts, monkeypatch):
    monkeypatch.setenv("EAPO_TEST_KEY", "sk-test-123456789")
    srv = serve(api_key="sk-test-123456789")
    good = experts(srv.base_url, api_key_env="EAPO_TEST_KEY")
    assert ask(good)[0].ok
    reply, _ = ask(experts(srv.base_url))  # no key: 401, not retried
    assert reply.error.startswith("http_401")
    assert "sk-test" not in repr(good) and "sk-test" not in str(vars(good))
    with pytest.raises(ValueError, match="EAPO_UNSET_KEY, which is not set"):
        OpenAIExpert(srv.base_url, "m", api_key_env="EAPO_UNSET_KEY")


def test_arguments_are_checked():
    for kwargs, match in [
        (dict(base_url="127.0.0.1:8000"), "http"),
        (dict(model=""), "model"),
        (dict(max_tokens_param="max_new_tokens"), "max_tokens_param"),
        (dict(max_concurrency=0), "max_concurrency"),
        (dict(timeout_s=0), "timeout_s"),
        (dict(top_p=0), "top_p"),
    ]:
        args = {"base_url": "http://127.0.0.1:1/v1", "model": "m", **kwargs}
        with pytest.raises(ValueError, match=match):
            OpenAIExpert(**args)
    with pytest.raises(ValueError, match="retries"):
        RetryPolicy(retries=-1)
