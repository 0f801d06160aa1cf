"""Tag strings of the protocol (EAPO.md §1). Every string is configurable; the defaults are
the project's suggestion. Tags are plain text to the parser; the tiny built-in tokenizer
also makes each of them a single token so generation can stop on them cheaply."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tags:
    """The protocol's strings (ours): every one configurable, distinct, without surrounding spaces."""

    consult_open: str = "<consult>"
    """Opens a consultation block (the consult action)."""
    consult_close: str = "</consult>"
    """Closes a consultation block; ends the policy's segment."""
    query_open: str = "<query>"
    """Opens one question inside a consultation block."""
    query_close: str = "</query>"
    """Closes one question."""
    answer_open: str = "<answer>"
    """Opens the answer (the answer action)."""
    answer_close: str = "</answer>"
    """Closes the answer; ends the episode."""
    expert_open: str = '<expert id="{id}">'
    """Opens an expert reply, `<expert id="i">text</expert>`; `{id}` takes the pool member index."""
    expert_close: str = "</expert>"
    """Closes an expert reply."""
    notice_open: str = "<notice>"
    """Opens a system notice (e.g. "answer now", "no question asked")."""
    notice_close: str = "</notice>"
    """Closes a system notice."""
    allow_boxed: bool = False
    """For math: also accept `\\boxed{...}` in policy text as the answer."""

    def __post_init__(self) -> None:
        names = ("consult_open", "consult_close", "query_open", "query_close", "answer_open", "answer_close")
        values = [getattr(self, n) for n in names]
        for n, v in zip(names, values):
            if not v or v != v.strip():
                raise ValueError(f"tag {n} must be a non-empty string without surrounding spaces, got {v!r}")
        if len(set(values)) != len(values):
            raise ValueError(f"protocol tags must be distinct, got {values}")
        if "{id}" not in self.expert_open:
            raise ValueError("expert_open must contain '{id}' for the pool member index")

    @property
    def stop_strings(self) -> tuple[str, ...]:
        """Strings that end a policy segment: a closed consultation or a closed answer."""
        return (self.consult_close, self.answer_close)

    @property
    def policy_tags(self) -> tuple[str, ...]:
        """Tags the policy writes (also removed from expert replies before they are shown)."""
        return (
            self.consult_open,
            self.consult_close,
            self.query_open,
            self.query_close,
            self.answer_open,
            self.answer_close,
        )

    def single_token_tags(self) -> list[str]:
        """Tag strings the built-in tokenizer adds as single tokens."""
        expert_prefix = self.expert_open.split("{id}")[0]
        return [*self.policy_tags, self.expert_close, self.notice_open, self.notice_close, expert_prefix]
