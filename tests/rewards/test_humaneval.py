"""All 164 HumanEval canonical solutions pass in the sandbox, and a wrong body fails.

Data: `humaneval.jsonl` in the benchmark data folder (`eapo.evaluation.benchmarks.data_dir`);
the tests that need it are skipped, with the reason, if it is absent.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from eapo.evaluation.benchmarks import data_dir
from eapo.rewards.code import CODE_SCORER, humaneval_program, score_humaneval


def _problems() -> list[dict[str, Any]]:
    try:
        path = data_dir() / "humaneval.jsonl"
    except FileNotFoundError as e:
        pytest.skip(str(e))
    if not path.exists():
        pytest.skip(f"no {path}")
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _solution(p: dict[str, Any]) -> str:
    return p.get("canonical_solution") or p["answer"]


def _score_all(pairs: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda cp: score_humaneval(cp[0], cp[1], timeout_s=10.0), pairs))


def test_all_canonical_solutions_pass() -> None:
    problems = _problems()
    assert len(problems) == 164
    results = _score_all([(_solution(p), p) for p in problems])
    failed = [(p["id"], r.reason) for p, r in zip(problems, results) if r.score != 1.0]
    assert failed == []


@pytest.mark.parametrize("body", ["    return None\n", "    raise NotImplementedError\n"])
def test_wrong_bodies_fail(body: str) -> None:
    problems = _problems()
    results = _score_all([(body, p) for p in problems])
    passed = [p["id"] for p, r in zip(problems, results) if r.score != 0.0]
    assert passed == []
    assert {r.reason for r in results} == {"failed"}


def test_program_is_built_like_the_original_harness() -> None:
    p = {"prompt": "def f():\n", "test": "def check(c):\n    assert c() == 1", "entry_point": "f"}
    assert humaneval_program("    return 1\n", p) == (
        "def f():\n    return 1\n\ndef check(c):\n    assert c() == 1\ncheck(f)"
    )
    assert CODE_SCORER("    return 1\n", p).score == 1.0
    assert CODE_SCORER("    while True: pass\n", p, timeout_s=0.5).reason == "timeout"
    assert CODE_SCORER(None, p).reason == "no_answer"
