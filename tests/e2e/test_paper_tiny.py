"""The paper's setting end to end at tiny scale, through the real commands (issue 9).

One pipeline, run once for this file, exactly as docs/WALKTHROUGH.md's tiny track runs it:
`eapo serve-expert` serves the tiny built-in expert model on loopback (an OpenAI-compatible
HTTP server, like vLLM in the real setting); `eapo train examples/paper/tiny_cpu.yaml`
trains the tiny policy on DAPO-Math-17k problems read by the dataset loader, with three
expert replicas consulted over HTTP and rewards scored by math-verify; `eapo eval` then
evaluates the trained policy expert-free on AIME 2024 with n = 4. Each test below checks
one claim on what those commands wrote: the episodes consulted the served expert, its
tokens carry loss mask 0, each reward is math-verify's verdict on an answer read from the
policy's own tokens, and the evaluation wrote per-item records and a summary with avg@n,
pass@k and variance.

Both tiny models are untrained, so accuracy is zero and the policy consults by chance
(about 5 valid consultations in the run's 128 episodes; sampling is seeded, so the count is
the same on every run of this code). Subprocesses run with one torch thread: on a shared
2-core machine two threads made the tiny policy's rollout 16x slower (docs/RESULTS.md,
"The paper's setting end to end, tiny").
Skipped when the benchmark data (../shared/data or $EAPO_DATA_DIR) is absent.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "examples" / "paper" / "tiny_cpu.yaml"
N, KS = 4, (1, 2, 4)


def _eapo() -> list[str]:
    script = Path(sys.executable).with_name("eapo")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from eapo.cli.main import app; app()"]


def _run(args: list[str], env: dict[str, str], log: Path) -> float:
    """Run an `eapo` command to completion; its output goes to `log`. Returns wall seconds."""
    t0 = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.run([*_eapo(), *args], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, timeout=900)
    if proc.returncode:
        pytest.fail(f"eapo {args[0]} exited {proc.returncode}:\n{log.read_text()[-4000:]}")
    return time.perf_counter() - t0


def _start_server(expert: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    """`eapo serve-expert` on a free loopback port; returns the process and its base URL."""
    out = log.open("w")
    proc = subprocess.Popen([*_eapo(), "serve-expert", "--model", expert, "--served-model-name", "tiny-expert",
                             "--port", "0"], env=env, stdout=subprocess.PIPE, stderr=out, text=True, cwd=REPO)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the one line scripts wait for: "serving NAME on URL"
    if not line.startswith("serving tiny-expert on http://127.0.0.1:"):
        proc.kill()
        pytest.fail(f"serve-expert did not start: {line!r}\n{log.read_text()[-2000:]}")
    return proc, line.split(" on ", 1)[1].strip()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    from eapo.evaluation.benchmarks import data_dir

    try:
        data_dir()
    except FileNotFoundError as e:
        pytest.skip(f"the paper's setting needs DAPO-Math-17k and AIME 2024: {e}")
    from eapo.models.build import ensure_tiny_models

    root = tmp_path_factory.mktemp("paper")
    cache = root / "cache"
    expert = str(ensure_tiny_models(cache)["expert"])
    env = {**os.environ, "EAPO_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    t0 = time.perf_counter()
    server, url = _start_server(expert, env, root / "serve.log")
    times = {"serve_start_s": time.perf_counter() - t0}
    start_policy = ensure_tiny_models(cache)["policy"]
    try:
        config = root / "tiny_cpu.yaml"  # the example with the port this server got
        config.write_text(CONFIG.read_text().replace("http://127.0.0.1:8000/v1", url))
        times["train_s"] = _run(["train", str(config), "--arms", "eapo", "--out", str(root / "run")], env,
                                root / "train.log")
        times["eval_s"] = _run(["eval", "--benchmark", "aime2024", "--model", str(root / "run" / "eapo" / "final"),
                                "-n", str(N), "-k", ",".join(map(str, KS)), "--turns", "4", "--tokens-per-turn", "48",
                                "--max-tokens", "256", "--out", str(root / "eval")], env, root / "eval.log")
    finally:
        server.terminate()
        server.wait(timeout=30)
    times["total_s"] = time.perf_counter() - t0
    logging.getLogger(__name__).info("paper tiny pipeline: %s", {k: round(v, 1) for k, v in times.items()})
    return {"run": root / "run" / "eapo", "eval": root / "eval", "url": url, "times": times, "start": start_policy}


def _episodes(run: Path) -> list[dict]:
    files = sorted((run / "rollouts").glob("rollouts-step*.jsonl"))
    assert len(files) == 4, files  # rl.dump_rollouts_every: 1, rl.steps: 4
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def test_the_run_is_the_paper_setting_through_the_dataset_loader(pipeline):
    cfg = yaml.safe_load((pipeline["run"] / "config.yaml").read_text())
    assert cfg["task"]["data"] == "dapo_math" and cfg["task"]["scorer"] == "math"
    assert cfg["rollout"]["max_queries"] == 3 and cfg["turn_budget"]["train"] == 10
    assert cfg["rollout"]["tags"]["allow_boxed"] is True  # a math set reads \boxed{} answers
    assert [m["base_url"] for m in cfg["experts"]["members"]] == [pipeline["url"]] * 3
    episodes = _episodes(pipeline["run"])
    assert len(episodes) == 4 * 8 * 4
    assert all(e["problem_id"].startswith("dapo-") for e in episodes)


def test_the_updates_changed_the_policy(pipeline):
    from safetensors.torch import load_file

    rows = [json.loads(x) for x in (pipeline["run"] / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss/grad_norm" in r] == [1, 2, 3, 4]
    # groups whose rewards differ (a well-formed wrong answer earns 0.1) give a gradient
    assert any(r["loss/grad_norm"] > 0 for r in rows if "loss/grad_norm" in r)
    before = load_file(str(pipeline["start"] / "model.safetensors"))
    after = load_file(str(pipeline["run"] / "final" / "model.safetensors"))
    assert before.keys() == after.keys() and any(not (before[k] == after[k]).all() for k in before)


def test_episodes_consulted_the_served_expert_over_http(pipeline):
    calls = [c for e in _episodes(pipeline["run"]) for t in e["turns"] for c in t["calls"]]
    answered = [c for c in calls if c["accepted"]]
    assert answered, "the untrained policy wrote no consultation that reached the server"
    for c in answered:  # token counts come from the server's tokenizer; latency is a real round trip
        assert c["expert"] in {"expert-0", "expert-1", "expert-2"} and c["completion_tokens"] > 0
        assert c["latency_s"] > 0 and c["reply"]
    rows = [json.loads(x) for x in (pipeline["run"] / "metrics.jsonl").read_text().splitlines()]
    pool_calls = sum(r.get("expert/pool/calls", 0) for r in rows)
    assert pool_calls == len([c for c in calls if c["reason"] == "accepted" or c["reason"].startswith("expert_error")])


def test_expert_tokens_carry_loss_mask_zero(pipeline):
    from transformers import AutoTokenizer

    from eapo.protocol.render import render_reply
    from eapo.protocol.tags import Tags

    tok = AutoTokenizer.from_pretrained(str(pipeline["run"] / "final"))
    replies = 0
    for e in _episodes(pipeline["run"]):
        ids, mask = e["completion_ids"], e["loss_mask"]
        # the record's layout: each turn's policy tokens (mask 1), then what the engine appended (mask 0)
        layout: list[int] = []
        for t in e["turns"]:
            layout += [1] * t["policy_tokens"] + [0] * t["observation_tokens"]
        assert mask == layout
        observed = tok.decode([i for i, m in zip(ids, mask) if m == 0])
        for c in (c for t in e["turns"] for c in t["calls"] if c["accepted"]):
            shown = render_reply(c["member"], c["reply"], Tags())  # <expert id="i">reply</expert>
            assert shown in observed and c["reply"].strip() not in e["policy_text"]  # in mask-0 tokens only
            replies += 1
    assert replies > 0


def test_rewards_are_math_verify_on_the_policy_s_own_answer(pipeline):
    from eapo.protocol.parser import parse_segment
    from eapo.protocol.tags import Tags
    from eapo.rewards.math import math_score

    tags = Tags(allow_boxed=True)
    answered = 0
    for e in _episodes(pipeline["run"]):
        if e["answer"] is not None:
            answered += 1
            # the policy's own text after the last observation (mask-1 tokens) holds that answer
            assert parse_segment(_last_policy_segment(e), tags, 3).answer == e["answer"]
        expected = math_score(e["answer"], e["gold"]).score
        assert e["score"] == expected
        assert e["reward"] == (expected if expected > 0 else (0.1 if e["well_formed"] else 0.0))
    assert answered > 0


def _last_policy_segment(e: dict) -> str:
    from transformers import AutoTokenizer

    tok = _last_policy_segment.tok = getattr(_last_policy_segment, "tok", None) or AutoTokenizer.from_pretrained(
        e["tokenizer_path"])
    i = len(e["loss_mask"])
    while i > 0 and e["loss_mask"][i - 1] == 1:
        i -= 1
    return tok.decode(e["completion_ids"][i:], skip_special_tokens=True)


def test_eval_wrote_items_and_a_summary(pipeline):
    out = pipeline["eval"]
    items = [json.loads(x) for x in (out / "items.jsonl").read_text().splitlines()]
    ids = {r["id"] for r in items}
    assert len(ids) == 30 and all(i.startswith("aime2024-") for i in ids)
    assert len(items) == 30 * (N + 1)  # n samples and one greedy episode per problem
    assert all(r["expert_calls"] == 0 for r in items)  # expert-free
    summary = json.loads((out / "summary.json").read_text())
    assert summary["benchmark"] == "aime2024" and summary["scorer"] == "math" and summary["n"] == N
    for key in ("eval/avg@n", "eval/var", *(f"eval/pass@{k}" for k in KS)):
        assert 0.0 <= summary[key] <= 1.0, key
    sampled = [r["score"] for r in items if not r["greedy"]]
    assert summary["eval/avg@n"] == pytest.approx(sum(sampled) / len(sampled))
