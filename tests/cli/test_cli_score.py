"""`eapo score` end to end on a hand-checked fixture: three GSM8K problems with two
completions each (skipped without the data folder), a user's own JSONL benchmark, and the
errors for unknown ids and the sandbox-only "code" scorer."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from eapo.cli.main import app


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_score_gsm8k_fixture(tmp_path, have_data):
    # golds: 0000 -> 18, 0001 -> 3, 0002 -> 70000
    preds = _write(tmp_path / "p.jsonl", [
        {"id": "gsm8k-test-0000", "completions": [r"\boxed{18}", r"\boxed{17}"]},  # 1, 0
        {"id": "gsm8k-test-0001", "completion": "<answer>3</answer>"},  # 1 ...
        {"id": "gsm8k-test-0001", "completion": r"so \boxed{3}"},  # ... 1 (a second line adds a sample)
        {"id": "gsm8k-test-0002", "completions": [r"\boxed{7000}", None]},  # 0, 0 (null: no answer)
    ])
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["score", "--benchmark", "gsm8k", "--predictions", str(preds), "--out", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    # per problem means 1/2, 1, 0 -> avg 1/2; pass@2: 1, 1, 0 -> 2/3; variances 1/4, 0, 0 -> 1/12
    assert summary["scorer"] == "math"
    assert summary["avg@n"] == pytest.approx(0.5)
    assert summary["pass@1"] == pytest.approx(0.5)
    assert summary["pass@2"] == pytest.approx(2 / 3)
    assert summary["var"] == pytest.approx(1 / 12)
    assert (summary["n"], summary["problems"]) == (2.0, 3.0)
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert [(i["id"][-4:], i["sample"], i["score"], i["reason"]) for i in items] == [
        ("0000", 0, 1.0, "match"), ("0000", 1, 0.0, "mismatch"),
        ("0001", 0, 1.0, "match"), ("0001", 1, 1.0, "match"),
        ("0002", 0, 0.0, "mismatch"), ("0002", 1, 0.0, "no_answer"),
    ]
    assert items[1]["extracted"] == "17"
    assert "avg@n" in res.output


def test_score_own_benchmark_with_f1(tmp_path):
    bench = _write(tmp_path / "qa.jsonl", [{"key": "a", "text": "Capital of France?", "gold": "Paris"}])
    preds = _write(tmp_path / "p.jsonl", [{"id": "a", "completions": ["<answer>Paris</answer>", "Paris, France"]}])
    out = tmp_path / "o"
    res = CliRunner().invoke(app, ["score", "--benchmark", str(bench), "--predictions", str(preds), "--scorer", "f1",
                                   "--field", "id=key", "--field", "question=text", "--field", "answer=gold",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    # F1 1 and 2(1/2)(1)/(3/2) = 2/3 -> mean 5/6; pass@1 counts only full scores: 1/2
    assert summary["avg@n"] == pytest.approx(5 / 6)
    assert summary["pass@1"] == pytest.approx(0.5)


def test_unknown_ids_are_listed(tmp_path):
    bench = _write(tmp_path / "b.jsonl", [{"id": "x1", "question": "q", "answer": "1"}])
    preds = _write(tmp_path / "p.jsonl", [{"id": "zz9", "completion": "1"}, {"id": "x1", "completion": "1"}])
    res = CliRunner().invoke(app, ["score", "--benchmark", str(bench), "--predictions", str(preds)])
    assert res.exit_code == 2
    assert "zz9" in res.output and "x1" in res.output


def test_code_scorer_needs_tests_and_entry_point(tmp_path):
    bench = _write(tmp_path / "b.jsonl", [{"id": "x1", "question": "q", "answer": "1"}])
    preds = _write(tmp_path / "p.jsonl", [{"id": "x1", "completion": "1"}])
    res = CliRunner().invoke(app, ["score", "--benchmark", str(bench), "--predictions", str(preds), "--scorer", "code"])
    assert res.exit_code == 2
    assert "entry_point" in res.output


def test_humaneval_predictions_run_in_the_sandbox(tmp_path):
    from eapo.evaluation.benchmarks import load_benchmark

    try:
        problems = load_benchmark("humaneval", limit=2)
    except (FileNotFoundError, OSError) as e:
        pytest.skip(f"benchmark data not available: {e}")
    rows = []
    for p in problems:  # canonical body passes, a wrong one fails: avg 0.5, pass@2 1.0 per problem
        rows += [{"id": p.id, "completion": p.meta["canonical_solution"]}, {"id": p.id, "completion": "    return None\n"}]
    preds = _write(tmp_path / "p.jsonl", rows)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["score", "--benchmark", "humaneval", "--predictions", str(preds), "--scorer", "code",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["avg@n"] == pytest.approx(0.5) and summary["pass@2"] == pytest.approx(1.0)
