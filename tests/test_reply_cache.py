"""The on-disk reply cache: what makes two calls the same, that entries survive a restart
and concurrent writers (several processes at once), and that the expert uses it so a
repeated call does not reach the server again, while failures are never cached."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os

import pytest

from eapo.experts import ExpertPool
from eapo.experts.openai_expert import OpenAIExpert, RetryPolicy
from eapo.experts.reply_cache import CachedReply, ReplyCache, cache_key
from eapo.serving import Completion, FaultPlan, OracleBackend, ServerThread, create_app
from eapo.types import ExpertRequest

MSGS = [{"role": "system", "content": "s"}, {"role": "user", "content": "Problem:\np\n\nQuestion:\nq"}]
SAMPLING = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 32}


@pytest.mark.parametrize(
    "other",
    [
        dict(model="other"),
        dict(messages=[MSGS[0], {"role": "user", "content": "Problem:\np\n\nQuestion:\nq2"}]),
        dict(messages=MSGS[1:]),
        dict(sampling={**SAMPLING, "temperature": 0.7}),
        dict(sampling={**SAMPLING, "max_tokens": 33}),
        dict(sampling={**SAMPLING, "extra_body": {"chat_template_kwargs": {"enable_thinking": False}}}),
        dict(seed=2),
        dict(seed=None),
    ],
)
def test_the_key_changes_with_model_messages_sampling_and_seed(other):
    base = dict(model="m", messages=MSGS, sampling=SAMPLING, seed=1)
    assert cache_key(**base) != cache_key(**{**base, **other})


def test_the_key_ignores_field_order_and_int_versus_float():
    reordered = {"max_tokens": 32, "top_p": 1, "temperature": 0}
    assert cache_key("m", MSGS, SAMPLING, 1) == cache_key("m", MSGS, reordered, 1)
    assert len(cache_key("m", MSGS, SAMPLING, 1)) == 64


def test_entries_round_trip_and_survive_a_new_instance(tmp_path):
    key = cache_key("m", MSGS, SAMPLING, 1)
    ReplyCache(tmp_path).put(key, CachedReply("85 and ünïcode", 12, 3))
    assert ReplyCache(tmp_path).get(key) == CachedReply("85 and ünïcode", 12, 3)
    assert len(ReplyCache(tmp_path)) == 1
    assert ReplyCache(tmp_path).get(cache_key("m", MSGS, SAMPLING, 2)) is None


def test_a_corrupt_entry_is_a_miss_and_a_failed_write_is_not_an_error(tmp_path, caplog):
    cache = ReplyCache(tmp_path)
    key = cache_key("m", MSGS, SAMPLING, 1)
    cache.path(key).parent.mkdir(parents=True)
    cache.path(key).write_text('{"text": "8')  # torn by hand
    with caplog.at_level(logging.WARNING):
        assert cache.get(key) is None
    assert "unreadable" in caplog.text
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    ReplyCache(blocked).put(key, CachedReply("x"))  # logs, does not raise
    with pytest.raises(ValueError, match="hex"):
        cache.path("../../etc/passwd")


def _writer(root: str, writer: int, keys: list[str], rounds: int) -> None:
    cache = ReplyCache(root)
    for r in range(rounds):
        for key in keys:
            cache.put(key, CachedReply(f"writer {writer} round {r} " + "x" * 5000, writer, r))


def _reader(root: str, keys: list[str], rounds: int, out) -> None:
    cache = ReplyCache(root)
    bad = 0
    for _ in range(rounds):
        for key in keys:
            got = cache.get(key)
            if got is not None and not (got.text.startswith("writer ") and got.text.endswith("x" * 5000)):
                bad += 1
    out.put(bad)


def test_concurrent_writer_processes_never_leave_a_torn_entry(tmp_path, caplog):
    keys = [cache_key("m", MSGS, SAMPLING, seed) for seed in range(8)]
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, keys, 40)) for w in range(4)]
    procs.append(ctx.Process(target=_reader, args=(str(tmp_path), keys, 60, out)))
    with caplog.at_level(logging.WARNING):
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
    assert [p.exitcode for p in procs] == [0] * 5
    assert out.get(timeout=5) == 0, "a reader saw a partial entry"
    assert "unreadable" not in caplog.text
    cache = ReplyCache(tmp_path)
    for key in keys:  # every entry is whole: one writer's last round
        got = cache.get(key)
        assert got is not None and got.text == f"writer {got.prompt_tokens} round 39 " + "x" * 5000
    leftovers = [f for f in tmp_path.rglob("*") if f.is_file() and not f.name.endswith(".json")]
    assert leftovers == []


class Counting:
    name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, messages, params):
        self.calls += 1
        return Completion(text="85", prompt_tokens=20, completion_tokens=2)


def test_the_expert_pays_once_for_a_repeated_call_and_never_caches_a_failure(tmp_path):
    backend, plan = Counting(), FaultPlan()
    request = ExpertRequest(problem="47+38-19", query="47+38", key="s1-p0-0:0")
    with ServerThread(create_app(backend, served_model="m", faults=plan)) as srv:
        e = OpenAIExpert(srv.base_url, "m", cache=tmp_path, retry=RetryPolicy(retries=0))
        pool = ExpertPool([e], timeout_s=5)
        plan.set("500")
        [(_, failed)] = pool.ask_many_sync([request], [0])
        assert failed.error.startswith("http_500") and len(ReplyCache(tmp_path)) == 0
        [(_, first)] = pool.ask_many_sync([request], [0])
        [(_, second)] = pool.ask_many_sync([request], [0])
        assert backend.calls == 1  # the 500 never reached the backend; the repeat hit the cache
        assert (first.text, first.prompt_tokens, first.completion_tokens) == ("85", 20, 2)
        assert (second.text, second.prompt_tokens, second.completion_tokens) == ("85", 0, 0)  # not paid again
        assert e.snapshot_and_reset() == {"cache_misses": 2, "cache_hits": 1}
        # another seed is another call
        other = OpenAIExpert(srv.base_url, "m", cache=tmp_path, seed=7)
        assert ExpertPool([other]).ask_many_sync([request], [0])[0][1].ok and backend.calls == 2
        e.close()
        other.close()
    # a new run (a new expert) with the server gone still gets the reply from disk
    again = OpenAIExpert(srv.base_url, "m", cache=str(tmp_path), retry=RetryPolicy(retries=0))
    [(_, reply)] = ExpertPool([again], timeout_s=5).ask_many_sync([request], [0])
    assert (reply.text, reply.error) == ("85", None)
    again.close()
    entry = json.loads(next(tmp_path.rglob("*.json")).read_text())
    assert set(entry) == {"format", "text", "prompt_tokens", "completion_tokens"}
    assert not any(str(v).startswith("sk-") for v in entry.values())
    assert os.listdir(tmp_path)  # entries live in two-hex-digit folders
