"""Benchmark registry and loader: a name (or your own JSONL file) -> `list[Problem]`.

Why a registry of small specs: each benchmark differs only in its file, its scorer, the
prompt family it needs and which fields hold the question and the gold answer. Naming
them in one table lets the CLI and configs say `--benchmark math500` and get the right
scorer without special cases.

The data files are not in this repository (see `shared/data/SOURCES.md` for provenance
and row counts). `data_dir()` finds them: `$EAPO_DATA_DIR`, else `../shared/data` next to
the repository root (found from the working directory, then from this package's place).

Choices: for "choice" benchmarks the question text gets the lettered options appended
("A. ...", one per line), so any prompt template works; the raw list stays in `meta`.
Every other field of a row (solution, context, test, ...) is kept in `Problem.meta`; the
HotpotQA paragraphs, for instance, are in `meta["context"]`, not in the question: a
prompt template decides whether the run is closed-book or reads them.

`chain` is the built-in task's test split (the default `task:` section of a training run,
`eapo.schema.TaskConfig`), so a policy trained by `eapo train` is evaluated with
the same command on the problems its run was tested on; no file is read.

SimpleQA is scored by "f1" (SQuAD-style token F1, with EM reported by `--scorer em`):
OpenAI's official grader is an LLM judge, which this library does not ship.

Not here: prompting (templates), scoring (`eapo.rewards`), running a model.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eapo.registry import Registry
from eapo.types import Problem

TEMPLATE_FAMILIES = ("math_boxed", "choice", "short_answer", "code")
ENV_VAR = "EAPO_DATA_DIR"
LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    file: str
    """File name inside `data_dir()` (or an absolute path for a user's own data)."""
    scorer: str
    """Name in `eapo.rewards.SCORERS` ("code" is the sandbox scorer)."""
    template_family: str
    """Which prompt family fits: "math_boxed" | "choice" | "short_answer" | "code"."""
    question_field: str = "question"
    answer_field: str = "answer"
    choices_field: str | None = None
    """Field with the list of options; set for "choice" benchmarks."""
    id_field: str = "id"
    builtin: str | None = None
    """A built-in task whose test split is the benchmark (then `file` is unused): "chain"."""

    def __post_init__(self) -> None:
        if self.template_family not in TEMPLATE_FAMILIES:
            raise ValueError(f"benchmark {self.name!r}: template_family must be one of {TEMPLATE_FAMILIES}, "
                             f"got {self.template_family!r}")
        if self.template_family == "choice" and not self.choices_field:
            raise ValueError(f"benchmark {self.name!r}: a choice benchmark needs choices_field")


BENCHMARKS: Registry[BenchmarkSpec] = Registry("benchmark")

for _spec in (
    BenchmarkSpec("aime2024", "aime2024.jsonl", "math", "math_boxed"),
    BenchmarkSpec("aime2025", "aime2025.jsonl", "math", "math_boxed"),
    BenchmarkSpec("aimo2", "aimo2_reference.jsonl", "math", "math_boxed"),
    BenchmarkSpec("aimo3", "aimo3_reference.jsonl", "math", "math_boxed"),
    BenchmarkSpec("math500", "math500.jsonl", "math", "math_boxed"),
    BenchmarkSpec("gsm8k", "gsm8k_test.jsonl", "math", "math_boxed"),
    # integer answers, but scored like AIME (its usual validation set): math-verify, whose integer
    # fast path reads `034` and `\boxed{34}` as exactly as the integer scorer, and which also
    # accepts `34.0` or `\dfrac{68}{2}`, so training and evaluation give the same reward
    BenchmarkSpec("dapo_math", "dapo_math_17k.jsonl", "math", "math_boxed"),
    BenchmarkSpec("humaneval", "humaneval.jsonl", "code", "code", question_field="prompt"),
    BenchmarkSpec("gpqa_diamond", "gpqa_diamond.jsonl", "choice", "choice", choices_field="choices"),
    BenchmarkSpec("mmlu", "mmlu_test_20per_subject.jsonl", "choice", "choice", choices_field="choices"),
    BenchmarkSpec("mmlu_full", "mmlu_test.jsonl", "choice", "choice", choices_field="choices"),
    BenchmarkSpec("simpleqa", "simpleqa.jsonl", "f1", "short_answer"),
    BenchmarkSpec("hotpotqa", "hotpotqa_dev_distractor_500.jsonl", "f1", "short_answer"),
    BenchmarkSpec("chain", "", "integer", "short_answer", builtin="chain"),
):
    BENCHMARKS.add(_spec.name, _spec)
del _spec


def _candidates() -> list[Path]:
    found: list[Path] = []
    cwd = Path.cwd().resolve()
    for d in (cwd, *cwd.parents):  # the repository root holding the working directory
        if (d / "pyproject.toml").exists() or (d / ".git").exists():
            found.append(d.parent / "shared" / "data")
            break
    found.append(cwd.parent / "shared" / "data")
    found.append(Path(__file__).resolve().parents[3].parent / "shared" / "data")  # src/eapo/evaluation -> repo
    return list(dict.fromkeys(found))


def data_dir() -> Path:
    """The benchmark data folder: `$EAPO_DATA_DIR`, else `<repo>/../shared/data`."""
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"{ENV_VAR}={env} is not a directory")
        return path
    tried = _candidates()
    for path in tried:
        if path.is_dir():
            return path
    raise FileNotFoundError(
        "benchmark data folder not found; set the environment variable "
        f"{ENV_VAR} to the folder holding the .jsonl files, or place them in ../shared/data next "
        f"to the repository root (tried: {', '.join(str(p) for p in tried)})")


def resolve_spec(name_or_path: str | os.PathLike[str], fields: dict[str, str] | None = None) -> BenchmarkSpec:
    """The spec of a registered name, or of a user's `.jsonl` file with a field mapping.

    `fields` maps our names ("id", "question", "answer", "choices") to the file's field
    names; a user file without an id field gets `<file stem>-<line index>` ids.
    """
    fields = dict(fields or {})
    unknown = set(fields) - {"id", "question", "answer", "choices"}
    if unknown:
        raise ValueError(f"unknown field mapping keys {sorted(unknown)}; valid: id, question, answer, choices")
    name = str(name_or_path)
    if name in BENCHMARKS:
        spec = BENCHMARKS.get(name)
    elif name.endswith(".jsonl"):
        has_choices = "choices" in fields
        spec = BenchmarkSpec(Path(name).stem, str(Path(name).expanduser().resolve()), "exact",
                             "choice" if has_choices else "short_answer", choices_field="choices" if has_choices else None)
    else:
        BENCHMARKS.get(name)  # raises, listing the valid names
        raise AssertionError  # pragma: no cover
    if not fields:
        return spec
    if spec.builtin is not None:
        raise ValueError(f"benchmark {spec.name!r} is a built-in task: it takes no field mapping")
    return BenchmarkSpec(spec.name, spec.file, spec.scorer, spec.template_family,
                         question_field=fields.get("question", spec.question_field),
                         answer_field=fields.get("answer", spec.answer_field),
                         choices_field=fields.get("choices", spec.choices_field),
                         id_field=fields.get("id", spec.id_field))


def builtin_task(name: str) -> Any:
    """The built-in task behind a `builtin` benchmark, as a default training run builds it
    (the default `task:` section)."""
    if name != "chain":
        raise ValueError(f"unknown built-in task {name!r}; valid: chain")
    from eapo.tasks.arithmetic import ChainTask
    from eapo.schema import TaskConfig

    return ChainTask.from_config(TaskConfig())


def benchmark_path(spec: BenchmarkSpec) -> Path:
    if spec.builtin is not None:
        raise ValueError(f"benchmark {spec.name!r} is the built-in task {spec.builtin!r}: it has no file")
    file = Path(spec.file)
    path = file if file.is_absolute() else data_dir() / file
    if not path.is_file():
        raise FileNotFoundError(f"benchmark {spec.name!r}: file {path} not found "
                                f"(data folder from {ENV_VAR} or ../shared/data)")
    return path


def with_choices(question: str, choices: list[Any]) -> str:
    """The question followed by its lettered options.

    >>> print(with_choices("2+2?", ["3", "4"]))
    2+2?
    <BLANKLINE>
    A. 3
    B. 4
    """
    if len(choices) > len(LETTERS):
        raise ValueError(f"at most {len(LETTERS)} choices are supported, got {len(choices)}")
    lines = [f"{LETTERS[i]}. {str(c).strip()}" for i, c in enumerate(choices)]
    return question.rstrip() + "\n\n" + "\n".join(lines)


def load_benchmark(name_or_path: str | os.PathLike[str], limit: int | None = None,
                   fields: dict[str, str] | None = None) -> list[Problem]:
    """Problems of a registered benchmark or of a `.jsonl` file (first `limit` rows).

    `meta` holds every other field of the row plus "benchmark", "scorer" and
    "template_family" (and "choices" for choice benchmarks).
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    spec = resolve_spec(name_or_path, fields)
    if spec.builtin is not None:
        meta = dict(benchmark=spec.name, scorer=spec.scorer, template_family=spec.template_family)
        rows = builtin_task(spec.builtin).split("test")[:limit]
        return [Problem(p.id, p.question, p.answer, {**p.meta, **meta}) for p in rows]
    path = benchmark_path(spec)
    problems: list[Problem] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        for index, line in enumerate(fh):
            if limit is not None and len(problems) >= limit:
                break
            if not line.strip():
                continue
            row = json.loads(line)
            problems.append(_problem(spec, row, index, path))
            if problems[-1].id in seen:
                raise ValueError(f"{path}:{index + 1}: duplicate id {problems[-1].id!r}")
            seen.add(problems[-1].id)
    return problems


def _problem(spec: BenchmarkSpec, row: dict[str, Any], index: int, path: Path) -> Problem:
    for key in (spec.question_field, spec.answer_field, spec.choices_field):
        if key is not None and key not in row:
            raise KeyError(f"{path}:{index + 1}: no field {key!r} (fields: {sorted(row)}); "
                           "pass a field mapping, e.g. fields={'question': ..., 'answer': ...}")
    pid = str(row[spec.id_field]) if spec.id_field in row else f"{spec.name}-{index}"
    question = str(row[spec.question_field])
    used = {spec.id_field, spec.question_field, spec.answer_field}
    meta: dict[str, Any] = {k: v for k, v in row.items() if k not in used}
    if spec.choices_field is not None:
        choices = row[spec.choices_field]
        if not isinstance(choices, list):
            raise ValueError(f"{path}:{index + 1}: field {spec.choices_field!r} must be a list, got {type(choices).__name__}")
        question = with_choices(question, choices)
        meta["choices"] = choices
    meta.update(benchmark=spec.name, scorer=spec.scorer, template_family=spec.template_family)
    return Problem(id=pid, question=question, answer=str(row[spec.answer_field]), meta=meta)
