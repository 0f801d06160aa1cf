"""The output folder of one evaluation, written so that an interrupted run can continue.

Why a store of its own: an evaluation of a large model over a benchmark runs for hours, and
losing it to a crash, a pre-empted machine or Ctrl-C must cost only the work in flight.
Three files:

    eval_config.json   what was evaluated and how (model, benchmark data, n, sampling, ...);
                       written before the first item, never changed afterwards
    items.jsonl        one JSON object per line (per sampled or greedy episode), appended a
                       block of problems at a time
    summary.json       written when every requested problem is complete

Rules that make continuing safe:
  - Appends are one `write` of whole lines followed by `fsync`, so a crash leaves at most
    one torn line, at the end. A last line without its newline, or one that is not JSON,
    is dropped on the next start (and said so). A bad line anywhere else is corruption
    and stops the run with its line number: dropping it silently would bias the summary.
  - The configuration of a new run must equal the saved one key for key; otherwise the run
    is refused with the keys that differ, rather than mixing two evaluations in one file.
    Which keys belong to the identity is the caller's decision (`eapo.evaluation.bench_eval`
    leaves out `limit` and `ks`, which do not change any item).
  - Keeping a subset of the items (`rewrite`) goes through a temporary file and a rename.

Not here: what an item is or when a problem is complete (the caller decides); locking
against two processes writing the same folder at once (do not do that).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CONFIG_FILE = "eval_config.json"
ITEMS_FILE = "items.jsonl"
SUMMARY_FILE = "summary.json"


class ResumeError(ValueError):
    """The folder holds an evaluation that this run must not continue (or cannot read)."""


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value))


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """`key: saved -> current` for every top-level key whose value differs.

    >>> config_differences({"n": 4, "seed": 0}, {"n": 8, "seed": 0})
    ['n: 4 -> 8']
    """
    out = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key, "<absent>"), current.get(key, "<absent>")
        if a != b:
            sa, sb = json.dumps(a), json.dumps(b)
            out.append(f"{key}: {sa[:120]} -> {sb[:120]}")
    return out


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ItemStore:
    """`eval_config.json` + `items.jsonl` + `summary.json` in `folder`.

    `open()` checks (or writes) the configuration and returns the records already there;
    `append()` adds a block; `rewrite()` keeps only the given records."""

    def __init__(self, folder: str | os.PathLike[str], identity: Mapping[str, Any]) -> None:
        self.folder = Path(folder)
        self.identity = _plain(dict(identity))
        self.config_path = self.folder / CONFIG_FILE
        self.items_path = self.folder / ITEMS_FILE
        self.summary_path = self.folder / SUMMARY_FILE
        self.dropped_torn_line = False

    def open(self, *, overwrite: bool = False) -> list[dict[str, Any]]:
        """The complete records already in the folder (none for a new one).

        With `overwrite`, an earlier evaluation in the folder is deleted first. Raises
        `ResumeError` when the folder holds another evaluation, or items without a
        configuration, or a corrupt line."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OSError(f"cannot create the output folder {self.folder}: {e.strerror or e}") from e
        if overwrite:
            for path in (self.items_path, self.summary_path, self.config_path):
                path.unlink(missing_ok=True)
        if self.config_path.exists():
            try:
                saved = json.loads(self.config_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as e:
                raise ResumeError(f"{self.config_path} is unreadable ({e}); use another --out, or --overwrite") from e
            diff = config_differences(saved, self.identity)
            if diff:
                raise ResumeError(
                    f"{self.folder} holds an evaluation with a different configuration; continuing it would mix "
                    f"two evaluations in one file. Differences (saved -> now): {'; '.join(diff)}. "
                    "Use the same settings to continue it, another --out, or --overwrite to start over.")
            return self._read_items()
        if self.items_path.exists() and self.items_path.stat().st_size > 0:
            raise ResumeError(f"{self.items_path} exists but {CONFIG_FILE} does not, so it cannot be checked that it "
                              "belongs to this evaluation; use another --out, or --overwrite to start over")
        _atomic_write(self.config_path, json.dumps(self.identity, indent=2) + "\n")
        return []

    def _read_items(self) -> list[dict[str, Any]]:
        if not self.items_path.exists():
            return []
        data = self.items_path.read_bytes()
        lines = data.split(b"\n")
        torn = lines.pop()  # b"" when the file ends with a newline, else a line cut short
        records: list[dict[str, Any]] = []
        self.dropped_torn_line = bool(torn.strip())
        for lineno, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
                if not isinstance(rec, dict):
                    raise ValueError("not a JSON object")
            except ValueError as e:
                if lineno == len(lines) and not self.dropped_torn_line:
                    self.dropped_torn_line = True  # the last line, half written (e.g. zeros after a crash)
                    continue
                raise ResumeError(f"{self.items_path}:{lineno}: corrupt line ({e}); not the last line, so it "
                                  "is not a half-written append. Fix or remove it, or --overwrite") from None
            records.append(rec)
        if self.dropped_torn_line:
            log.warning("%s: dropped a half-written last line (an interrupted write); its block is run again",
                        self.items_path)
        return records

    def rewrite(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Replace `items.jsonl` by exactly `records` (atomically)."""
        _atomic_write(self.items_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        self.dropped_torn_line = False

    def append(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append `records` with one write, then flush them to disk."""
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        if not text:
            return
        with self.items_path.open("a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        _atomic_write(self.summary_path, json.dumps(summary, indent=2) + "\n")

    def clear_summary(self) -> None:
        """Remove a summary that no longer covers the items (more are about to be added)."""
        self.summary_path.unlink(missing_ok=True)
