"""`eapo compare` end to end on a tiny model: every default row runs, results.json follows
its schema, the table and plots appear, a second call reuses every finished cell; the
workflow baseline really consults (scripted policy), the distilled rows train on the
oracle's solutions with the prompt masked."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from eapo.cli.main import app
from eapo.models.build import TinyModelSpec, build_tiny_model

pytestmark = pytest.mark.slow

TINY = [
    "warmstart.steps=0", "rl.steps=2", "rl.prompts_per_step=2", "rl.num_generations=2", "rl.save_steps=2",
    "rl.log_steps=1", "eval.every_steps=1", "eval.val_size=2", "task.val_size=2", "task.test_size=3", "eval.n=2",
    "eval.k=[1,2]", "rollout.tokens_per_turn=8", "rollout.max_policy_tokens=24", "rollout.max_completion_tokens=64",
    "turn_budget.train=3", "turn_budget.eval=2", "task.train_size=8", "experts.max_new_tokens=4",
]


def sets(*items: str) -> list[str]:
    return [x for item in items for x in ("--set", item)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    spec = TinyModelSpec(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         intermediate_size=64)
    return str(build_tiny_model(tmp_path_factory.mktemp("m") / "policy", spec))


def test_compare_runs_every_row_writes_results_and_reuses_cells(tiny, tmp_path):
    out = tmp_path / "cmp"
    # the RL variants (K=1, homogeneous, noisy, adaptive) are config rows of the same RL path
    # (their configs: test_rows_and_results.py); one of each kind of cell runs here
    rows = ["base", "self_rl", "workflow", "distill_lora", "eapo"]
    args = ["compare", "--model", tiny, "--seeds", "1", "--rows", ",".join(rows), "--out", str(out), *sets(*TINY)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    assert results["schema"] == "eapo.compare/1" and results["seeds"] == [0]
    assert [r["name"] for r in results["rows"]] == rows
    by_name = {r["name"]: r for r in results["rows"]}
    for r in results["rows"]:
        for key in ("avg@n", "pass@1", "pass@2", "greedy_acc", "var", "expert_calls", "expert_tokens", "wall_s"):
            m = r["metrics"][key]
            assert len(m["values"]) == 1 and set(m) == {"values", "mean", "std"}, (r["name"], key)
    # who spends expert budget, and where
    assert by_name["self_rl"]["metrics"]["expert_calls"]["mean"] == 0
    assert by_name["base"]["metrics"]["expert_tokens"]["mean"] == 0
    assert by_name["distill_lora"]["metrics"]["expert_calls"]["mean"] == 2 * 2  # rl.steps x prompts_per_step solutions
    assert by_name["workflow"]["evaluated_with_experts"] and not by_name["eapo"]["evaluated_with_experts"]
    assert by_name["eapo"]["curves"]["avg@n"]["steps"] == [1, 2]
    assert "training" in by_name["eapo"]["curves"]
    for png in ("val_accuracy_vs_updates.png", "val_accuracy_vs_expert_tokens.png", "consult_and_acceptance.png"):
        assert (out / "plots" / png).read_bytes()[:4] == b"\x89PNG"
    md = (out / "results.md").read_text()
    assert "EAPO parallel (K=3)" in md and "expert-assisted workflow †" in md
    assert "EAPO parallel" in res.output
    # finished cells are reused: nothing is trained or evaluated again
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/seed-0/result.json")}
    assert len(stamps) == len(rows)
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/seed-0/result.json")} == stamps
    # --no-run writes results from what has finished, training nothing (a row never run is left out)
    partial = CliRunner().invoke(app, ["compare", "--no-run", "--model", tiny, "--seeds", "1", "--rows",
                                       "self_rl,noisy_0.2", "--out", str(out), *sets(*TINY)])
    assert partial.exit_code == 0, partial.output
    assert [r["name"] for r in json.loads((out / "results.json").read_text())["rows"]] == ["self_rl"]
    assert not (out / "noisy_0.2").exists()
    # the same folder with another setting is refused, not mixed
    bad = CliRunner().invoke(app, [*args, "--set", "rl.learning_rate=0.5"])
    assert bad.exit_code == 1 and "another configuration" in bad.output


def test_unknown_rows_and_bad_seeds_are_refused(tmp_path):
    res = CliRunner().invoke(app, ["compare", "--rows", "base,nope", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "nope" in res.output
    res = CliRunner().invoke(app, ["compare", "--seeds", "x", "--out", str(tmp_path)])
    assert res.exit_code == 2
    # --no-run with nothing finished: a clear error, nothing written
    res = CliRunner().invoke(app, ["compare", "--no-run", "--out", str(tmp_path / "empty")])
    assert res.exit_code == 1 and "no finished cells" in res.output
    assert not (tmp_path / "empty").exists()


def test_workflow_evaluation_consults_and_counts_expert_calls(tiny):
    from eapo.comparison.workflow import evaluate_with_experts
    from eapo.config import load_config
    from eapo.experts.oracle import OracleExpert
    from eapo.experts.pool import ExpertPool
    from eapo.models.build import load_policy
    from eapo.rollout.fake_backend import ScriptedBackend
    from eapo.tasks.arithmetic import ChainTask
    from eapo.training.config import TrainConfig

    model, tok = load_policy(tiny)
    task = ChainTask(min_len=2, max_len=3, seed=0)
    problems = task.split("test")[:3]

    def script(ctx, call):  # ask for the whole chain, then copy the reply as the answer
        text = tok.decode(ctx)
        question = text.split("user\n")[-1].split("<|im_end|>")[0]
        if "<expert" not in text:
            return tok.encode(f"<consult><query>{question}</query></consult>", add_special_tokens=False)
        reply = text.rsplit('">', 1)[-1].split("</expert>")[0]
        return tok.encode(f" <answer>{reply}</answer>", add_special_tokens=False)

    cfg = load_config(TrainConfig, None, ["eval.n=2", "eval.k=[1,2]", "turn_budget.train=3", "turn_budget.eval=2"])
    pool = ExpertPool([OracleExpert(task.oracle_answer, name="oracle")])
    metrics, records = evaluate_with_experts(cfg, model, tok, problems, pool, task.scorer,
                                             backend=ScriptedBackend(script, (tok.eos_token_id,)))
    assert metrics["eval/avg@n"] == 1.0 and metrics["eval/greedy_acc"] == 1.0
    assert metrics["eval/expert_calls"] == 1.0 and metrics["eval/consult_rate"] == 1.0
    assert metrics["eval/expert_tokens"] > 0
    assert len(records) == 3 * 2 + 3 and all(r["accepted_calls"] == 1 for r in records)


def test_distilled_examples_are_the_oracles_solutions_with_the_prompt_masked(tiny):
    from eapo.comparison.distill import expert_solutions
    from eapo.config import load_config
    from eapo.models.build import load_policy
    from eapo.protocol.prompt import prompt_ids
    from eapo.tasks.arithmetic import ChainTask
    from eapo.training.config import TrainConfig

    _, tok = load_policy(tiny)
    task = ChainTask(min_len=2, max_len=2, seed=0)
    p = task.split("train")[0]
    examples, tokens = expert_solutions(TrainConfig(), tok, [p])
    ex = examples[0]
    n_prompt = len(prompt_ids(tok, p.question, None))
    assert ex["completion_mask"][:n_prompt] == [0] * n_prompt
    assert ex["completion_mask"][n_prompt:] == [1] * (len(ex["input_ids"]) - n_prompt) == [1] * tokens
    text = tok.decode(ex["input_ids"][n_prompt:])
    assert text.endswith(f"<answer>{p.answer}</answer>") and "<consult>" not in text
    with pytest.raises(ValueError, match="oracle"):
        expert_solutions(load_config(TrainConfig, None, ["experts.kind=noisy", "experts.noise_p=0.2"]), tok, [p])


def test_cells_run_in_parallel_processes_give_the_sequential_results(tiny, tmp_path):
    from eapo.comparison.runner import run_compare
    from eapo.config import load_config
    from eapo.training.config import TrainConfig

    cfg = load_config(TrainConfig, None, TINY)
    kw = dict(rows=["base", "workflow"], seeds=[0, 1], policy=tiny)
    seq = run_compare(cfg, tmp_path / "seq", jobs=1, **kw)
    par = run_compare(cfg, tmp_path / "par", jobs=2, **kw)
    assert [(c["row"], c["seed"]) for c in par] == [("base", 0), ("base", 1), ("workflow", 0), ("workflow", 1)]
    for a, b in zip(seq, par):
        assert a["test"] == b["test"], (a["row"], a["seed"])
