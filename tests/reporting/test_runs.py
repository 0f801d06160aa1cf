"""Reading run folders and results files tolerantly, and episodes without their tokenizer
(fast: hand-made files, no training)."""

from __future__ import annotations

import json

import pytest

from eapo.reporting.episodes import episode_view
from eapo.reporting.html import render_html
from eapo.reporting.names import canonical_row
from eapo.reporting.runs import Cell, discover, read_results
from eapo.training.summary import summarize


@pytest.mark.parametrize("data", [
    {"rows": {"eapo": {"eval/avg@n": {"values": [0.2, 0.4], "mean": 0.3, "std": 0.1414}}}},
    {"rows": [{"name": "eapo", "metrics": {"eval/avg@n": {"per_seed": {"0": 0.2, "1": 0.4}}}}]},
    {"results": [{"row": "eapo", "eval/avg@n": [0.2, 0.4]}]},
    [{"name": "eapo", "metrics": {"eval/avg@n": {"seeds": [0.2, 0.4], "mean": 0.3, "sd": 0.1414}}}],
])
def test_results_layouts_read_the_same(tmp_path, data):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    table = read_results(path)
    [(name, cells)] = table.rows
    assert name == "eapo" and table.columns == ["eval/avg@n"]
    cell = cells["eval/avg@n"]
    assert cell.mean == pytest.approx(0.3) and cell.std == pytest.approx(0.1414, abs=1e-4)
    assert cell.values == (0.2, 0.4)


def test_results_groups_are_flattened_and_junk_is_ignored(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"seeds": [0, 1], "rows": [
        {"name": "self_rl", "seeds": [0, 1], "error": None,
         "metrics": {"test": {"avg@n": {"mean": 0.1}}, "wall_s": 12, "note": "text"}},
        {"name": "broken", "status": "failed"},
    ]}))
    table = read_results(path)
    assert [name for name, _ in table.rows] == ["self_rl"]
    assert table.rows[0][1] == {"test/avg@n": Cell(0.1), "wall_s": Cell(12.0)}
    assert table.columns == ["test/avg@n", "wall_s"]
    (tmp_path / "other.json").write_text(json.dumps({"policy": "p"}))
    assert read_results(tmp_path / "other.json") is None


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_discover_reads_old_names_resumed_steps_and_torn_lines(tmp_path):
    run = tmp_path / "a" / "eapo"
    run.mkdir(parents=True)
    write_rows(run / "metrics.jsonl", [
        {"step": 1, "reward": 0.1, "frac_reward_zero_std": 0.9},
        {"step": 2, "reward": 0.2, "frac_reward_zero_std": 0.8},
        {"step": 2, "reward": 0.25, "frac_reward_zero_std": 0.7},  # redone after a resume: the later row wins
    ])
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"step": 3, "rew')  # killed mid-write
    (run / "checkpoint-2").mkdir()
    write_rows(run / "checkpoint-2" / "metrics.jsonl", [{"step": 9}])  # never a run of its own
    other = tmp_path / "b" / "eapo"
    other.mkdir(parents=True)
    write_rows(other / "metrics.jsonl", [{"step": 1, "reward/mean": 0.5}])
    inputs = discover([tmp_path / "a" / "eapo", tmp_path / "b" / "eapo"])
    assert [r.label for r in inputs.runs] == ["a/eapo", "b/eapo"]  # same names: told apart by their parents
    first = inputs.runs[0]
    assert first.series("reward/mean") == ([1, 2], [0.1, 0.25])
    assert first.series("reward/frac_zero_std") == ([1, 2], [0.9, 0.7])
    assert first.mean("reward/mean") == pytest.approx(0.175)


def test_summary_reads_old_and_new_zero_variance_names(tmp_path):
    for name, key in (("old", "frac_reward_zero_std"), ("new", "reward/frac_zero_std")):
        run = tmp_path / name
        (run / "eapo").mkdir(parents=True)
        (run / "summary.json").write_text(json.dumps({"rows": {"eapo": {"test": {"eval/avg@n": 0.5}}}}))
        write_rows(run / "eapo" / "metrics.jsonl", [{"step": 1, key: 0.6}, {"step": 2, key: 0.8}])
    s = summarize([tmp_path / "old", tmp_path / "new"])
    assert s["arms"]["eapo"]["reward/frac_zero_std"] == (pytest.approx(0.7), pytest.approx(0.0))


def dump_record(tokenizer_path: str) -> dict:
    return {
        "uid": "s3-p1-0", "problem_id": "p1", "question": "1+2</script><b>x</b>", "gold": "3", "step": 3,
        "tokenizer_path": tokenizer_path, "completion_ids": [1, 2, 3, 4], "policy_text": "ab c",
        "turns": [
            {"index": 0, "action": "consult", "policy_tokens": 2, "observation_tokens": 1, "queries": ["1+2", "2"],
             "dropped_queries": 0, "notice": None, "issues": [], "calls": [
                 {"query": "1+2", "expert": "oracle", "accepted": True, "reason": "accepted", "rho": 0.5,
                  "draw": 0.1, "reply": "3"},
                 {"query": "2", "expert": "", "accepted": False, "reason": "refused_by_schedule", "rho": 0.5,
                  "draw": 0.9, "reply": ""}]},
            {"index": 1, "action": "answer", "policy_tokens": 1, "observation_tokens": 0, "queries": [],
             "dropped_queries": 0, "notice": None, "issues": [], "calls": []},
        ],
        "answer": "3", "well_formed": True, "stop_reason": "answer", "score": 1.0, "penalty": 0.0, "reward": 1.0,
    }


def test_episode_view_splits_turns_with_the_tokenizer_and_falls_back_without():
    text = {1: "a", 2: "b", 3: "<obs>", 4: " c"}
    decode = lambda ids: "".join(text[i] for i in ids)  # noqa: E731
    view = episode_view(dump_record("/tok"), 0, decode)
    assert [(s["p"], s["obs"]) for s in view["segs"]] == [("ab", "<obs>"), (" c", "")]
    assert (view["consults"], view["acc"], view["ref"], view["turns"]) == (1, 1, 1, 2)
    assert [c["ok"] for c in view["segs"][0]["calls"]] == [True, False] and "ptext" not in view

    gone = episode_view(dump_record("/nowhere"), 0, None)
    assert gone["ptext"] == "ab c" and "/nowhere" in gone["why_whole"]
    assert "p" not in gone["segs"][0] and len(gone["segs"][0]["calls"]) == 2
    wrong_tokenizer = episode_view(dump_record("/tok"), 0, lambda ids: "?" * len(ids))
    assert "ptext" in wrong_tokenizer  # decoding does not reproduce policy_text: not trusted


def test_page_escapes_text_from_run_folders(tmp_path):
    run = tmp_path / "r<b>"
    run.mkdir()
    write_rows(run / "metrics.jsonl", [{"step": 1, "reward/mean": 0.5}])
    inputs = discover([run])
    html = render_html(inputs, {}, [episode_view(dump_record("/nowhere"), 0, None)])
    assert "<td>r&lt;b&gt;</td>" in html
    assert "1+2</script>" not in html and "1+2<\\/script><b>x<\\/b>" in html  # the data block cannot be closed early


def test_results_in_the_compare_schema(tmp_path):
    """eapo compare's results.json (schema eapo.compare/1): rows with a readable label,
    metrics as {values, mean, std} with null for a seed that lacks the figure, curves aside."""
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"schema": "eapo.compare/1", "gap": {"mean": 1.0}, "rows": [
        {"name": "eapo_parallel", "label": "EAPO parallel", "kind": "rl", "evaluated_with_experts": False,
         "seeds": [0, 1], "metrics": {"avg@n": {"values": [40.0, None], "mean": 40.0, "std": 0.0},
                                      "expert_tokens": {"values": [10, 14], "mean": 12.0, "std": 2.83}},
         "curves": {"avg@n": {"steps": [5], "mean": [0.4], "std": [0.0]}}, "diagnostics": {"phase": 1}},
        {"name": "workflow", "label": "expert-assisted workflow", "evaluated_with_experts": True,
         "metrics": {"avg@n": {"values": [None, None], "mean": None, "std": None}, "wall_s": {"values": [3, 5]}}},
    ]}))
    table = read_results(path)
    assert [name for name, _ in table.rows] == ["EAPO parallel", "expert-assisted workflow (evaluated with experts)"]
    assert table.columns == ["avg@n", "expert_tokens", "wall_s"]  # accuracy first, costs after
    eapo, workflow = (cells for _, cells in table.rows)
    assert eapo == {"avg@n": Cell(40.0, 0.0, (40.0,)), "expert_tokens": Cell(12.0, 2.83, (10.0, 14.0))}
    assert workflow == {"wall_s": Cell(4.0, pytest.approx(1.4142, abs=1e-4), (3.0, 5.0))}
