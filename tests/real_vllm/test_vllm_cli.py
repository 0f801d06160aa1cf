"""`eapo rollout` and `eapo eval` with `--backend vllm`, as a user runs them: the `eapo`
command in a process of its own (its environment without this tier's vLLM settings, so the
command's own CPU defaults are what run), where a real `vllm.LLM` starts on the given policy
(the wired Qwen2 model with the real tokenizer) or on the tiny built-in policy.

In a process of its own also because vLLM's parallel state is per process: an engine torn
down in this one would take the session engine of the other tests with it."""

from __future__ import annotations

import json

import os
import subprocess
import sys
from pathlib import Path

from transformers import AutoTokenizer

from eapo.rollout.dump import validate_file

EAPO = str(Path(sys.executable).with_name("eapo"))


def eapo(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "VLLM_ENABLE_V1_MULTIPROCESSING"}
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    return subprocess.run([EAPO, *args], capture_output=True, text=True, env=env, timeout=900)


def test_rollout_with_the_vllm_backend(wired_dir, tmp_path):
    folder, _ = wired_dir
    out = tmp_path / "r.jsonl"
    res = eapo("rollout", "--policy", str(folder), "--backend", "vllm", "--out", str(out),
               "--n", "3", "--turns", "2", "--rho", "1.0", "--temperature", "1.0")
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    assert validate_file(out) == 3
    tok = AutoTokenizer.from_pretrained(str(folder))
    for rec in map(json.loads, out.read_text().splitlines()):
        own = [t for t, m in zip(rec["completion_ids"], rec["loss_mask"]) if m]
        assert tok.decode(own) == rec["policy_text"]
        assert "consult" in rec["policy_text"]  # the wired policy consults in its first turn
        assert any(m == 0 for m in rec["loss_mask"])  # the oracle's reply, appended with mask 0


def test_eval_with_the_vllm_backend_records_it_and_will_not_mix_engines(tmp_path):
    out = tmp_path / "ev"
    args = ("eval", "--benchmark", "chain", "--limit", "4", "-n", "2", "-k", "1,2", "--turns", "2",
            "--tokens-per-turn", "32", "--max-tokens", "64", "--out", str(out), "--cache-dir", str(tmp_path / "c"))
    res = eapo(*args, "--backend", "vllm")
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["problems"] == 4 and 0.0 <= summary["eval/avg@n"] <= 1.0
    assert json.loads((out / "eval_config.json").read_text())["backend"] == "vllm"
    items = [json.loads(x) for x in (out / "items.jsonl").read_text().splitlines()]
    assert len([r for r in items if not r["greedy"]]) == 8 and len([r for r in items if r["greedy"]]) == 4
    assert all(r["policy_tokens"] <= 64 for r in items)
    again = eapo(*args, "--backend", "hf")  # the same folder, another engine: refused
    assert again.returncode == 2 and "backend" in " ".join(again.stdout.split()), again.stdout + again.stderr[-2000:]


def test_compare_evaluates_its_base_row_with_vllm(wired_dir, tmp_path):
    folder, _ = wired_dir
    out = tmp_path / "cmp"
    sets = ["eval.backend=vllm", "eval.n=2", "eval.k=[1,2]", "task.test_size=4", "task.val_size=2", "eval.val_size=2",
            "task.train_size=4", "rollout.tokens_per_turn=16", "rollout.max_policy_tokens=32", "turn_budget.eval=1"]
    res = eapo("compare", "--rows", "base", "--seeds", "1", "--model", str(folder), "--out", str(out),
               *[x for s in sets for x in ("--set", s)])
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    assert "starting vLLM" in res.stderr  # the row's policy was loaded by vLLM, not transformers
    cell = out / "base" / "seed-0"
    records = [json.loads(x) for x in (cell / "test_records.jsonl").read_text().splitlines()]
    assert len([r for r in records if not r.get("greedy")]) == 8
    assert json.loads((out / "results.json").read_text())["rows"]
