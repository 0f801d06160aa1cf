"""Score saved completions against a benchmark's golds: offline, no model involved.

Why offline: completions produced elsewhere (vLLM, an API, another framework) can be
scored with the same scorers and the same estimators (avg@n, unbiased pass@k, variance)
as our own evaluation runs, so numbers are comparable.

Predictions are JSON Lines with `id` and either `completion` (one string) or
`completions` (a list of strings). An id may appear on several lines; its completions
are then concatenated in file order (one line per sample works). Only predicted problems
are scored; an id that is not in the benchmark is an error.

Code ("code" scorer, HumanEval): each completion is the code that follows the prompt, as
in the original harness, and passes when the benchmark's tests pass in the sandbox
(`eapo.rewards.code`, docs/SANDBOX.md); programs run `workers` at a time.

Not here: generating (`eapo eval`, which writes items in the same form).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import eapo.rewards.math  # noqa: F401  (registers "math")
import eapo.rewards.text  # noqa: F401  (registers "choice", "em", "f1")
from eapo.evaluation.metrics import summarize
from eapo.rewards.scorers import SCORERS
from eapo.types import Problem


@dataclass(frozen=True)
class ItemScore:
    id: str
    sample: int
    extracted: str | None
    score: float
    reason: str


@dataclass(frozen=True)
class ScoreReport:
    items: list[ItemScore]
    summary: dict[str, float]
    scorer: str


def read_predictions(path: str | Path) -> dict[str, list[str | None]]:
    """`{id: [completion, ...]}` from a predictions JSONL file, in file order."""
    out: dict[str, list[str | None]] = {}
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if "id" not in row:
                raise ValueError(f"{path}:{lineno}: prediction without 'id'")
            if "completions" in row:
                samples = row["completions"]
                if not isinstance(samples, list):
                    raise ValueError(f"{path}:{lineno}: 'completions' must be a list")
            elif "completion" in row:
                samples = [row["completion"]]
            else:
                raise ValueError(f"{path}:{lineno}: prediction needs 'completion' or 'completions'")
            for s in samples:
                if s is not None and not isinstance(s, str):
                    raise ValueError(f"{path}:{lineno}: completions must be strings or null, got {type(s).__name__}")
            out.setdefault(str(row["id"]), []).extend(samples)
    return out


def default_ks(n: int) -> list[int]:
    """Powers of two up to `n` samples.

    >>> default_ks(1), default_ks(6)
    ([1], [1, 2, 4])
    """
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    return ks


def score_predictions(problems: Sequence[Problem], predictions: Mapping[str, Sequence[str | None]],
                      scorer: str, *, workers: int = 4, code_timeout_s: float = 10.0) -> ScoreReport:
    """Score every completion of every predicted id with the named scorer (code: `workers`
    programs at once, `code_timeout_s` each)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    gold = {p.id: p.answer for p in problems}
    if scorer == "code":
        # Code is judged by running the benchmark's tests in the sandbox, not against a gold
        # string: the scorer gets the whole problem (prompt, tests, entry point).
        from eapo.rewards.code import score_humaneval

        by_id = {p.id: {"prompt": p.question, **p.meta} for p in problems}
        missing = [p.id for p in problems if "test" not in p.meta or "entry_point" not in p.meta]
        if missing:
            raise ValueError(f"scorer 'code' needs `test` and `entry_point` fields; missing for {missing[:3]}")

        def fn(completion, pid):  # type: ignore[no-redef]
            return score_humaneval(completion, by_id[pid], timeout_s=code_timeout_s)
    else:
        by_gold = SCORERS.get(scorer)

        def fn(completion, pid):  # type: ignore[no-redef]
            return by_gold(completion, gold[pid])
    unknown = [pid for pid in predictions if pid not in gold]
    if unknown:
        known = ", ".join(list(gold)[:3])
        raise ValueError(f"{len(unknown)} predicted id(s) not in the benchmark, e.g. {unknown[:5]}; "
                         f"benchmark ids look like: {known}")
    if not predictions:
        raise ValueError("no predictions to score")
    empty = [pid for pid, samples in predictions.items() if not samples]
    if empty:
        raise ValueError(f"ids without completions: {empty[:5]}")
    jobs = [(pid, j, completion) for pid, samples in predictions.items() for j, completion in enumerate(samples)]
    if scorer == "code" and workers > 1:  # each program waits on its own process: threads suffice
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(lambda job: fn(job[2], job[0]), jobs))
    else:
        results = [fn(completion, pid) for pid, _, completion in jobs]
    items: list[ItemScore] = []
    scores: dict[str, list[float]] = {}
    for (pid, j, _), r in zip(jobs, results):
        items.append(ItemScore(pid, j, r.extracted, r.score, r.reason))
        scores.setdefault(pid, []).append(r.score)
    n_min = min(len(s) for s in scores.values())
    return ScoreReport(items, summarize(scores, default_ks(n_min)), scorer)


def write_report(report: ScoreReport, out_dir: str | Path) -> tuple[Path, Path]:
    """Write `items.jsonl` (one line per sample) and `summary.json` into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items_path, summary_path = out / "items.jsonl", out / "summary.json"
    with items_path.open("w", encoding="utf-8") as fh:
        for item in report.items:
            fh.write(json.dumps(asdict(item), ensure_ascii=False) + "\n")
    summary = {"scorer": report.scorer, **report.summary}
    summary_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return items_path, summary_path
