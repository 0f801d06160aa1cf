"""Seed aggregation and paired differences, on hand-made run directories."""

from __future__ import annotations

import json
import math

import pytest

from eapo.training.summary import markdown, summarize


def make_run(root, name, base, self_rl, eapo, scores_self, scores_eapo):
    run = root / name
    rows = {arm: {"test": {"eval/avg@n": v, "eval/greedy_acc": v / 2}} for arm, v in
            (("base", base), ("self_rl", self_rl), ("eapo", eapo))}
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"policy": "p", "rows": rows}))
    for arm, scores in (("self_rl", scores_self), ("eapo", scores_eapo)):
        (run / arm).mkdir()
        lines = [json.dumps({"problem_id": f"p{i}", "score": s, "greedy": False}) for i, ss in enumerate(scores)
                 for s in ss]
        lines.append(json.dumps({"problem_id": "p0", "score": 1.0, "greedy": True}))  # greedy rows are ignored
        (run / arm / "test_records.jsonl").write_text("\n".join(lines) + "\n")
        (run / arm / "metrics.jsonl").write_text(json.dumps({"step": 1, "expert/consult_rate": 0.5}) + "\n")
    return run


def test_means_spreads_and_paired_differences(tmp_path):
    r1 = make_run(tmp_path, "s1", 0.1, 0.2, 0.3, [[0, 1], [0, 0]], [[1, 1], [0, 1]])
    r2 = make_run(tmp_path, "s2", 0.1, 0.4, 0.5, [[0, 0], [0, 0]], [[0, 0], [0, 0]])
    s = summarize([r1, r2])
    m, sd = s["arms"]["eapo"]["avg@n"]
    assert m == pytest.approx(0.4) and sd == pytest.approx(math.sqrt(0.02))
    assert s["arms"]["base"]["avg@n"] == (pytest.approx(0.1), 0.0)
    # seed 1: per-problem means self (0.5, 0) vs eapo (1, 0.5): differences 0.5, 0.5
    assert s["paired"][0]["diff"] == pytest.approx(0.5) and s["paired"][0]["se"] == pytest.approx(0.0)
    assert s["paired"][1]["diff"] == pytest.approx(0.0)
    text = markdown(s)
    assert "| EAPO | 20.0 ± 7.1 | 40.0 ± 14.1 |" in text
    assert "mean over seeds: +25.00" in text
