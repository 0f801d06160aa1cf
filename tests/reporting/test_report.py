"""`eapo report` on a real short run: every plot is a valid PNG, the page holds the results
table, the runs table and every dumped episode, needs no network, and reads run folders
written before the metric names were prefixed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from eapo.cli.main import app
from eapo.reporting.names import GROUPS
from eapo.reporting.plots import PLOTS
from eapo.reporting.report import build_report
from eapo.reporting.runs import discover

pytestmark = pytest.mark.slow  # the shared fixture trains for a few steps on TRL

EXPECTED_PLOTS = {"reward", "accuracy", "consult_rate", "acceptance", "turns", "tokens", "zero_variance", "step_time"}


def dump_records(run: Path) -> list[dict]:
    return [json.loads(x) for f in sorted((run / "rollouts").glob("*.jsonl")) for x in f.read_text().splitlines()]


def page_data(html: str) -> dict:
    block = re.search(r'<script id="eapo-data" type="application/json">(.*?)</script>', html, re.S).group(1)
    return json.loads(block)


@pytest.fixture(scope="module")
def report(report_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    return build_report([report_runs], out), out


def test_every_listed_plot_is_a_valid_png(report):
    result, out = report
    assert {s.name for s in PLOTS} == EXPECTED_PLOTS
    assert set(result.plots) == EXPECTED_PLOTS
    for name in EXPECTED_PLOTS:
        path = out / f"{name}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        with Image.open(path) as img:
            img.verify()  # checks the chunks and their CRCs
        with Image.open(path) as img:
            assert img.format == "PNG" and img.width >= 600 and img.height >= 300, name


def test_page_holds_tables_plots_and_all_episodes(report, report_runs):
    result, _ = report
    html = result.html.read_text()
    # the compare results table: each row with mean ± sd over its seeds
    assert 'id="results-table-0"' in html
    assert "eapo_parallel" in html and "self_rl" in html
    assert "0.430 ± 0.028" in html  # avg@n of eapo_parallel: mean 0.43, sd of (0.41, 0.45)
    # the runs table: the new run, the old-format copy and the base evaluation
    for label in ("cmp/eapo", "cmp/old", "cmp/base"):
        assert f"<td>{label}</td>" in html
    for name in EXPECTED_PLOTS:
        assert f'id="plot-{name}"' in html
    assert html.count('src="data:image/png;base64,') == len(EXPECTED_PLOTS)
    # every dumped episode is in the viewer, with per-turn text decoded from the tokens
    data = page_data(html)
    records = dump_records(report_runs / "eapo")
    assert data["runs"] == ["cmp/eapo", "cmp/old"]
    assert sorted(e["uid"] for e in data["episodes"]) == sorted(r["uid"] for r in records)
    assert result.episodes == len(records)
    by_uid = {r["uid"]: r for r in records}
    for ep in data["episodes"]:
        rec = by_uid[ep["uid"]]
        assert "".join(s["p"] for s in ep["segs"]) == rec["policy_text"]
        assert ep["consults"] == sum(t["action"] == "consult" for t in rec["turns"])
        assert ep["acc"] + ep["ref"] == sum(len(t["calls"]) for t in rec["turns"])
    # the fixture's episodes cover what the viewer must show
    assert any(e["acc"] and e["ref"] for e in data["episodes"])
    assert any(e["consults"] == 0 for e in data["episodes"])
    assert {e["score"] for e in data["episodes"]} == {0.0, 1.0}


def test_page_is_self_contained(report):
    html = report[0].html.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert "<script src" not in html


def test_old_metric_names_read_like_new_ones(report_runs):
    runs = {r.label: r for r in discover([report_runs]).runs}
    new, old = runs["cmp/eapo"], runs["cmp/old"]
    raw_old = (report_runs / "old" / "metrics.jsonl").read_text()
    assert '"frac_reward_zero_std"' in raw_old and '"step_time"' in raw_old  # really the old names
    for key in ("reward/mean", "reward/frac_zero_std", "time/step_s", "loss/policy", "expert/consult_rate"):
        steps, values = new.series(key)
        assert steps == [1, 2, 3], key
        assert old.series(key) == (steps, values), key


def test_metrics_file_uses_prefixed_names_and_holds_evaluations(report_runs):
    rows = [json.loads(x) for x in (report_runs / "eapo" / "metrics.jsonl").read_text().splitlines()]
    keys = {k for r in rows for k in r} - {"step", "wall_s"}
    assert keys and all(k.startswith(GROUPS) for k in keys), sorted(k for k in keys if not k.startswith(GROUPS))
    train = [r for r in rows if "reward/mean" in r]
    assert [r["step"] for r in train] == [1, 2, 3]
    assert all(r["time/step_wall_s"] >= r["time/step_s"] > 0 for r in train)
    val = [r["step"] for r in rows if "eval/avg@n" in r]
    assert val == [2, 3]  # the periodic validation reaches the back-ends too
    test = [r for r in rows if "eval/test/avg@n" in r]
    assert len(test) == 1 and test[0]["eval/test/avg@n"] == json.loads(
        (report_runs / "eapo" / "test.json").read_text())["eval/avg@n"]


def test_tensorboard_events_hold_the_same_scalars(report_runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(report_runs / "eapo" / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"reward/mean", "expert/consult_rate", "loss/policy", "eval/avg@n", "eval/test/avg@n"} <= tags
    rows = [json.loads(x) for x in (report_runs / "eapo" / "metrics.jsonl").read_text().splitlines()]
    logged = {r["step"]: r["reward/mean"] for r in rows if "reward/mean" in r}
    assert {e.step: e.value for e in acc.Scalars("reward/mean")} == pytest.approx(logged)


def test_cli_report_writes_the_page_and_refuses_missing_folders(report_runs, tmp_path):
    out = tmp_path / "rep"
    res = CliRunner().invoke(app, ["report", str(report_runs / "eapo"), str(report_runs / "old"), "--out", str(out),
                                   "--max-episodes", "5"])
    assert res.exit_code == 0, res.output
    assert (out / "report.html").exists() and len(list(out.glob("*.png"))) == len(EXPECTED_PLOTS)
    data = page_data((out / "report.html").read_text())
    assert len(data["episodes"]) <= 5 and data["runs"] == ["eapo", "old"]
    assert len({e["step"] for e in data["episodes"]}) == 3  # spread over the dumped steps, not the first file

    bad = CliRunner().invoke(app, ["report", str(tmp_path / "missing")])
    assert bad.exit_code == 2 and "no such run folder" in bad.output
    empty = tmp_path / "empty"
    empty.mkdir()
    none = CliRunner().invoke(app, ["report", str(empty)])
    assert none.exit_code == 2 and "no run folders" in none.output
