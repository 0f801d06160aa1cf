"""The expert-free lock at the level of text: no decoded policy text may contain a forbidden
string (the consult tags), whatever tokens spell it.

Why not ban the ids of `encode("<consult>")`: a real BPE spells the same text many ways.
With Qwen2's vocabulary `<consult>` is `<`, `consult`, `>` on its own, but `.<`, ` <`, `><`
and `<c` are single tokens too, so a policy writes `.<consult>` through ids that never hold
the banned sequence (61 distinct id sequences decode to `<consult>`; a random-init Qwen2
model consulted on every turn under the old ban). Here a next token is banned when the
text would contain the string once that token is appended, so the ban holds for every
tokenization.

How, cheaply: the text before the token never contains a forbidden string (the ban held
so far), so an occurrence completed by token `t` with text `w` either lies inside `w`, or
starts in the last `len(s) - 1` characters of the text and `w` starts with its remainder.
Per string `s` and split `k` (`1 <= k < len(s)`) the ids whose text starts with `s[k:]`
are precomputed once per tokenizer; at each step a row only checks which prefixes of `s`
its tail ends with. Token texts are read in context (`decode([anchor, t])` minus the
anchor), so a SentencePiece token's leading space is kept as it appears mid-text.

Text means `decode(skip_special_tokens=True)`, the text the parser reads: special tokens
contribute nothing and cannot hide a tag. Not covered: a forbidden string that is itself
split by a special token's own visible text (special tokens are skipped, as in the parser).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

_ANCHOR_TEXT = "a"


def token_texts(tokenizer: Any) -> list[str]:
    """The text each id adds when it follows ordinary text (index = id; special tokens '')."""
    anchor = tokenizer.encode(_ANCHOR_TEXT, add_special_tokens=False)
    base = tokenizer.decode(anchor, skip_special_tokens=True)
    special = set(getattr(tokenizer, "all_special_ids", ()) or ())
    n = len(tokenizer)
    pairs = [anchor + [i] for i in range(n)]
    texts = tokenizer.batch_decode(pairs, skip_special_tokens=True)
    out = []
    for i, t in enumerate(texts):
        out.append("" if i in special or not t.startswith(base) else t[len(base):])
    return out


class TextBan:
    """Which next tokens would make the text contain one of `strings`.

    `banned(tail)` takes the text written so far (only its last `window` characters
    matter) and returns the ids to ban, as a sorted tuple.
    """

    def __init__(self, tokenizer: Any, strings: Sequence[str]) -> None:
        self.strings = tuple(s for s in dict.fromkeys(strings) if s)
        self.texts = token_texts(tokenizer)
        self.window = max((len(s) for s in self.strings), default=1) - 1
        always: set[int] = set()
        # (prefix s[:k], ids whose text starts with s[k:])
        self._completions: list[tuple[str, tuple[int, ...]]] = []
        for s in self.strings:
            rests = {k: s[k:] for k in range(1, len(s))}
            starts: dict[int, list[int]] = {k: [] for k in rests}
            for i, w in enumerate(self.texts):
                if not w:
                    continue
                if s in w:
                    always.add(i)
                    continue
                for k, rest in rests.items():
                    if w.startswith(rest):
                        starts[k].append(i)
            self._completions += [(s[:k], tuple(ids)) for k, ids in starts.items() if ids]
        self.always = tuple(sorted(always))

    def tail(self, ids: Sequence[int]) -> str:
        """The last `window` characters of the text of `ids` (enough to decide a ban)."""
        parts: list[str] = []
        size = 0
        for i in reversed(ids):
            w = self.texts[i] if 0 <= i < len(self.texts) else ""
            if w:
                parts.append(w)
                size += len(w)
                if size >= self.window:
                    break
        return self.clip("".join(reversed(parts)))

    def clip(self, text: str) -> str:
        """The part of `text` a ban depends on: its last `window` characters."""
        return text[max(0, len(text) - self.window):] if self.window else ""

    def completing(self, tail: str) -> set[int]:
        """Ids that would complete a string begun at the end of `tail` (not `always`)."""
        ids: set[int] = set()
        for prefix, completing in self._completions:
            if tail.endswith(prefix):
                ids.update(completing)
        return ids

    def banned(self, tail: str) -> tuple[int, ...]:
        return tuple(sorted(self.completing(tail).union(self.always)))

    def contains(self, text: str) -> str | None:
        """The first forbidden string found in `text`, if any (a check on what was written)."""
        return next((s for s in self.strings if s in text), None)


class TextBanProcessor:
    """A transformers logits processor applying a `TextBan` to every row at every step.

    Rows are read as the whole sequence so far (context and generated ids), so a tag that
    would begin at the end of the context (an earlier segment of the same turn) is caught.
    """

    def __init__(self, ban: TextBan) -> None:
        self.ban = ban
        self._always = torch.tensor(ban.always, dtype=torch.long)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        # input_ids (B, T), scores (B, V); V may exceed len(tokenizer) (padded embeddings)
        scores = scores.clone()
        if len(self._always):
            scores[:, self._always.to(scores.device)] = -float("inf")
        for b, row in enumerate(input_ids.tolist()):
            extra = self.ban.completing(self.ban.tail(row))
            if extra:
                scores[b, torch.tensor(sorted(extra), dtype=torch.long, device=scores.device)] = -float("inf")
        return scores


class BanIds:
    """A logits processor banning fixed ids at every position (`SamplingParams.banned_ids`)."""

    def __init__(self, ids: Sequence[int]) -> None:
        self.ids = torch.tensor(sorted(set(ids)), dtype=torch.long)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = scores.clone()
        scores[:, self.ids.to(scores.device)] = -float("inf")
        return scores


def first_breach(ban: TextBan, context: Sequence[int], ids: Sequence[int]) -> int | None:
    """Index of the first id in `ids` whose text completes a forbidden string (after
    `context`), or None: how a backend that cannot ban text finds what slipped through."""
    running = ban.tail(context)
    for j, t in enumerate(ids):
        w = ban.texts[t] if 0 <= t < len(ban.texts) else ""
        if w and ban.contains(running + w):
            return j
        running = ban.clip(running + w)
    return None


def hold(generate: Any, ban: TextBan, contexts: list[list[int]], limits: list[int], params: Any,
         gens: list[Any]) -> list[Any]:
    """Make generations from a backend whose own ban is token-level (vLLM's `bad_words`)
    obey the text-level ban exactly. Where a row wrote a forbidden string, it is cut before
    the token that completed it, that one position is sampled again with every completing
    id banned (`params.banned_ids`), and the row goes on from there, as often as needed
    within its token limit. Each kept token is drawn from the distribution the HF
    backend's processor samples from, so both backends hold the lock the same way; only
    rows that slipped cost extra calls.

    `generate(contexts, limits, params)` is the backend's own call; `gens` its first result.
    """
    import dataclasses

    out = list(gens)
    for i, gen in enumerate(gens):
        ids, lps, finish = list(gen.ids), list(gen.logprobs), gen.finish
        resampled = 0
        while (j := first_breach(ban, contexts[i], ids)) is not None:
            resampled += 1
            ids, lps = ids[:j], lps[:j]
            ctx = contexts[i] + ids
            g = generate([ctx], [1], dataclasses.replace(params, banned_ids=ban.banned(ban.tail(ctx))))[0]
            ids, lps, finish = ids + g.ids, lps + g.logprobs, g.finish
            room = limits[i] - len(ids)
            if g.finish != "length" or room <= 0:
                break
            rest = generate([contexts[i] + ids], [room], params)[0]
            ids, lps, finish = ids + rest.ids, lps + rest.logprobs, rest.finish
        if resampled:
            out[i] = type(gen)(ids=ids, logprobs=lps, finish=finish, meta={**gen.meta, "lock_resampled": resampled})
    return out
