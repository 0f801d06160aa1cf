"""From a character of decoded text back to the token that holds it.

Why: the protocol is text (tags are strings to the parser), but the mask and the
log-probs are per token. With a real BPE a tag is several tokens and its edges merge with
the neighbours (Qwen2: `.<`, ` <`, `></` are single tokens), so the ids of
`encode("<consult>")` need not appear in a completion that plainly contains the tag; the
only reliable way to find the tag is in the decoded text, then map its offset back.

The map decodes prefixes (`decode(ids[:j])`, special tokens kept, so offsets refer to the
same text the caller searched) and bisects on their length: O(log n) decodes. A prefix
ending inside a multi-byte character decodes to a replacement character, which can make
the prefix lengths non-monotone by a character at such a boundary; the token found is then
the one that completes that character, which is the token holding it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def decode_all(tokenizer: Any, ids: Sequence[int]) -> str:
    """The text `token_at_char` offsets refer to: every token decoded, special ones kept."""
    return tokenizer.decode(list(ids), skip_special_tokens=False)


def token_at_char(tokenizer: Any, ids: Sequence[int], offset: int) -> int:
    """Index of the token of `ids` whose text holds character `offset` of `decode_all(ids)`:
    the smallest `j` with `len(decode(ids[:j + 1])) > offset`. `len(ids)` when `offset` is
    at or past the end of the text. Raises ValueError on a negative offset."""
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    ids = list(ids)
    lo, hi = 0, len(ids)  # invariant: the answer is in [lo, hi]
    while lo < hi:
        mid = (lo + hi) // 2
        if len(decode_all(tokenizer, ids[: mid + 1])) > offset:
            hi = mid
        else:
            lo = mid + 1
    return lo
