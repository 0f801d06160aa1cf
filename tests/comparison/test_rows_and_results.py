"""The comparison's bookkeeping: rows differ only where they say, statistics and the paired
gap against hand computations, training costs summed by logging window, finished cells
reused and changed ones refused, figures written as real PNGs."""

from __future__ import annotations

import json
import math

import pytest

from eapo.comparison.results import aggregate, markdown, mean_std, paired_gap
from eapo.comparison.rows import DEFAULT_ROWS, ROWS, RowSpec, row_config
from eapo.comparison.runner import RESULT_FILE, _training_costs, cell_dir, run_cell
from eapo.config import to_dict
from eapo.training.config import TrainConfig


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_every_default_row_changes_only_the_keys_it_names():
    base = _flat(to_dict(TrainConfig(seed=3, output_dir="o")))
    # TrainConfig's defaults are already EAPO with K = 3: those rows restate them, changing nothing
    expected = {
        "base": {}, "workflow": {}, "distill_full": {}, "distill_lora": {}, "eapo": {},
        "self_rl": {"rl.arm": "self_rl"},
        "eapo_k1": {"rollout.max_queries": 1},
        "homogeneous": {"experts.kind": "homogeneous", "experts.replicas": 3, "experts.temperature": 1.0},
        "noisy_0.2": {"experts.kind": "noisy", "experts.noise_p": 0.2},
        "noisy_0.5": {"experts.kind": "noisy", "experts.noise_p": 0.5},
    }
    assert set(DEFAULT_ROWS) == set(expected) | {"adaptive"}
    for name, changes in expected.items():
        got = _flat(to_dict(row_config(TrainConfig(), ROWS.get(name), seed=3, output_dir="o")))
        diff = {k: got[k] for k in got if got.get(k) != base.get(k)}
        assert diff == changes, name
    adaptive = row_config(TrainConfig(), ROWS.get("adaptive"), seed=3, output_dir="o")
    assert adaptive.acceptance.adaptive is not None and adaptive.acceptance.adaptive.combine == "min"
    assert adaptive.acceptance.kind == TrainConfig().acceptance.kind  # the global schedule still anneals


def test_a_row_spec_refuses_nonsense():
    with pytest.raises(ValueError, match="kind"):
        RowSpec("x", "x", "train")
    with pytest.raises(ValueError, match="evaluation-only"):
        RowSpec("x", "x", "rl", with_experts=True)


def test_mean_std_and_paired_gap_by_hand():
    m = mean_std([0.1, 0.2, 0.6])
    assert m["mean"] == pytest.approx(0.3)
    assert m["std"] == pytest.approx(math.sqrt(((0.2) ** 2 + 0.1**2 + 0.3**2) / 2))
    assert mean_std([0.5])["std"] == 0.0
    nan = mean_std([math.nan, 0.4])
    assert nan["mean"] == pytest.approx(0.4) and math.isnan(nan["values"][0])
    g = paired_gap({"a": 0.0, "b": 0.5, "c": 1.0, "z": 1.0}, {"a": 0.25, "b": 1.0, "c": 1.0})
    diffs = [0.25, 0.5, 0.0]
    assert g["problems"] == 3 and g["diff"] == pytest.approx(0.25)
    assert g["se"] == pytest.approx(0.25 / math.sqrt(3))  # sample sd of the diffs is 0.25


def _cell(row, seed, avg, **extra):
    return {"row": row, "seed": seed, "kind": ROWS.get(row).kind,
            "test": {"eval/avg@n": avg, "eval/pass@1": avg, "eval/pass@4": min(1.0, 2 * avg), "eval/greedy_acc": avg,
                     "eval/var": 0.01},
            "val": [{"step": 10, "eval/avg@n": avg / 2}, {"step": 20, "eval/avg@n": avg}],
            "train_curve": [{"step": 10, "expert_tokens": 100.0 * seed, "expert/consult_rate": 0.5},
                            {"step": 20, "expert_tokens": 300.0, "expert/consult_rate": 0.3}],
            "wall_s": 10.0, "expert_calls": 5.0, "expert_tokens": 300.0, "consult_rate": 0.4, **extra}


def test_aggregate_reports_per_seed_values_mean_std_and_the_paired_gap():
    cells = [_cell("self_rl", 0, 0.1), _cell("self_rl", 1, 0.3), _cell("eapo", 0, 0.2), _cell("eapo", 1, 0.6)]
    per_problem = {("self_rl", 0): {"p": 0.1}, ("eapo", 0): {"p": 0.3}, ("self_rl", 1): {"p": 0.5},
                   ("eapo", 1): {"p": 0.4}}
    res = aggregate(cells, rows=["self_rl", "eapo"], seeds=[0, 1], config={"eval": {"n": 4}}, per_problem=per_problem)
    rows = {r["name"]: r for r in res["rows"]}
    assert rows["eapo"]["metrics"]["avg@n"]["values"] == [0.2, 0.6]
    assert rows["eapo"]["metrics"]["avg@n"]["mean"] == pytest.approx(0.4)
    assert rows["eapo"]["metrics"]["avg@n"]["std"] == pytest.approx(math.sqrt(0.08))
    assert set(rows["eapo"]["metrics"]) >= {"avg@n", "pass@1", "pass@4", "greedy_acc", "var", "consult_rate",
                                            "expert_calls", "expert_tokens", "wall_s"}
    assert math.isnan(rows["eapo"]["metrics"]["acceptance_rate"]["mean"])  # never recorded in these cells
    assert rows["eapo"]["curves"]["avg@n"] == {"steps": [10, 20], "mean": [pytest.approx(0.2), pytest.approx(0.4)],
                                               "std": [pytest.approx(math.sqrt(0.02)), pytest.approx(math.sqrt(0.08))]}
    assert rows["eapo"]["curves"]["expert_tokens"]["mean"] == [pytest.approx(50.0), pytest.approx(300.0)]
    assert [p["diff"] for p in res["paired"]["per_seed"]] == [pytest.approx(0.2), pytest.approx(-0.1)]
    assert res["paired"]["mean"] == pytest.approx(0.05)
    md = markdown(res)
    assert "| self-exploratory RL | 20.0 ± 14.1 |" in md and "| EAPO parallel (K=3) | 40.0 ± 28.3 |" in md
    assert "seed 0: +20.00" in md and "seed 1: -10.00" in md


def test_training_costs_weight_each_logged_row_by_its_window(tmp_path):
    rows = [
        {"step": 5, "reward": 0.1, "expert/queries": 10.0, "expert/acceptance_rate": 0.5,
         "expert/completion_tokens": 20.0, "expert/consult_rate": 0.8, "frac_reward_zero_std": 0.6},
        {"step": 10, "reward/mean": 0.2, "expert/accepted_calls": 2.0, "expert/completion_tokens": 4.0,
         "expert/consult_rate": 0.4, "reward/frac_zero_std": 0.4},
        {"step": 10, "eval/avg@n": 0.3},  # an evaluation row is not a training window
    ]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n")
    c = _training_costs(tmp_path)
    assert c["expert_calls"] == pytest.approx(5 * 10 * 0.5 + 5 * 2.0)
    assert c["expert_tokens"] == pytest.approx(5 * 20.0 + 5 * 4.0)
    assert c["consult_rate"] == pytest.approx(0.6) and c["zero_var_groups"] == pytest.approx(0.5)
    assert [p["expert_tokens"] for p in c["train_curve"]] == [100.0, 120.0]


def test_finished_cells_are_reused_and_changed_ones_refused(tmp_path):
    cfg = TrainConfig()
    spec = ROWS.get("self_rl")
    d = cell_dir(tmp_path, "self_rl", 0)
    d.mkdir(parents=True)
    from eapo.comparison.rows import row_config as rc
    from eapo.config import dump_yaml

    (d / "cell_config.yaml").write_text(dump_yaml(rc(cfg, spec, seed=0, output_dir=str(d))))
    (d / RESULT_FILE).write_text(json.dumps({"row": "self_rl", "seed": 0, "marker": 42}))
    assert run_cell(cfg, spec, 0, tmp_path, policy="/nonexistent")["marker"] == 42  # nothing was run
    changed = TrainConfig(rl=type(cfg.rl)(steps=7))
    with pytest.raises(FileExistsError, match="another configuration"):
        run_cell(changed, spec, 0, tmp_path, policy="/nonexistent")


def test_a_cell_saved_before_an_option_existed_is_still_reused(tmp_path):
    """An upgrade that adds an option (at its default) must not disown finished cells; an
    option the saved file sets but this version lacks, or sets otherwise, still refuses."""
    import yaml

    from eapo.comparison.rows import row_config as rc
    from eapo.config import dump_yaml

    cfg, spec = TrainConfig(), ROWS.get("self_rl")
    d = cell_dir(tmp_path, "self_rl", 0)
    d.mkdir(parents=True)
    old = yaml.safe_load(dump_yaml(rc(cfg, spec, seed=0, output_dir=str(d))))
    del old["rollout"]["bare_refusal"]  # as written before the option existed
    (d / "cell_config.yaml").write_text(yaml.safe_dump(old, sort_keys=False))
    (d / RESULT_FILE).write_text(json.dumps({"row": "self_rl", "seed": 0, "marker": 7}))
    assert run_cell(cfg, spec, 0, tmp_path, policy="/nonexistent")["marker"] == 7
    old["rollout"]["no_such_option"] = 1
    (d / "cell_config.yaml").write_text(yaml.safe_dump(old, sort_keys=False))
    with pytest.raises(FileExistsError, match="another configuration"):
        run_cell(cfg, spec, 0, tmp_path, policy="/nonexistent")


def test_plots_are_real_pngs(tmp_path):
    from eapo.comparison.plots import PLOTS, plot_all

    cells = [_cell("base", 0, 0.05), _cell("self_rl", 0, 0.1), _cell("eapo", 0, 0.2)]
    cells[0].pop("train_curve")
    res = aggregate(cells, rows=["base", "self_rl", "eapo"], seeds=[0], config={"eval": {"n": 4}}, per_problem={})
    paths = plot_all(res, tmp_path)
    assert [p.name for p in paths] == list(PLOTS)
    for p in paths:
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_diagnostics_split_aided_and_unaided_success_by_phase(tmp_path):
    from eapo.comparison.diagnose import phases, step_figures

    def ep(step, pid, score, accepted):
        calls = [{"accepted": accepted}] if accepted is not None else []
        return {"step": step, "problem_id": pid, "score": score, "reward": score or 0.1, "turns": [{"calls": calls}]}

    eps = [ep(1, "a", 1.0, True), ep(1, "a", 0.0, True), ep(1, "b", 0.0, None), ep(1, "b", 0.0, None),
           ep(9, "a", 1.0, None), ep(9, "a", 1.0, False), ep(9, "b", 0.0, False), ep(9, "b", 1.0, None)]
    (tmp_path / "rollouts").mkdir()
    (tmp_path / "rollouts" / "r.jsonl").write_text("\n".join(json.dumps(e) for e in eps) + "\n{cut")
    rows = step_figures(tmp_path)
    assert rows[0] == {"step": 1, "episodes": 4, "success": 0.25, "aided": 2, "aided_success": 0.5, "unaided": 2,
                       "unaided_success": 0.0, "consult_rate": 0.5, "zero_var_groups": 0.5}
    assert rows[1]["aided"] == 0 and math.isnan(rows[1]["aided_success"]) and rows[1]["unaided_success"] == 0.75
    ph = phases(rows, 9)
    assert [p["phase"] for p in ph] == ["early", "late"]  # no dump fell in the middle third
    assert ph[1]["consult_rate"] == 0.5 and ph[1]["zero_var_groups"] == 0.5
