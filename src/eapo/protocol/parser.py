"""From the policy's own text to one action (EAPO.md §1).

Why a parser of its own: the policy is a model under training, so its text is anything at
all, and the reward depends on reading it the same way every time. Hence the parser never
raises on text, never guesses beyond the rules below, and records every deviation in
`ParsedSegment.issues` instead of hiding it, so malformed habits show up in the metrics.

The rules, in the order they apply:

- The segment ends at the first closing action tag (`consult_close` or `answer_close`,
  whichever ends first): generation stops there, so text after it is ignored
  (`text_after_action`).
- An answer is the text between the last `answer_open` before the close and the close.
- A consultation holds one query per `query_open ... query_close` pair; a `query_open`
  also ends a preceding unclosed query. Empty queries are dropped, extra ones beyond
  `max_queries` are cut and counted in `dropped_queries`, and tag strings never reach a
  query (they are removed and reported as `nested_tags`).
- Without a closing tag the segment is think-on, unless boxed answers are allowed, the
  text is final (EOS, not a length stop) and it holds a complete `\\boxed{...}` (the last
  one wins).

`well_formed` is False as soon as an issue other than those in `BENIGN_ISSUES` is found.
The parser reads only the policy's text: the caller must never pass observation text
(expert replies, notices), or an answer written by an expert could be credited to the
policy (EAPO.md §8). What the engine does with an action (ending on an answer, sending the
queries, answering an empty consultation with a notice) is not decided here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from eapo.protocol.tags import Tags
from eapo.types import ActionKind, ParsedSegment

# Issues that describe the text without making its action malformed: the backend may
# overshoot a stop string by a few characters, which is not the policy's fault.
BENIGN_ISSUES = frozenset({"text_after_action"})

# One alternation so a single left-to-right pass sees boxes and braces in order.
_BOXED_OR_BRACE = re.compile(r"\\boxed\{|[{}]")

# Stripped from the end of a query before it keys an acceptance draw ("what is 2+2?" and
# "What is 2+2" are the same question). Brackets are kept: they carry meaning in maths.
_TRAILING = " .,;:!?\u3002\u3001"


def strip_tags(text: str, strings: Iterable[str]) -> str:
    """Remove every occurrence of `strings` from `text`, repeating until none is left.

    One pass is not enough: removing `<answer>` from `<ans<answer>wer>` creates a new
    `<answer>`. Each removal shortens the text, so the loop ends. Empty strings are ignored.

    >>> strip_tags("<ans<answer>wer>5", ["<answer>"])
    '5'
    """
    needles = [s for s in dict.fromkeys(strings) if s]
    while True:
        found = [s for s in needles if s in text]
        if not found:
            return text
        for s in found:
            text = text.replace(s, "")


def extract_boxed(text: str) -> str | None:
    r"""Content of the last complete `\boxed{...}` in `text` (stripped), or None.

    "Last" means the one that opens last among those whose braces close, so an unfinished
    box at the end does not hide an earlier complete one. Braces are counted plainly,
    nested ones included.

    >>> print(extract_boxed(r"so x = \boxed{\frac{1}{2}}."))
    \frac{1}{2}
    >>> extract_boxed(r"\boxed{3} then \boxed{4")
    '3'
    """
    best: tuple[int, int] | None = None
    stack: list[int] = []  # content start for a box, -1 for a plain brace
    for m in _BOXED_OR_BRACE.finditer(text):
        token = m.group()
        if token == "}":
            if stack:
                start = stack.pop()
                if start >= 0 and (best is None or start > best[0]):
                    best = (start, m.start())
        else:
            stack.append(m.end() if token != "{" else -1)
    return None if best is None else text[best[0] : best[1]].strip()


def normalize_query(q: str) -> str:
    """Key of a question for acceptance draws: trivial rewrites of the same question give
    the same key, so re-asking a refused question cannot beat the coin (EAPO.md §8).

    Unicode compatibility forms are folded (NFKC), case is folded, runs of whitespace
    become one space, and trailing punctuation and spaces are dropped.

    >>> normalize_query("  What is   2+2 ?\\n")
    'what is 2+2'
    """
    s = q
    for _ in range(4):  # case folding can denormalise; a few rounds reach a fixed point
        t = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", s).casefold())
        t = " ".join(t.split()).rstrip(_TRAILING)
        if t == s:
            break
        s = t
    return s


def parse_segment(text: str, tags: Tags, max_queries: int, *, final: bool = True) -> ParsedSegment:
    """Read the action at the end of `text`, the policy's text since the last observation.

    `text` may join several think-on turns, so a tag split across turns is whole here.
    `final=False` says generation stopped on a length limit and will continue: a boxed
    answer then does not count yet, since a policy may box intermediate results while it
    thinks; only the text it ends (EOS) is read for a box. Tags are unaffected.
    Never raises on any string; raises ValueError only for a negative `max_queries`.
    With `max_queries == 0` every valid query is counted in `dropped_queries`.
    """
    if max_queries < 0:
        raise ValueError(f"max_queries must be >= 0, got {max_queries}")
    close = _first_close(text, tags)
    if close is None:
        return _parse_open_end(text, tags, boxed=final and tags.allow_boxed)
    tag, pos = close
    trailing = ["text_after_action"] if text[pos + len(tag) :].strip() else []
    head = text[:pos]
    if tag == tags.answer_close:
        return _parse_answer(head, tags, trailing)
    return _parse_consult(head, tags, max_queries, trailing)


def _first_close(text: str, tags: Tags) -> tuple[str, int] | None:
    """The closing action tag that ends first (where generation stops), and its start.
    On a tie (one tag a suffix of the other) the longer one wins."""
    best: tuple[int, int, str] | None = None  # (end, -length, tag) sorts as wanted
    for tag in (tags.consult_close, tags.answer_close):
        pos = text.find(tag)
        if pos >= 0:
            key = (pos + len(tag), -len(tag), tag)
            if best is None or key < best:
                best = key
    if best is None:
        return None
    end, neg_len, tag = best
    return tag, end + neg_len


def _parse_answer(head: str, tags: Tags, trailing: list[str]) -> ParsedSegment:
    start = head.rfind(tags.answer_open)
    if start < 0:
        return _segment(ActionKind.ANSWER, ["unopened_answer", *trailing])
    before, content = head[:start], head[start + len(tags.answer_open) :]
    found: list[str] = []
    # No close tag precedes this one, so any opening tag before it is still open: the
    # answer sits inside another block. Inside the content, only these can appear.
    if tags.answer_open in before or tags.consult_open in before:
        found.append("nested_tags")
    if any(t in content for t in (tags.consult_open, tags.query_open, tags.query_close)):
        found.append("nested_tags")
    answer = content.strip()
    if not answer:
        return _segment(ActionKind.ANSWER, [*found, "empty_answer", *trailing])
    return _segment(ActionKind.ANSWER, found + trailing, answer=answer)


def _parse_consult(head: str, tags: Tags, max_queries: int, trailing: list[str]) -> ParsedSegment:
    start = head.rfind(tags.consult_open)
    if start < 0:
        return _segment(ActionKind.CONSULT, ["unopened_consult", *trailing])
    before, content = head[:start], head[start + len(tags.consult_open) :]
    found: list[str] = []
    if tags.consult_open in before or tags.answer_open in before or tags.answer_open in content:
        found.append("nested_tags")
    valid = _queries(content, tags, found)
    kept = tuple(valid[:max_queries])
    if not valid:
        found.append("empty_consult")
    return _segment(ActionKind.CONSULT, found + trailing, queries=kept, dropped=len(valid) - len(kept))


def _queries(content: str, tags: Tags, issues: list[str]) -> list[str]:
    """Valid queries of a consultation's content, in order, before the cut to K."""
    qo, qc = tags.query_open, tags.query_close
    if qo not in content:
        raw = [content] if strip_tags(content, tags.policy_tags).strip() else []
        if raw:
            issues.append("bare_query")
    else:
        raw = []
        for piece in content.split(qo)[1:]:  # text before the first query_open is ignored
            end = piece.find(qc)
            if end < 0:
                issues.append("unclosed_query")
                raw.append(piece)
            else:
                raw.append(piece[:end])  # text between a close and the next open is ignored
    valid = []
    for r in raw:
        clean = strip_tags(r, tags.policy_tags)
        if clean != r:
            issues.append("nested_tags")
        q = clean.strip()
        if q:
            valid.append(q)
        else:
            issues.append("empty_query")
    return valid


def _parse_open_end(text: str, tags: Tags, *, boxed: bool) -> ParsedSegment:
    """No closing tag: think-on, or a boxed answer at the end of a math solution."""
    issues: list[str] = []
    # With no close anywhere in the text, any opening action tag is unclosed.
    if tags.answer_open in text:
        issues.append("unclosed_answer")
    if tags.consult_open in text:
        issues.append("unclosed_consult")
    answer = extract_boxed(text) if boxed else None
    if answer is None:
        return _segment(ActionKind.THINK, issues)
    if not answer:
        return _segment(ActionKind.ANSWER, ["empty_answer", *issues])
    return _segment(ActionKind.ANSWER, issues, answer=answer)


def _segment(
    kind: ActionKind,
    issues: list[str],
    *,
    queries: tuple[str, ...] = (),
    dropped: int = 0,
    answer: str | None = None,
) -> ParsedSegment:
    unique = tuple(dict.fromkeys(issues))
    return ParsedSegment(
        kind=kind,
        queries=queries,
        dropped_queries=dropped,
        answer=answer,
        well_formed=all(i in BENIGN_ISSUES for i in unique),
        issues=unique,
    )
