"""Reading run folders for the report, tolerantly: old and new metric names, missing
files, interrupted runs, `eapo train` and `eapo compare` outputs.

What counts as what, found by walking each folder given (a few levels deep):

- a *run* is a folder with `metrics.jsonl` (one arm of `eapo train`, or any `train_run`);
  beside it `val.jsonl`, `test.json`, `rollouts/*.jsonl` and `config.yaml` are read when present;
- a *base* is a folder with `test.json` and no `metrics.jsonl` (the warm start of `eapo
  train`): it has a test result but no curves;
- a *results file* is a `results.json` (written by `eapo compare`): one entry per row with
  each metric's per-seed values, mean and standard deviation. Its exact layout is read
  loosely (see `read_results`), so the report keeps working while that format settles.

Metric names go through `eapo.reporting.names.canonical_row`, so run folders written
before the prefix scheme read the same as new ones. When a resumed run logged a step twice
(the steps after the last checkpoint, redone), the later row wins.
"""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eapo.reporting.names import canonical_row

log = logging.getLogger(__name__)

__all__ = ["Cell", "ReportInputs", "ResultsTable", "RunData", "discover", "read_results"]

_SKIP_DIRS = {"rollouts", "tensorboard", "wandb", "final", "__pycache__", ".git"}
_MAX_DEPTH = 4


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON Lines file; a torn last line (a run killed mid-write) is skipped."""
    rows = []
    if not path.exists():
        return rows
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            log.warning("%s:%d: not JSON, skipped", path, i)
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        log.warning("%s: unreadable (%s), skipped", path, e)
        return None


@dataclass
class RunData:
    """One training run's files, metric names canonical."""

    label: str
    path: Path
    rows: list[dict[str, Any]]
    """Log rows of metrics.jsonl (training, and validation/test rows in newer runs)."""
    val: list[dict[str, Any]]
    test: dict[str, float] | None
    dumps: list[Path]
    config: dict[str, Any] | None = None

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """(steps, values) of a metric over training, one value per step, in step order."""
        by_step: dict[int, float] = {}
        for row in self.rows:
            v = row.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and "step" in row:
                by_step[int(row["step"])] = float(v)
        steps = sorted(by_step)
        return steps, [by_step[s] for s in steps]

    def val_series(self, key: str) -> tuple[list[int], list[float]]:
        """Validation metric over training: val.jsonl, else the evaluation rows of metrics.jsonl."""
        source = self.val or [r for r in self.rows if any(k.startswith("eval/") for k in r)]
        by_step = {int(r["step"]): float(r[key]) for r in source
                   if "step" in r and isinstance(r.get(key), (int, float)) and math.isfinite(r[key])}
        steps = sorted(by_step)
        return steps, [by_step[s] for s in steps]

    def mean(self, key: str) -> float | None:
        _, values = self.series(key)
        return statistics.fmean(values) if values else None

    @property
    def arm(self) -> str | None:
        rl = (self.config or {}).get("rl") or {}
        return rl.get("arm") if isinstance(rl, dict) else None


@dataclass(frozen=True)
class Cell:
    mean: float
    std: float | None = None
    values: tuple[float, ...] = ()


@dataclass
class ResultsTable:
    source: Path
    columns: list[str]
    rows: list[tuple[str, dict[str, Cell]]]


@dataclass
class ReportInputs:
    runs: list[RunData] = field(default_factory=list)
    bases: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    base_paths: list[Path] = field(default_factory=list)
    results: list[ResultsTable] = field(default_factory=list)


def _read_run(path: Path, label: str) -> RunData:
    config = None
    if (path / "config.yaml").exists():
        import yaml

        try:
            config = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8"))
        except yaml.YAMLError:
            config = None
    test = _read_json(path / "test.json") if (path / "test.json").exists() else None
    return RunData(
        label=label,
        path=path,
        rows=[canonical_row(r) for r in _read_jsonl(path / "metrics.jsonl")],
        val=[canonical_row(r) for r in _read_jsonl(path / "val.jsonl")],
        test=test if isinstance(test, dict) else None,
        dumps=sorted((path / "rollouts").glob("*.jsonl")) if (path / "rollouts").is_dir() else [],
        config=config if isinstance(config, dict) else None,
    )


def _walk(root: Path) -> Iterable[Path]:
    """Folders under root (root included), depth-limited, skipping bulky ones."""
    root_depth = len(root.parts)
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("checkpoint-")
                             and len(here.parts) - root_depth < _MAX_DEPTH)
        yield here


def discover(paths: Iterable[str | Path]) -> ReportInputs:
    """Runs, bases and results files under the given folders (or results.json files).

    Labels are paths relative to the parent of the folder given (`quick-s0/eapo`), so the
    same arm of two comparisons stays distinguishable."""
    out = ReportInputs()
    seen: set[Path] = set()
    for given in paths:
        given = Path(given)
        if not given.exists():
            raise FileNotFoundError(f"{given}: no such run folder")
        if given.is_file():
            table = read_results(given)
            if table is None:
                raise ValueError(f"{given}: not a results file (results.json of eapo compare)")
            out.results.append(table)
            continue
        anchor = given.resolve().parent
        for folder in _walk(given.resolve()):
            if folder in seen:
                continue
            seen.add(folder)
            label = str(folder.relative_to(anchor))
            if (folder / "metrics.jsonl").exists():
                out.runs.append(_read_run(folder, label))
            elif (folder / "test.json").exists():
                test = _read_json(folder / "test.json")
                if isinstance(test, dict):
                    out.bases.append((label, test))
                    out.base_paths.append(folder)
            if (folder / "results.json").exists():
                table = read_results(folder / "results.json")
                if table is not None:
                    out.results.append(table)
    _unique_labels(out)
    return out


def _unique_labels(inputs: ReportInputs) -> None:
    """Two folders given with the same name (runs/a/eapo, runs/b/eapo) get labels relative
    to their common ancestor (a/eapo, b/eapo)."""
    if not inputs.runs:
        return
    labels = [r.label for r in inputs.runs] + [label for label, _ in inputs.bases]
    if len(set(labels)) == len(labels):
        return
    paths = [r.path.resolve() for r in inputs.runs]
    every = paths + [p.resolve() for p in inputs.base_paths]
    common = Path(os.path.commonpath(every))
    anchor = common.parent if common in every else common  # a run inside another keeps a non-empty label
    for run in inputs.runs:
        run.label = str(run.path.resolve().relative_to(anchor))
    inputs.bases = [(str(p.resolve().relative_to(anchor)), test) for p, (_, test) in zip(inputs.base_paths, inputs.bases)]


# ----------------------------------------------------------------------- results.json

_NAME_KEYS = ("label", "name", "row", "id", "arm")  # eapo compare: label is the readable one
_META_KEYS = {"name", "row", "label", "id", "arm", "seeds", "config", "description", "runs", "run_dirs", "status", "kind", "evaluated_with_experts",
              "error", "errors", "n_seeds", "notes"}
_COLUMN_ORDER = ("avg@n", "greedy_acc", "pass@1", "pass@2", "pass@4", "pass@8", "pass@16", "pass@32", "var",
                 "consult_rate", "acceptance_rate", "consult_attempts", "expert_tokens", "expert_calls", "wall_s")


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x)


def _cell(value: Any) -> Cell | None:
    """A metric's entry: a number, a list of per-seed values, or a mapping with mean/std
    and values (per_seed, seeds) as a list or a seed -> value mapping."""
    num = _number(value)
    if num is not None:
        return Cell(num)
    values: list[float] = []
    mean = std = None
    if isinstance(value, list):
        values = [v for v in map(_number, value) if v is not None]
    elif isinstance(value, Mapping):
        raw = next((value[k] for k in ("values", "per_seed", "seeds", "by_seed") if k in value), [])
        if isinstance(raw, Mapping):
            raw = list(raw.values())
        if isinstance(raw, list):
            values = [v for v in map(_number, raw) if v is not None]
        mean = _number(value.get("mean"))
        std = _number(value.get("std", value.get("sd", value.get("stdev"))))
    else:
        return None
    if mean is None:
        if not values:
            return None
        mean = statistics.fmean(values)
    if std is None and len(values) > 1:
        std = statistics.stdev(values)
    return Cell(mean, std, tuple(values))


def _column_key(name: str) -> tuple[int, str]:
    short = name.split("/")[-1]
    return (_COLUMN_ORDER.index(short) if short in _COLUMN_ORDER else len(_COLUMN_ORDER), name)


def read_results(path: Path) -> ResultsTable | None:
    """A results.json as a table, or None when nothing in it looks like per-row metrics.

    Accepted layouts: `{"rows": {name: entry}}`, `{"rows": [entry with "name"]}`, the same
    under "results", or the mapping/list at the top. An entry holds its metrics directly or
    under "metrics" (or "test"); nested groups such as {"test": {...}, "train": {...}} are
    flattened to "test/<metric>"."""
    data = _read_json(path)
    if data is None:
        return None
    rows_data: Any = data
    if isinstance(data, Mapping):
        for key in ("rows", "results", "table"):
            if key in data:
                rows_data = data[key]
                break
    entries: list[tuple[str, Any]] = []
    if isinstance(rows_data, Mapping):
        entries = [(str(k), v) for k, v in rows_data.items() if isinstance(v, Mapping)]
    elif isinstance(rows_data, list):
        for i, entry in enumerate(rows_data):
            if isinstance(entry, Mapping):
                name = next((str(entry[k]) for k in _NAME_KEYS if isinstance(entry.get(k), (str, int))), f"row {i + 1}")
                if entry.get("evaluated_with_experts") is True:  # not expert-free: say so next to its numbers
                    name += " (evaluated with experts)"
                entries.append((name, entry))
    rows: list[tuple[str, dict[str, Cell]]] = []
    for name, entry in entries:
        metrics = entry.get("metrics", entry)
        cells: dict[str, Cell] = {}
        _collect(metrics, "", cells)
        if cells:
            rows.append((name, cells))
    if not rows:
        return None
    columns = sorted({c for _, cells in rows for c in cells}, key=_column_key)
    return ResultsTable(path, columns, rows)


def _collect(metrics: Any, prefix: str, cells: dict[str, Cell], depth: int = 0) -> None:
    if not isinstance(metrics, Mapping):
        return
    for key, value in metrics.items():
        if key in _META_KEYS and not prefix:
            continue
        cell = _cell(value)
        if cell is not None:
            cells[prefix + str(key)] = cell
        elif isinstance(value, Mapping) and depth < 2:  # a group of metrics, e.g. "test": {...}
            _collect(value, f"{prefix}{key}/", cells, depth + 1)
