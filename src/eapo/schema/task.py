"""The `task` section: which problems a run trains and is evaluated on, and how many per split.

The built-in chained-arithmetic task (`eapo.tasks.arithmetic`) or a dataset
(`eapo.tasks.dataset`, the registered sets of `eapo.evaluation.benchmarks`). Scorer names
are fixed here (`SCORER_NAMES`), so a config is checked without importing the scorers;
`eapo.rewards.SCORERS` registers one scorer per name and a test checks the two agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from eapo.schema.checks import check_int as _int
from eapo.schema.checks import check_lengths as _lengths
from eapo.schema.checks import check_one_of as _one_of

__all__ = ["ORACLES", "SCORER_NAMES", "TASK_NAMES", "TaskConfig"]

TASK_NAMES = ("chain", "dataset")
# What the chain task's oracle expert answers (`eapo.tasks.arithmetic`).
ORACLES = ("literal", "step", "tutor", "write")
# The names of `eapo.rewards.SCORERS`, sorted as a Registry lists them.
SCORER_NAMES = ("choice", "em", "exact", "f1", "integer", "math")


@dataclass(frozen=True)
class TaskConfig:
    """The problems: the built-in task, or a dataset, and how many per split."""

    name: str = "chain"
    """chain (the built-in chained-arithmetic task) or dataset (problems from task.data)."""
    data: str | None = None
    """Task dataset only (required there): a registered set (dapo_math, math500, gsm8k, ...,
    see eapo.evaluation.benchmarks) or a JSON Lines file, read from $EAPO_DATA_DIR or
    ../shared/data. Splits are drawn reproducibly by task.seed (eapo.tasks.dataset)."""
    fields: dict[str, str] = field(default_factory=dict)
    """Task dataset, .jsonl sources only: our field -> the file's (keys id, question, answer,
    choices), e.g. {question: problem, answer: solution}."""
    scorer: str | None = None
    """Task dataset: scorer of the reward and of validation and test (math = math-verify,
    integer, exact, choice, em, f1); null: the one registered for task.data (a .jsonl: exact)."""
    val_data: str | None = None
    """Task dataset: take validation problems from this set instead (e.g. aime2024): its
    first val_size, removed from training; null: drawn from task.data."""
    test_data: str | None = None
    """Task dataset: the same for the test split (e.g. aime2025)."""
    min_len: int = 5
    """Task chain: shortest problem (number of operations). The default RL split is the hard
    one, lengths 5-6, where the warm-started policy alone succeeds a few % of the time
    (docs/TASK.md)."""
    max_len: int = 6
    """Task chain: longest problem."""
    train_size: int | None = 2000
    """Problems in the training split; null (task dataset only): every row left after
    validation and test."""
    val_size: int = 200
    """Problems in the validation split (evaluated during training); from val_data: at most this many."""
    test_size: int = 400
    """Problems in the held-out test split (evaluated at the end); from test_data: at most this many."""
    seed: int = 0
    """Seed of the problem generator or of the dataset shuffle (splits are fixed by it)."""
    oracle: str = "literal"
    """Task chain: what the oracle expert answers. literal: the value of the query as asked
    (`85-19` -> 66, even when the policy misread 19); step: the right result of the step the
    policy is at, from its own running value (the operand read from the problem); write: that
    step written out, for rollout.consult_style bare; tutor: the true running value
    of the problem after the step the policy is at (counted in its transcript, which the
    expert then sees), so a reply also repairs a misread operand or an earlier slip.
    docs/TASK.md says why."""

    def __post_init__(self) -> None:
        _one_of("task", "name", self.name, TASK_NAMES)
        _one_of("task", "oracle", self.oracle, ORACLES)
        dataset = self.name == "dataset"
        for key in ("data", "scorer", "val_data", "test_data"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"task.{key} must be null or a non-empty string, got {value!r}")
        if (self.data is not None) != dataset:
            raise ValueError("task.data (a registered set or a .jsonl file) is required by task.name 'dataset' "
                             f"and read by no other task; got name {self.name!r} with data {self.data!r}")
        if not dataset:
            unused = [k for k in ("scorer", "val_data", "test_data") if getattr(self, k) is not None]
            unused += ["fields"] if self.fields else []
            unused += ["train_size (null)"] if self.train_size is None else []
            if unused:
                raise ValueError(f"task.{unused[0]} is read by task.name 'dataset' only, not {self.name!r}")
        elif self.oracle != "literal":
            raise ValueError("task.oracle is read by the chain task only, not by task.name 'dataset'")
        if not isinstance(self.fields, Mapping) or not all(isinstance(v, str) and v for v in self.fields.values()):
            raise ValueError(f"task.fields must map field names to the file's field names, got {self.fields!r}")
        bad = sorted(set(self.fields) - {"id", "question", "answer", "choices"})
        if bad:
            raise ValueError(f"task.fields keys must be among id, question, answer, choices; got {bad}")
        if self.scorer is not None:
            _one_of("task", "scorer", self.scorer, SCORER_NAMES)
        _lengths("task", self.min_len, self.max_len)
        if self.train_size is not None:
            _int("task", "train_size", self.train_size)
        _int("task", "val_size", self.val_size, low=0)
        _int("task", "test_size", self.test_size, low=0)
