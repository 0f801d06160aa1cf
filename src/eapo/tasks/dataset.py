"""Tasks from data: any set the benchmarks layer loads (DAPO-Math-17k, MATH-500, GSM8K, a
user's own JSON Lines) as reproducible train / validation / test splits.

Why a task and not just a list of problems: training needs what `ChainTask` gives, a
fixed split by seed, a scorer name for the reward, and an oracle for the in-process
oracle expert; the benchmarks layer (`eapo.evaluation.benchmarks`) already knows how to
read each file, which fields hold question and answer, and which scorer fits. This
module only draws the splits.

How the splits are drawn (`DatasetTask.build`):

1. The rows of `data` are read. Questions are compared after collapsing whitespace and
   case; a question that occurs more than once is kept once, and a question whose copies
   disagree on the gold answer is dropped entirely (its reward would be a coin flip).
   DAPO-Math-17k has 731 repeated rows, 12 questions of them with conflicting answers.
2. A split may come from another set (`val_data`, `test_data`, e.g. `aime2024`): its
   first `val_size` / `test_size` problems, in file order, as `eapo eval --limit` takes
   them. Any training row whose question is also in such a split is removed (no
   evaluation problem is ever trained on).
3. The remaining rows are shuffled by a generator seeded from the data's name and `seed`
   (string seeding is stable across Python versions and machines), then cut in order:
   test, validation, training. So the same config always gives the same splits, and
   growing `train_size` never moves a problem between test and training.

The sets are read by a loader the caller gives (`SetLoader`; `eapo.evaluation.benchmarks`
is one, and the assembly layer, `eapo.assembly.run.build_task`, passes it), so this layer
imports nothing above it.

The oracle answers any query with the problem's gold answer: the upper bound of help
for the in-process oracle expert (`experts.kind: oracle`). A network expert never sees
the gold (`eapo.experts.messages`).

Not here: reading files and field mappings (`eapo.evaluation.benchmarks`), prompting
(the rollout renders the question through the model's chat template), scoring
(`eapo.rewards`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from eapo.types import ExpertRequest, Problem

log = logging.getLogger(__name__)

__all__ = ["DatasetTask", "SetLoader", "SetSpec", "dedupe", "question_key"]


class SetSpec(Protocol):
    """What a set's name means to the task (`eapo.evaluation.benchmarks.BenchmarkSpec` is one)."""

    name: str
    scorer: str
    template_family: str
    builtin: str | None


class SetLoader(Protocol):
    """How `DatasetTask.build` reads its sets: the spec of a name, and its problems (the
    module `eapo.evaluation.benchmarks` is one: its `resolve_spec` and `load_benchmark`)."""

    def resolve_spec(self, name_or_path: str, fields: dict[str, str] | None = None) -> SetSpec: ...

    def load_benchmark(self, name_or_path: str, limit: int | None = None,
                       fields: dict[str, str] | None = None) -> list[Problem]: ...


def question_key(text: str) -> str:
    """The identity of a question for de-duplication: whitespace runs collapsed, case folded.

    >>> question_key("  What is\\n 2+2? ") == question_key("what is 2+2?")
    True
    """
    return " ".join(text.split()).casefold()


def dedupe(problems: Sequence[Problem]) -> tuple[list[Problem], int, int]:
    """`(kept, repeats, conflicting)`: each question once (its first row); questions whose
    copies disagree on the answer are dropped. `repeats` counts dropped extra copies of
    kept questions, `conflicting` the questions dropped for disagreeing golds.

    >>> p = lambda i, q, a: Problem(str(i), q, a)
    >>> kept, rep, bad = dedupe([p(0, "a", "1"), p(1, "A ", "1"), p(2, "b", "2"), p(3, "b", "3"), p(4, "c", "4")])
    >>> [x.id for x in kept], rep, bad
    (['0', '4'], 1, 1)
    """
    answers: dict[str, set[str]] = {}
    for p in problems:
        answers.setdefault(question_key(p.question), set()).add(p.answer.strip())
    kept: list[Problem] = []
    seen: set[str] = set()
    repeats = 0
    for p in problems:
        key = question_key(p.question)
        if len(answers[key]) > 1:
            continue
        if key in seen:
            repeats += 1
            continue
        seen.add(key)
        kept.append(p)
    conflicting = sum(1 for a in answers.values() if len(a) > 1)
    return kept, repeats, conflicting


@dataclass(frozen=True)
class DatasetTask:
    """Fixed train / val / test problems from data, one scorer for all of them (see the
    module docstring). Build with `DatasetTask.build`; the fields are the result."""

    name: str
    """The training data's name (a registered benchmark, or the file's stem)."""
    scorer: str
    """Scorer of the reward and of the evaluations (a name in `eapo.rewards.SCORERS`)."""
    template_family: str
    """The training data's prompt family ("math_boxed" turns on `\\boxed{}` answers)."""
    splits: Mapping[str, tuple[Problem, ...]]
    stats: Mapping[str, Any] = field(default_factory=dict)
    """What the draw did: rows read, repeats and conflicting questions dropped, training
    rows removed for overlapping an evaluation split, the split sizes and sources."""

    def split(self, name: str) -> list[Problem]:
        if name not in self.splits:
            raise KeyError(f"unknown split {name!r}; valid: {', '.join(self.splits)}")
        return list(self.splits[name])

    def oracle_answer(self, request: ExpertRequest) -> str:
        """The gold answer of the request's problem, whatever the query."""
        if request.gold is None:
            raise ValueError("the dataset oracle needs the request's gold answer (the rollout passes it)")
        return request.gold

    @classmethod
    def build(
        cls,
        data: str,
        *,
        loader: SetLoader,
        fields: Mapping[str, str] | None = None,
        scorer: str | None = None,
        val_data: str | None = None,
        test_data: str | None = None,
        train_size: int | None = None,
        val_size: int = 0,
        test_size: int = 0,
        seed: int = 0,
    ) -> "DatasetTask":
        """Read `data` (and `val_data` / `test_data`) and draw the splits.

        `fields` maps our field names (id, question, answer, choices) to a `.jsonl`
        source's own; registered benchmarks take none. `scorer` None: the scorer the
        benchmarks layer registers for `data` (a `.jsonl`: exact); then the evaluation
        sets must be registered with the same one, or the choice is refused as ambiguous.
        `train_size` None: every row left after the evaluation splits. `loader` reads the
        sets (`SetLoader`)."""
        from eapo.rewards import SCORERS

        resolve_spec, load_benchmark = loader.resolve_spec, loader.load_benchmark

        sources = {"train": data, "val": val_data, "test": test_data}
        specs = {split: resolve_spec(src, _fields_for(src, fields)) for split, src in sources.items() if src}
        for split, spec in specs.items():
            if spec.builtin is not None:
                raise ValueError(f"task {'data' if split == 'train' else split + '_data'} {spec.name!r} is the "
                                 "built-in task: use task.name 'chain' instead of a dataset task")
        if scorer is None:
            named = {split: spec.scorer for split, spec in specs.items()}
            if len(set(named.values())) > 1:
                listing = ", ".join(f"{sources[s]} ({s}): {n}" for s, n in named.items())
                raise ValueError(f"the sets of this task are registered with different scorers ({listing}); "
                                 "set task.scorer to the one the reward and the evaluations should use")
            scorer = specs["train"].scorer
        if scorer not in SCORERS:
            raise ValueError(f"task.scorer {scorer!r} cannot score rewards; valid: {', '.join(SCORERS.names())}")

        read = load_benchmark(data, fields=_fields_for(data, fields))
        rows, repeats, conflicting = dedupe(read)
        stats: dict[str, Any] = {"data": data, "rows": len(read), "repeats_dropped": repeats,
                                 "conflicting_dropped": conflicting}
        held: dict[str, list[Problem]] = {}
        for split, src, size in (("test", test_data, test_size), ("val", val_data, val_size)):
            if src is not None:
                held[split] = dedupe(load_benchmark(src, fields=_fields_for(src, fields)))[0][:size]
        taken = {question_key(p.question) for probs in held.values() for p in probs}
        pool = [p for p in rows if question_key(p.question) not in taken]
        stats["overlap_removed"] = len(rows) - len(pool)
        rng = random.Random(f"eapo.tasks.dataset:{specs['train'].name}:{seed}")
        rng.shuffle(pool)

        out: dict[str, tuple[Problem, ...]] = {}
        start = 0
        for split, size in (("test", test_size), ("val", val_size), ("train", train_size)):
            if split in held:
                out[split] = tuple(held[split])
                continue
            end = len(pool) if size is None else start + size
            if end > len(pool) or (split == "train" and end <= start):
                raise ValueError(
                    f"task.data {data!r} has {len(pool)} usable problems ({stats['rows']} rows, {repeats} repeats and "
                    f"{conflicting} questions with conflicting answers dropped, {stats['overlap_removed']} in an "
                    f"evaluation set); test {test_size if 'test' not in held else 0} + val "
                    f"{val_size if 'val' not in held else 0} + train {train_size} do not fit: lower task.test_size, "
                    "task.val_size or task.train_size (null: every row left)")
            out[split] = tuple(pool[start:end])
            start = end
        splits = {s: out[s] for s in ("train", "val", "test")}
        stats.update({f"{s}_size": len(v) for s, v in splits.items()})
        stats.update({f"{s}_source": sources[s] or data for s in splits})
        log.info("task %s: %s", specs["train"].name, stats)
        return cls(name=specs["train"].name, scorer=scorer, template_family=specs["train"].template_family,
                   splits=splits, stats=stats)


def _fields_for(source: str, fields: Mapping[str, str] | None) -> dict[str, str] | None:
    """The field mapping applies to `.jsonl` sources only (registered sets know theirs)."""
    return dict(fields) if fields and source.endswith(".jsonl") else None
