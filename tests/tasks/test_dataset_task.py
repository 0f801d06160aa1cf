"""Dataset tasks (`eapo train --data`): reproducible, disjoint splits; repeated questions kept
once and conflicting ones dropped; evaluation splits from another set removed from
training; the scorer chosen without ambiguity; the configuration refusing what a task does
not read; the tiny policy's chain-only warm start refused for a dataset. On real data
(skipped without ../shared/data): DAPO-Math-17k's repeats and AIME as validation."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from eapo.assembly.run import build_task, given_policy, with_task_settings
from eapo.config import ConfigError, load_config
from eapo.evaluation import benchmarks
from eapo.tasks.dataset import DatasetTask
from eapo.training.config import TrainConfig
from eapo.types import ExpertRequest


# The task reads its sets with the loader it is given: the benchmarks layer's, as a run's.
build = functools.partial(DatasetTask.build, loader=benchmarks)


def write(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture()
def data(tmp_path) -> str:
    rows = [{"id": f"p{i}", "question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(40)]
    rows.append({"id": "again", "question": "what is 3 +  3?", "answer": "6"})  # a repeat of p3
    rows += [{"id": "c1", "question": "Pick a number.", "answer": "1"}, {"id": "c2", "question": "Pick a number.", "answer": "2"}]
    return write(tmp_path / "mine.jsonl", rows)


def ids(problems) -> list[str]:
    return [p.id for p in problems]


def test_splits_are_reproducible_disjoint_and_sized(data):
    a = build(data, train_size=20, val_size=5, test_size=10, seed=3)
    b = build(data, train_size=20, val_size=5, test_size=10, seed=3)
    assert {s: ids(a.split(s)) for s in ("train", "val", "test")} == {s: ids(b.split(s)) for s in ("train", "val", "test")}
    train, val, test = (set(ids(a.split(s))) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (20, 5, 10) and not (train & val or train & test or val & test)
    assert ids(build(data, train_size=20, val_size=5, test_size=10, seed=4).split("train")) != ids(a.split("train"))
    # growing the training split never moves a problem out of test or validation
    more = build(data, train_size=None, val_size=5, test_size=10, seed=3)
    assert ids(more.split("test")) == ids(a.split("test")) and ids(more.split("val")) == ids(a.split("val"))
    assert ids(more.split("train"))[:20] == ids(a.split("train")) and len(more.split("train")) == 40 - 15


def test_repeats_are_kept_once_and_conflicting_golds_dropped(data):
    task = build(data, train_size=None)
    every = ids(task.split("train"))
    assert len(every) == 40 and "again" not in every and not {"c1", "c2"} & set(every)
    assert task.stats["rows"] == 43 and task.stats["repeats_dropped"] == 1 and task.stats["conflicting_dropped"] == 1


def test_an_evaluation_set_from_elsewhere_is_never_trained_on(data, tmp_path):
    evals = write(tmp_path / "evals.jsonl", [{"id": "e0", "question": "WHAT is 5 + 5?", "answer": "10"},
                                             {"id": "e1", "question": "A new one?", "answer": "1"},
                                             {"id": "e2", "question": "Beyond val_size", "answer": "2"}])
    task = build(data, val_data=evals, train_size=None, val_size=2, test_size=3)
    assert ids(task.split("val")) == ["e0", "e1"]  # the first val_size, in file order
    assert "p5" not in ids(task.split("train")) + ids(task.split("test"))  # e0's question, removed
    assert task.stats["overlap_removed"] == 1 and len(task.split("train")) == 40 - 1 - 3
    assert task.stats["val_source"] == evals


def test_too_few_problems_say_what_fits(data):
    with pytest.raises(ValueError, match=r"has 40 usable problems .* lower task.test_size"):
        build(data, train_size=30, val_size=5, test_size=10)


def test_field_mapping_scorer_and_oracle(tmp_path):
    path = write(tmp_path / "own.jsonl", [{"problem": f"Q{i}", "solution": f"\\frac{{{i}}}{{2}}"} for i in range(5)])
    task = build(path, fields={"question": "problem", "answer": "solution"}, scorer="math", train_size=5)
    p = task.split("train")[0]
    assert task.scorer == "math" and p.id.startswith("own-") and p.answer.startswith("\\frac")
    assert task.oracle_answer(ExpertRequest(problem=p.question, query="anything", gold=p.answer)) == p.answer
    assert build(path, fields={"question": "problem", "answer": "solution"}, train_size=5).scorer == "exact"
    with pytest.raises(KeyError, match="no field 'question'"):
        build(path, train_size=5)


def test_the_built_in_task_is_not_a_dataset():
    with pytest.raises(ValueError, match="task.name 'chain'"):
        build("chain", train_size=5)


@pytest.mark.parametrize("overrides, fragment", [
    (["task.data=x.jsonl"], "task.data (a registered set or a .jsonl file) is required by task.name 'dataset'"),
    (["task.name=dataset"], "required by task.name 'dataset'"),
    (["task.scorer=math"], "task.scorer is read by task.name 'dataset' only"),
    (["task.val_data=aime2024"], "task.val_data is read by task.name 'dataset' only"),
    (["task.train_size=null"], "task.train_size (null) is read by task.name 'dataset' only"),
    (["task.name=dataset", "task.data=x.jsonl", "task.scorer=code"], "task.scorer must be one of"),
    (["task.name=dataset", "task.data=x.jsonl", "task.fields={prompt: q}"], "task.fields keys must be among"),
    (["task.name=arithmetic"], "task.name must be one of chain, dataset"),
])
def test_config_refuses_what_the_task_does_not_read(overrides, fragment):
    with pytest.raises((ConfigError, ValueError)) as err:
        load_config(TrainConfig, None, overrides)
    assert fragment in str(err.value)


def test_math_tasks_read_boxed_answers_and_the_chain_task_is_unchanged(data):
    small = ["task.name=dataset", f"task.data={data}", "task.train_size=null", "task.val_size=5", "task.test_size=5",
             "eval.val_size=5"]
    cfg = load_config(TrainConfig, None, [*small, "task.scorer=math"])
    assert with_task_settings(cfg, build_task(cfg)).rollout.tags.allow_boxed
    plain = load_config(TrainConfig, None, small)
    assert not with_task_settings(plain, build_task(plain)).rollout.tags.allow_boxed  # scorer exact: as configured
    assert with_task_settings(TrainConfig(), build_task(TrainConfig())) == TrainConfig()


def test_the_tiny_policy_s_chain_warm_start_is_refused_for_a_dataset(data):
    cfg = load_config(TrainConfig, None, ["task.name=dataset", f"task.data={data}"])
    with pytest.raises(ValueError, match="warm start teaches the chain task only"):
        given_policy(cfg, None)
    assert given_policy(cfg, "org/model") == "org/model"
    assert given_policy(load_config(TrainConfig, None, ["task.name=dataset", f"task.data={data}",
                                                        "model.policy=org/other"]), None) == "org/other"
    assert given_policy(load_config(TrainConfig, None, ["task.name=dataset", f"task.data={data}",
                                                        "warmstart.steps=0"]), None) is None
    assert given_policy(TrainConfig(), None) is None  # the chain task warm-starts the tiny policy as before


# --------------------------------------------------------------------------- real data


def test_dapo_math_with_aime_for_validation_and_test(have_data):
    # no task.scorer: DAPO-Math-17k and AIME are both registered with math-verify's scorer
    cfg = load_config(TrainConfig, None, ["task.name=dataset", "task.data=dapo_math",
                                          "task.val_data=aime2024", "task.test_data=aime2025", "task.train_size=null",
                                          "task.val_size=100", "task.test_size=100"])
    task = build_task(cfg)
    assert task.scorer == "math"
    assert task.stats["rows"] == 17917 and task.stats["repeats_dropped"] == 719 and task.stats["conflicting_dropped"] == 12
    assert len(task.split("val")) == 30 and len(task.split("test")) == 30  # "at most val_size" from a 30-problem set
    assert len(task.split("train")) == 17917 - 719 - 2 * 12  # every usable DAPO row (no AIME question is in DAPO)
    assert task.split("val")[0].id == "aime2024-I-01" and task.split("train")[0].id.startswith("dapo-")


def test_registered_sets_with_different_scorers_need_a_choice(have_data):
    with pytest.raises(ValueError, match="set task.scorer"):
        build("math500", val_data="simpleqa", train_size=10, val_size=5)  # math vs f1


def test_the_tutor_oracle_is_shown_the_transcript_and_is_for_the_chain_task_only():
    from eapo.training.config import TaskConfig

    cfg = TrainConfig(task=TaskConfig(oracle="tutor"))
    task = build_task(cfg)
    assert task.oracle == "tutor" and not cfg.rollout.expert_sees_transcript
    assert with_task_settings(cfg, task).rollout.expert_sees_transcript
    assert not with_task_settings(TrainConfig(), build_task(TrainConfig())).rollout.expert_sees_transcript
    with pytest.raises(ValueError, match="task.oracle"):
        TaskConfig(name="dataset", data="gsm8k", oracle="tutor")
    with pytest.raises(ValueError, match="oracle"):
        TaskConfig(oracle="guess")
