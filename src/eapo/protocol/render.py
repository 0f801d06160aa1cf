"""Observation text: what the engine appends after a policy action (EAPO.md §1).

Observations are tokenized on their own and appended as ids after the policy's tokens
(EAPO.md §8, token drift), so every function here returns a complete string and none
re-renders earlier text. Their tokens carry loss mask 0; that is the engine's business.

Expert text is untrusted: a reply could hold `<answer>` or `</consult>` and so look, to a
reader of the transcript, like an action the policy took, or close a block the policy
opened. `sanitize_expert_text` removes every protocol tag from it, and every renderer
applies it, so no observation can carry a tag except its own wrapper. The parser must
still read only policy text (mask 1): sanitising is a second line of defence, not the
first (EAPO.md §8, credit for the expert's words).

Texts are kept short on purpose: the tiny test models use character-level tokenizers.
"""

from __future__ import annotations

from eapo.protocol.parser import strip_tags
from eapo.protocol.tags import Tags

REFUSAL = "expert unavailable"  # a reply refused by the schedule or lost to an error
ANSWER_NOW = "answer now"  # before the last turn of the budget
EMPTY_CONSULT = "no question asked"  # a consultation with no valid query
CONSULT_LOCKED = "experts unavailable"  # consulting is off (evaluation with rho = 0)


def reserved_strings(tags: Tags) -> tuple[str, ...]:
    """Every tag string an observation must not contain: the policy's tags, the notice
    tags, the expert closing tag and the fixed part of the expert opening tag before
    `{id}` (or after it, when nothing comes before)."""
    expert_fixed = [p for p in tags.expert_open.split("{id}") if p][:1]
    candidates = (*tags.policy_tags, *expert_fixed, tags.expert_close, tags.notice_open, tags.notice_close)
    return tuple(dict.fromkeys(t for t in candidates if t))


def sanitize_expert_text(text: str, tags: Tags) -> str:
    """`text` without any reserved tag string (see `reserved_strings`), repeated until
    stable so a removal cannot leave a new tag behind (`<ans<answer>wer>`)."""
    return strip_tags(text, reserved_strings(tags))


def expert_open(member: int, tags: Tags) -> str:
    # str.replace, not str.format: a custom tag may hold other braces.
    return tags.expert_open.replace("{id}", str(member))


def render_reply(member: int, text: str, tags: Tags) -> str:
    """An accepted reply of pool member `member`: `<expert id="0">66</expert>`."""
    return f"{expert_open(member, tags)}{sanitize_expert_text(text, tags).strip()}{tags.expert_close}"


def render_refusal(member: int, tags: Tags, text: str = REFUSAL) -> str:
    """The fixed observation for a refused or failed call, in the same wrapper as a reply,
    so the policy sees which of its queries went unanswered."""
    return render_reply(member, text, tags)


def render_notice(text: str, tags: Tags) -> str:
    """A system notice, e.g. `<notice>answer now</notice>`."""
    return f"{tags.notice_open}{sanitize_expert_text(text, tags).strip()}{tags.notice_close}"


def render_observation(parts: list[str]) -> str:
    """Join the rendered parts of one turn: one part per line, with a newline before the
    first (the policy's text ends right at its closing tag) and after the last (so the
    policy's next text starts on a fresh line). No parts give the empty string.

    >>> render_observation(['<expert id="0">a</expert>', '<expert id="1">b</expert>'])
    '\\n<expert id="0">a</expert>\\n<expert id="1">b</expert>\\n'
    """
    if not parts:
        return ""
    return "\n" + "\n".join(parts) + "\n"
