"""Rollout dumps -> the trajectory viewer's episode records.

A dump record (docs/dump-format.md) holds the token record and the turns; the viewer
wants, per turn, what the policy wrote, what it asked, what each expert answered and
whether that answer was accepted, and what the policy then saw. The per-turn text comes
from decoding the turn's slice of `completion_ids` with the run's tokenizer (the turns'
`policy_tokens` and `observation_tokens` say where each slice ends). That is exact when
the tokenizer folder is on this machine and its decoding reproduces `policy_text`; when it
is not (a hub id, a deleted cache, another machine), the episode shows `policy_text` whole
and the consults turn by turn, and says why.

Token ids, masks and log-probs stay out of the page: they would make it ten times larger
and a reader of the page does not need them (the dump has them).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["TokenizerCache", "episode_view", "load_episodes"]


class TokenizerCache:
    """Decoders by tokenizer path, loaded once; None where none can be loaded offline."""

    def __init__(self) -> None:
        self._cache: dict[str, Callable[[list[int]], str] | None] = {}

    def get(self, path: str) -> Callable[[list[int]], str] | None:
        if path not in self._cache:
            self._cache[path] = self._load(path)
        return self._cache[path]

    @staticmethod
    def _load(path: str) -> Callable[[list[int]], str] | None:
        file = Path(path) / "tokenizer.json"
        if not file.is_file():  # a hub id or a folder that is gone: no network here
            return None
        try:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(file))
        except Exception as e:  # a tokenizer the library cannot read: fall back, say why
            log.warning("tokenizer %s unreadable (%s): episodes shown without per-turn text", file, e)
            return None
        return lambda ids: tok.decode(ids, skip_special_tokens=False)


def _segments(rec: dict[str, Any], decode: Callable[[list[int]], str] | None) -> list[dict[str, Any]] | None:
    """Per-turn policy and observation text, or None when it cannot be decoded exactly."""
    if decode is None:
        return None
    ids = rec.get("completion_ids") or []
    pos, out = 0, []
    for turn in rec.get("turns", []):
        p, o = int(turn.get("policy_tokens", 0)), int(turn.get("observation_tokens", 0))
        out.append({"p": decode(ids[pos:pos + p]), "obs": decode(ids[pos + p:pos + p + o]) if o else ""})
        pos += p + o
    if pos != len(ids) or "".join(s["p"] for s in out) != rec.get("policy_text", ""):
        return None  # the tokenizer here is not the one that wrote the dump
    return out


def episode_view(rec: dict[str, Any], run: int, decode: Callable[[list[int]], str] | None) -> dict[str, Any]:
    """One dump record as the viewer's record (short keys: the page holds thousands)."""
    turns = rec.get("turns", [])
    texts = _segments(rec, decode)
    segs = []
    accepted = refused = 0
    for i, turn in enumerate(turns):
        calls = []
        for c in turn.get("calls", []):
            ok = bool(c.get("accepted"))
            accepted += ok
            refused += not ok
            calls.append({"q": c.get("query", ""), "e": c.get("expert", ""), "ok": ok, "why": c.get("reason", ""),
                          "rho": c.get("rho"), "draw": c.get("draw"), "r": c.get("reply", "")})
        seg = {"a": turn.get("action", ""), "q": list(turn.get("queries", [])), "calls": calls,
               "n": turn.get("notice"), "iss": list(turn.get("issues", [])), "drop": turn.get("dropped_queries", 0)}
        if texts is not None:
            seg.update(texts[i])
        segs.append(seg)
    view = {
        "run": run,
        "step": int(rec.get("step", 0)),
        "uid": rec.get("uid", ""),
        "pid": rec.get("problem_id", ""),
        "question": rec.get("question", ""),
        "gold": rec.get("gold"),
        "answer": rec.get("answer"),
        "score": float(rec.get("score", 0.0)),
        "reward": float(rec.get("reward", 0.0)),
        "penalty": float(rec.get("penalty", 0.0)),
        "wf": bool(rec.get("well_formed", False)),
        "stop": rec.get("stop_reason", ""),
        "turns": len(turns),
        "consults": sum(1 for t in turns if t.get("action") == "consult"),
        "acc": accepted,
        "ref": refused,
        "segs": segs,
    }
    if texts is None:
        view["ptext"] = rec.get("policy_text", "")
        view["why_whole"] = f"per-turn text needs the tokenizer at {rec.get('tokenizer_path', '?')}, not readable here"
    return view


def _spread(items: list[Any], limit: int) -> list[Any]:
    """At most `limit` items, evenly spaced, first and last kept (all steps stay visible)."""
    if len(items) <= limit:
        return items
    if limit <= 1:
        return items[:limit]
    return [items[round(i * (len(items) - 1) / (limit - 1))] for i in range(limit)]


def load_episodes(dumps_by_run: Sequence[Sequence[Path]], *, max_per_run: int = 2000,
                  tokenizers: TokenizerCache | None = None) -> list[dict[str, Any]]:
    """Viewer records of every run's dumps (run = index in `dumps_by_run`), at most
    `max_per_run` per run, taken evenly across the dump files so every dumped step shows."""
    tokenizers = tokenizers or TokenizerCache()
    out: list[dict[str, Any]] = []
    for run, files in enumerate(dumps_by_run):
        per_file = max(1, max_per_run // max(1, len(files)))
        for path in files:
            records = []
            for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    log.warning("%s:%d: not JSON, skipped", path, lineno)
            for rec in _spread(records, per_file):
                out.append(episode_view(rec, run, tokenizers.get(str(rec.get("tokenizer_path", "")))))
    return out
