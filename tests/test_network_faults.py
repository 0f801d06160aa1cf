"""Training through a real expert server on loopback, while the server misbehaves.

Every test here runs TRL training steps (a tiny policy on CPU) whose experts are an
`experts.kind: pool` of one OpenAI-compatible endpoint: `eapo serve-expert`'s app around
the built-in oracle, in this process (faults switched per step) or as a subprocess (killed
with SIGKILL mid-run and restarted). The policy is scripted: it consults the whole
question, then answers the first number of the expert's reply, or 0 when the expert was
unavailable. So a step's accuracy is exactly the share of its consultations that came
back, which makes "the expert worked" and "the expert failed" visible in the metrics.

What must hold: every planned step finishes, and the failures of each step are counted by
cause in that step's metrics row (`expert/pool/failures_<cause>`); steps after a fault
recover. Timeouts and backoffs are tiny so the file stays within seconds.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eapo.config import load_config
from eapo.models.build import TinyModelSpec, build_tiny_model
from eapo.rollout.fake_backend import ScriptedBackend
from eapo.serving import FaultPlan, OracleBackend, ServerThread, create_app
from eapo.training.config import TrainConfig
from eapo.assembly.run import train_from_config

pytestmark = pytest.mark.slow

BASE = [
    "rl.prompts_per_step=2", "rl.num_generations=2", "rl.save_steps=100", "rl.log_steps=1",
    "rl.learning_rate=1e-3", "eval.every_steps=0", "eval.val_size=1", "task.val_size=1", "task.test_size=1",
    "task.train_size=16", "eval.n=1", "eval.k=[1]", "eval.greedy=false", "rl.dump_rollouts_every=0",
    "rollout.tokens_per_turn=32",
    "task.min_len=1", "task.max_len=3", "rollout.max_policy_tokens=64", "rollout.max_completion_tokens=160",
    "turn_budget.train=2", "turn_budget.eval=2", "acceptance.kind=constant", "acceptance.value=1.0",
    "experts.kind=pool", "experts.timeout_s=3",
]
REPLY = re.compile(r'<expert id="\d+">\s*(-?\d+)')


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    spec = TinyModelSpec(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         intermediate_size=64)
    return str(build_tiny_model(tmp_path_factory.mktemp("m") / "policy", spec))


def member(base_url: str, **extra) -> str:
    fields = {"base_url": base_url, "model": "oracle", "timeout_s": 0.5, "retries": 1, "backoff_s": 0.01,
              "backoff_max_s": 0.02, "max_retry_after_s": 1, "breaker_failures": 0, **extra}
    return "experts.members=[" + json.dumps(fields) + "]"


def config(*extra: str) -> TrainConfig:
    return load_config(TrainConfig, None, [*BASE, *extra])


def asking_policy(on_step=None):
    """A backend factory: the scripted policy described in the module docstring.
    `on_step(step)` runs at the start of each step's rollout (1-based), in the training
    thread: the tests switch faults there."""
    steps = {"n": 0}

    def factory(model, tok):
        steps["n"] += 1
        if on_step is not None:
            on_step(steps["n"])

        def script(ctx, call):
            text = tok.decode(ctx)
            done = text.split("<|im_start|>assistant\n")[-1]
            if "<expert" not in done:
                question = text.split("user\n")[-1].split("<|im_end|>")[0]
                return tok.encode(f"<consult><query>{question}</query></consult>", add_special_tokens=False)
            m = REPLY.search(done)
            return tok.encode(f"<answer>{m.group(1) if m else 0}</answer>", add_special_tokens=False)

        return ScriptedBackend(script, (tok.eos_token_id,))

    return factory


def step_rows(run_dir: Path) -> dict[int, dict]:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r for r in rows if "expert/pool/calls" in r and "reward/accuracy" in r}


def failures(row: dict) -> dict[str, float]:
    prefix = "expert/pool/failures_"
    return {k[len(prefix):]: v for k, v in row.items() if k.startswith(prefix) and v}


# ------------------------------------------------------------------- in-process server


def test_train_through_the_server_with_a_different_fault_at_each_step(tiny, tmp_path):
    plan = FaultPlan()
    # step -> (fault for every request of that step, expected failure cause or None)
    faults = {
        1: ("ok", None),
        2: ("slow:1.5", "timeout"),      # slower than the 0.5 s attempt timeout, retried once
        3: ("500", "http_500"),
        4: ("429:0.05", "http_429"),     # Retry-After honoured, then retries run out
        5: ("bad_json", "bad_json"),     # a complete body holding half a JSON document
        6: ("truncated", "connection"),  # the connection closes half-way through the body
        7: ("empty", "empty_reply"),
        8: ("huge:3000000", None),       # a 3 MB reply: cut to max_reply_chars, still a reply
        9: ("ok", None),
    }
    on_step = lambda step: plan.set("", default=faults[step][0])  # noqa: E731
    with ServerThread(create_app(OracleBackend(), served_model="oracle", faults=plan)) as srv:
        cfg = config(f"rl.steps={len(faults)}", member(srv.base_url, max_reply_chars=4000))
        t0 = time.perf_counter()
        result = train_from_config(cfg, tmp_path / "run", policy_path=tiny, backend_factory=asking_policy(on_step))
        wall = time.perf_counter() - t0
    rows = step_rows(tmp_path / "run")
    assert sorted(rows) == list(faults), "every planned step must finish and log"
    assert result.test, "the run must reach its final evaluation"
    for step, (fault, cause) in faults.items():
        row = rows[step]
        calls = row["expert/pool/calls"]
        assert calls == 4, (step, calls)  # 2 prompts x 2 generations, one query each
        if cause is None:
            assert failures(row) == {}, (step, fault, failures(row))
            assert row["reward/accuracy"] == 1.0, (step, fault)
        else:
            assert failures(row) == {cause: calls}, (step, fault, failures(row))
            assert row["reward/accuracy"] == 0.0, (step, fault)
    # transient kinds were retried once per call; the others were not
    for step in (2, 3, 4, 6):
        assert rows[step]["expert/pool/retries"] == 4, (step, rows[step]["expert/pool/retries"])
    for step in (1, 5, 7, 8, 9):
        assert rows[step].get("expert/pool/retries", 0) == 0, step
    assert rows[8]["expert/pool/truncated"] == 4
    assert rows[2]["expert/pool/latency_p50_s"] >= 1.0  # two 0.5 s attempts
    assert rows[9]["expert/pool/total_calls"] == 4 * len(faults)
    print(f"\n{len(faults)} steps through faults in {wall:.1f}s")


# ------------------------------------------------------------------- a killed server


def _free_port() -> int:
    from eapo.serving.runner import bind

    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    return port


def _start_server(port: int, *extra: str) -> subprocess.Popen:
    script = Path(sys.executable).with_name("eapo")
    cmd = [str(script)] if script.exists() else [sys.executable, "-c", "from eapo.cli.main import app; app()"]
    proc = subprocess.Popen([*cmd, "serve-expert", "--model", "oracle", "--port", str(port), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait_healthy(port, proc)
    return proc


def _wait_healthy(port: int, proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=0.5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise RuntimeError("the server did not become healthy")


def test_server_killed_mid_run_and_restarted(tiny, tmp_path):
    """SIGKILL at the start of step 2 (no goodbye: connections reset, port closed), back
    at the start of step 4 on the same port. The breaker rests the endpoint while it is
    dead, lets one trial through once it is back, and later steps are clean."""
    port = _free_port()
    procs = [_start_server(port)]

    def on_step(step: int) -> None:
        if step == 2:
            procs[-1].send_signal(signal.SIGKILL)
            procs[-1].wait(10)
        if step == 4:
            procs.append(_start_server(port))

    try:
        cfg = config("rl.steps=6", member(f"http://127.0.0.1:{port}/v1", breaker_failures=2,
                                          breaker_cooldown_s=0.3))
        train_from_config(cfg, tmp_path / "run", policy_path=tiny, backend_factory=asking_policy(on_step))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
    rows = step_rows(tmp_path / "run")
    assert sorted(rows) == [1, 2, 3, 4, 5, 6]
    assert failures(rows[1]) == {} and rows[1]["reward/accuracy"] == 1.0
    for step in (2, 3):  # dead: refused connections, then the resting breaker answers at once
        assert set(failures(rows[step])) <= {"connection", "circuit_open"}, failures(rows[step])
        assert sum(failures(rows[step]).values()) == 4 and rows[step]["reward/accuracy"] == 0.0
    assert "connection" in failures(rows[2])
    assert rows[4]["reward/accuracy"] > 0.0  # the half-open trial succeeded
    for step in (5, 6):
        assert failures(rows[step]) == {} and rows[step]["reward/accuracy"] == 1.0, (step, failures(rows[step]))
    assert rows[6]["expert/pool/total_failures"] >= 8
    assert sum(r.get("expert/pool/breaker_opens", 0) for r in rows.values()) >= 1


# ------------------------------------------------------------------- secrets


def test_the_api_key_is_in_no_log_line_metric_or_run_file(tiny, tmp_path, monkeypatch, caplog, capfd):
    import secrets

    key = "sk-eapo-" + secrets.token_hex(20)
    monkeypatch.setenv("EAPO_TEST_EXPERT_KEY", key)
    caplog.set_level(logging.DEBUG)  # every logger, the openai client's and httpx's debug lines included
    with ServerThread(create_app(OracleBackend(), served_model="oracle", api_key=key)) as srv:
        cfg = config("rl.steps=2", "rl.save_steps=1", "rl.dump_rollouts_every=1",
                     member(srv.base_url, api_key_env="EAPO_TEST_EXPERT_KEY"))
        train_from_config(cfg, tmp_path / "run", policy_path=tiny, backend_factory=asking_policy())
    rows = step_rows(tmp_path / "run")
    # the key was used (the server refuses calls without it) ...
    assert [rows[s]["reward/accuracy"] for s in (1, 2)] == [1.0, 1.0] and failures(rows[2]) == {}
    # ... and is nowhere: not in any file of the run (config, metrics, dumps, checkpoints) ...
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert len(files) > 10 and any(p.name == "config.yaml" for p in files)
    secret = key.encode()
    leaks = [str(p) for p in files if secret in p.read_bytes() or secret[-20:] in p.read_bytes()]
    assert leaks == []
    assert "EAPO_TEST_EXPERT_KEY" in (tmp_path / "run" / "config.yaml").read_text()  # the name is, by design
    # ... nor in any log record or anything printed
    assert caplog.records and any(r.name.startswith(("openai", "httpx")) for r in caplog.records)
    assert key not in caplog.text and key[-20:] not in caplog.text
    out = capfd.readouterr()
    assert key not in out.out and key not in out.err
