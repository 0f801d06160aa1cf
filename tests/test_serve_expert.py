"""`eapo serve-expert`: the OpenAI-compatible server on loopback. Requests are validated
(every bad request gets its 4xx in OpenAI's error envelope and the server keeps serving),
the oracle answers the built-in task exactly through the documented message format, a
local Hugging Face model answers too, and the CLI binds 127.0.0.1 and refuses an unset
key variable."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from eapo.experts import ExpertPool
from eapo.experts.openai_expert import OpenAIExpert
from eapo.serving import Completion, OracleBackend, ServerThread, create_app
from eapo.tasks.arithmetic import ChainTask, chain_steps, evaluate_chain
from eapo.types import ExpertRequest

GOOD = {"model": "oracle", "messages": [{"role": "user", "content": "Problem:\n47+38-19\n\nQuestion:\n47+38"}]}


def call(srv: ServerThread, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
         chunked: bool = False) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        if chunked:
            conn.putrequest(method, path)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            step = 64 * 1024
            for i in range(0, len(body or b""), step):
                piece = body[i : i + step]
                conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            conn.send(b"0\r\n\r\n")
        else:
            conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else {}
    finally:
        conn.close()


def post(srv, payload, **kw):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return call(srv, "POST", "/v1/chat/completions", body, {"Content-Type": "application/json", **kw.pop("headers", {})},
                **kw)


@pytest.fixture(scope="module")
def srv():
    with ServerThread(create_app(OracleBackend(), served_model="oracle", max_body_bytes=100_000,
                                 max_tokens_limit=512)) as s:
        yield s


def test_answers_and_lists_its_model(srv):
    status, body = post(srv, GOOD)
    assert status == 200 and body["object"] == "chat.completion" and body["model"] == "oracle"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "85"}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == 2
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 2
    assert call(srv, "GET", "/v1/models")[1]["data"][0]["id"] == "oracle"
    assert call(srv, "GET", "/health") == (200, {"status": "ok"})


@pytest.mark.parametrize(
    "payload, status, needle",
    [
        (b"{not json", 400, "not valid JSON"),
        (b"\xff\xfe", 400, "not valid JSON"),
        (b"[1, 2]", 400, "must be a JSON object"),
        ({"messages": GOOD["messages"]}, 400, "model: Field required"),
        ({"model": "oracle"}, 400, "messages: Field required"),
        ({"model": "oracle", "messages": []}, 400, "messages"),
        ({"model": "oracle", "messages": [{"role": "robot", "content": "1+2"}]}, 400, "role"),
        ({"model": "oracle", "messages": [{"role": "user", "content": 5}]}, 400, "content"),
        ({**GOOD, "temperature": -1}, 400, "temperature"),
        ({**GOOD, "top_p": 0}, 400, "top_p"),
        ({**GOOD, "max_tokens": 0}, 400, "max_tokens"),
        ({**GOOD, "max_tokens": 100_000}, 400, "over this server's limit"),
        ({**GOOD, "stream": True}, 400, "stream"),
        ({**GOOD, "n": 2}, 400, "n=1"),
        ({**GOOD, "model": "gpt-9"}, 404, "not served here"),
        ({"model": "oracle", "messages": [{"role": "system", "content": "hi"}]}, 400, "no user message"),
        (b'{"model": "oracle", "messages": [' + b'{"role": "user", "content": "x"},' * 5000 + b"]}", 413, "limit"),
    ],
)
def test_bad_requests_get_their_4xx_and_the_server_keeps_serving(srv, payload, status, needle):
    got, body = post(srv, payload)
    assert got == status and needle in body["error"]["message"], body
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert post(srv, GOOD)[0] == 200


def test_an_oversized_chunked_body_is_refused_while_read(srv):
    body = json.dumps({**GOOD, "pad": "x" * 200_000}).encode()
    status, err = post(srv, body, chunked=True)
    assert status == 413 and err["error"]["code"] == "too_large"
    assert post(srv, GOOD)[0] == 200


def test_a_backend_crash_is_a_500_not_a_dead_server():
    class Broken:
        name = "broken"

        def __init__(self):
            self.n = 0

        async def complete(self, messages, params):
            self.n += 1
            if self.n == 1:
                raise RuntimeError("boom")
            return Completion("ok", 1, 1)

    with ServerThread(create_app(Broken(), served_model="oracle")) as s:
        status, body = post(s, GOOD)
        assert status == 500 and body["error"]["type"] == "server_error" and "boom" not in body["error"]["message"]
        assert post(s, GOOD)[0] == 200


def test_api_key_is_required_when_set():
    with ServerThread(create_app(OracleBackend(), served_model="oracle", api_key="k-123")) as s:
        assert post(s, GOOD)[0] == 401
        assert post(s, GOOD, headers={"Authorization": "Bearer wrong"})[0] == 401
        assert call(s, "GET", "/v1/models")[0] == 401
        assert post(s, GOOD, headers={"Authorization": "Bearer k-123"})[0] == 200
        assert call(s, "GET", "/health")[0] == 200  # liveness needs no key


def test_the_oracle_server_answers_every_step_of_the_builtin_task_through_the_client(srv):
    task = ChainTask(min_len=2, max_len=6, sizes=(("train", 30),))
    requests, expected = [], []
    for p in task.split("train"):
        queries = [f"{a}{op}{b}" for a, op, b, _ in chain_steps(p.question)] + [p.question, "what?"]
        for q in queries:
            requests.append(ExpertRequest(problem=p.question, query=q, key=f"{p.id}:{q}"))
            value = evaluate_chain(q)
            expected.append("?" if value is None else str(value))
    expert = OpenAIExpert(srv.base_url, "oracle", max_concurrency=16)
    try:
        replies = ExpertPool([expert], timeout_s=30).ask_many_sync(requests, [0] * len(requests))
    finally:
        expert.close()
    assert len(requests) > 150
    assert [r.text for _, r in replies] == expected


@pytest.mark.slow
def test_a_local_hf_model_is_served(tmp_path):
    from eapo.models.build import TinyModelSpec, build_tiny_model
    from eapo.serving import HFChatBackend

    spec = TinyModelSpec(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         intermediate_size=64)
    path = str(build_tiny_model(tmp_path / "m", spec))
    with ServerThread(create_app(HFChatBackend(path), served_model="tiny")) as s:
        payload = {"model": "tiny", "messages": GOOD["messages"], "max_tokens": 8, "temperature": 1.0, "seed": 5}
        status, a = post(s, payload)
        assert status == 200, a
        _, b = post(s, payload)
        assert isinstance(a["choices"][0]["message"]["content"], str)
        assert 1 <= a["usage"]["completion_tokens"] <= 8 and a["usage"]["prompt_tokens"] > 10
        assert a["choices"][0]["message"] == b["choices"][0]["message"]  # same seed, same reply
        assert post(s, {**GOOD, "model": "tiny", "messages": [{"role": "system", "content": "x"}]})[0] == 400


def _cli(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("eapo")
    base = [str(script)] if script.exists() else [sys.executable, "-c", "from eapo.cli.main import app; app()"]
    return [*base, "serve-expert", *args]


def test_cli_serves_on_loopback_and_prints_where():
    proc = subprocess.Popen(_cli("--model", "oracle", "--port", "0"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        m = re.fullmatch(r"serving oracle on http://127\.0\.0\.1:(\d+)/v1\n", line)
        assert m, line
        s = ServerThread.__new__(ServerThread)  # only .port is used by `call`
        s.port = int(m.group(1))
        status, body = post(s, GOOD)
        assert (status, body["choices"][0]["message"]["content"]) == (200, "85")
    finally:
        proc.kill()
        proc.wait(10)


@pytest.mark.parametrize("args, needle", [
    (["--api-key-env", "EAPO_SURELY_UNSET_VAR"], "EAPO_SURELY_UNSET_VAR, which is not set"),
    (["--faults", "explode"], "unknown fault"),
])
def test_cli_refuses_bad_settings(args, needle):
    done = subprocess.run(_cli("--model", "oracle", "--port", "0", *args), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and needle in done.stderr
