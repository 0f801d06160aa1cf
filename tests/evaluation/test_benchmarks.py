"""Benchmark registry and loader: every registered benchmark loads from ../shared/data
with the row count of SOURCES.md (skipped when the data folder is absent); a user's own
JSONL loads through a field mapping; missing files and fields give errors that say what
to change."""

from __future__ import annotations

import json

import pytest

from eapo.evaluation.benchmarks import BENCHMARKS, BenchmarkSpec, data_dir, load_benchmark
from eapo.rewards.scorers import SCORERS

ROWS = {  # SOURCES.md table
    "aime2024": 30, "aime2025": 30, "aimo2": 10, "aimo3": 10, "math500": 500, "gsm8k": 1319,
    "dapo_math": 17917, "humaneval": 164, "gpqa_diamond": 198, "mmlu": 1140, "mmlu_full": 14042,
    "simpleqa": 4326, "hotpotqa": 500,
    "chain": 400,  # built in: the default training task's test split, no file
}


def test_registry_lists_the_documented_benchmarks():
    assert sorted(BENCHMARKS) == sorted(ROWS)


def test_math_sets_share_math_verify_s_scorer():
    # DAPO-Math-17k's answers are integers, but training on it and validating on AIME must
    # give the same reward: both math-verify (whose integer fast path keeps `034` == 34)
    assert {BENCHMARKS.get(n).scorer for n in ("dapo_math", "aime2024", "aime2025", "math500", "gsm8k")} == {"math"}


@pytest.mark.parametrize("name", sorted(ROWS))
def test_benchmark_loads_with_documented_rows(name, have_data):
    spec = BENCHMARKS.get(name)
    problems = load_benchmark(name)
    assert len(problems) == ROWS[name]
    assert len({p.id for p in problems}) == len(problems)
    assert all(p.question.strip() and p.answer.strip() for p in problems)
    assert all(p.meta["benchmark"] == name and p.meta["scorer"] == spec.scorer for p in problems)
    if spec.scorer != "code":  # the sandbox scorer is registered elsewhere
        import eapo.evaluation.score  # noqa: F401  (registers the benchmark scorers)

        assert spec.scorer in SCORERS


def test_choice_questions_carry_lettered_options(have_data):
    p = load_benchmark("mmlu", limit=1)[0]
    assert p.id == "mmlu-abstract_algebra-0000" and p.answer == "B"
    assert p.question.endswith("\n\nA. 0\nB. 4\nC. 2\nD. 6")
    assert p.meta["choices"] == ["0", "4", "2", "6"]
    g = load_benchmark("gpqa_diamond", limit=3)
    assert all("\nA. " in p.question and "\nD. " in p.question and p.answer in "ABCD" for p in g)


def test_limit_and_meta(have_data):
    probs = load_benchmark("humaneval", limit=2)
    assert [p.id for p in probs] == ["HumanEval/0", "HumanEval/1"]
    assert probs[0].question.startswith("from typing import List")  # the `prompt` field
    assert "test" in probs[0].meta and "entry_point" in probs[0].meta
    assert load_benchmark("aime2024", limit=0) == []
    assert "context" in load_benchmark("hotpotqa", limit=1)[0].meta


def test_custom_jsonl_with_field_mapping(tmp_path):
    f = tmp_path / "mine.jsonl"
    rows = [{"qid": "q1", "q": "2+2?", "gold": 4, "opts": ["3", "4"]},
            {"qid": "q2", "q": "3+3?", "gold": 6, "opts": ["6", "7"]}]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    probs = load_benchmark(str(f), fields={"id": "qid", "question": "q", "answer": "gold"})
    assert [(p.id, p.question, p.answer) for p in probs] == [("q1", "2+2?", "4"), ("q2", "3+3?", "6")]
    assert probs[0].meta["opts"] == ["3", "4"]
    choice = load_benchmark(f, fields={"id": "qid", "question": "q", "answer": "gold", "choices": "opts"})
    assert choice[0].question == "2+2?\n\nA. 3\nB. 4"


def test_custom_jsonl_without_ids_and_with_a_missing_field(tmp_path):
    f = tmp_path / "plain.jsonl"
    f.write_text('{"question": "a?", "answer": "x"}\n\n{"question": "b?", "answer": "y"}\n')
    assert [p.id for p in load_benchmark(f)] == ["plain-0", "plain-2"]
    with pytest.raises(KeyError, match="no field 'prompt'.*field mapping"):
        load_benchmark(f, fields={"question": "prompt"})
    with pytest.raises(ValueError, match="unknown field mapping keys"):
        load_benchmark(f, fields={"solution": "s"})


def test_duplicate_ids_are_refused(tmp_path):
    f = tmp_path / "dup.jsonl"
    f.write_text('{"id": 1, "question": "a", "answer": "x"}\n{"id": 1, "question": "b", "answer": "y"}\n')
    with pytest.raises(ValueError, match="duplicate id '1'"):
        load_benchmark(f)


def test_missing_file_names_the_path_and_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("EAPO_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError) as e:
        load_benchmark("math500")
    assert str(tmp_path / "math500.jsonl") in str(e.value) and "EAPO_DATA_DIR" in str(e.value)
    with pytest.raises(FileNotFoundError, match="EAPO_DATA_DIR"):
        load_benchmark(str(tmp_path / "nope.jsonl"))


def test_missing_data_dir_names_both_options(tmp_path, monkeypatch):
    monkeypatch.setenv("EAPO_DATA_DIR", str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="EAPO_DATA_DIR"):
        data_dir()
    monkeypatch.delenv("EAPO_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    import eapo.evaluation.benchmarks as b

    monkeypatch.setattr(b, "__file__", str(tmp_path / "a" / "b" / "c" / "d.py"))
    with pytest.raises(FileNotFoundError, match=r"EAPO_DATA_DIR.*\.\./shared/data"):
        data_dir()


def test_unknown_name_lists_valid_ones():
    with pytest.raises(KeyError, match="math500"):
        load_benchmark("math5000")


def test_spec_validation():
    with pytest.raises(ValueError, match="template_family"):
        BenchmarkSpec("x", "x.jsonl", "exact", "essay")
    with pytest.raises(ValueError, match="choices_field"):
        BenchmarkSpec("x", "x.jsonl", "choice", "choice")


def test_chain_is_the_default_training_runs_test_split_and_needs_no_data(monkeypatch, tmp_path):
    from eapo.training.config import TrainConfig
    from eapo.assembly.run import build_task

    monkeypatch.setenv("EAPO_DATA_DIR", str(tmp_path / "absent"))
    problems = load_benchmark("chain", limit=5)
    assert [(p.id, p.question, p.answer) for p in problems] == [
        (p.id, p.question, p.answer) for p in build_task(TrainConfig()).split("test")[:5]]
    assert problems[0].meta["scorer"] == "integer" and problems[0].meta["benchmark"] == "chain"
    with pytest.raises(ValueError, match="no field mapping"):
        load_benchmark("chain", fields={"question": "q"})
