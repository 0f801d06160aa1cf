"""An on-disk cache of expert replies, so repeated ablations do not pay twice for a call.

The key is a hash of everything that decides the reply: the model name, the exact chat
messages, the sampling parameters and the seed (`cache_key`). Where the call went (the
base URL) is deliberately not in it: replicas of one model behind different endpoints
share entries. The API key is never part of an entry or of a key.

Safe under concurrent writers (several processes of one run, or runs sharing a folder):
each entry is its own file, written to a temporary name in the same folder and moved into
place with `os.replace`, which is atomic on POSIX and Windows, so a reader sees either no
entry or a whole one, never a torn one. Two writers of one key both write a whole entry
and the last one wins; with a fixed seed both hold the same reply anyway.

What is cached: successful replies only (text and token usage, before any truncation).
A failure is never cached: it would turn one bad minute of an endpoint into a permanent
"expert unavailable". An unreadable entry (a disk error, a hand edit) is a miss, logged.
Not here: eviction or size limits (delete the folder), and cross-machine locking.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["CachedReply", "ReplyCache", "cache_key"]

_FORMAT = 1


def cache_key(model: str, messages: list[dict[str, Any]], sampling: dict[str, Any], seed: int | None) -> str:
    """A hex digest of the call's identity; key order in `sampling` does not matter.

    >>> cache_key("m", [{"role": "user", "content": "q"}], {"temperature": 0}, 1) == \\
    ...     cache_key("m", [{"role": "user", "content": "q"}], {"temperature": 0.0}, 1)
    True
    """
    payload = {"format": _FORMAT, "model": model, "messages": messages,
               "sampling": {k: _canon(v) for k, v in sampling.items()}, "seed": seed}
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _canon(value: Any) -> Any:
    # 0 and 0.0 sample the same; json writes them differently.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass(frozen=True)
class CachedReply:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ReplyCache:
    """Entries under `root/<2 hex>/<64 hex>.json`.

    >>> import tempfile
    >>> cache = ReplyCache(tempfile.mkdtemp())
    >>> cache.put("ab" * 32, CachedReply("42", 10, 2))
    >>> cache.get("ab" * 32)
    CachedReply(text='42', prompt_tokens=10, completion_tokens=2)
    >>> cache.get("cd" * 32) is None
    True
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        if len(key) < 3 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"a cache key is a lowercase hex digest, got {key!r}")
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> CachedReply | None:
        path = self.path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return CachedReply(text=str(data["text"]), prompt_tokens=int(data.get("prompt_tokens", 0)),
                               completion_tokens=int(data.get("completion_tokens", 0)))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            logger.warning("reply cache entry %s is unreadable (%s); treating it as a miss", path, e)
            return None

    def put(self, key: str, reply: CachedReply) -> None:
        """Write an entry atomically. A write that fails is logged, not raised: the cache
        must never cost the call it was meant to save."""
        path = self.path(key)
        data = {"format": _FORMAT, "text": reply.text, "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:8]}-", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(data, f, ensure_ascii=False)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as e:
            logger.warning("could not write reply cache entry %s: %s", path, e)

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("??/*.json")) if self.root.exists() else 0

    def __repr__(self) -> str:
        return f"ReplyCache({str(self.root)!r})"

