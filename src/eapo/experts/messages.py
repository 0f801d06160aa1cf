"""How an expert request travels as an OpenAI-style chat: the message format, both ways.

A network expert sees only what the chat messages carry, so the problem, the policy's
optional transcript and its query (EAPO.md §1, "what the expert sees") are written into
one user message with fixed section headers, after the expert's own system prompt:

    system:  <system prompt>
    user:    Problem:
             <the original problem x>

             Work so far:            (only when the request carries a transcript)
             <the policy's text so far>

             Question:
             <the query q_{t,i}>

This is the same user text the local Hugging Face expert renders through its chat
template, so a model behind `eapo serve-expert` or vLLM reads what a local one reads.
`parse_user_message` is the inverse, used by the built-in oracle server to recover the
query. What is never sent: the gold answer (`ExpertRequest.gold`), which only an
in-process oracle may read, and the request key (it seeds sampling through `seed`).

Parsing rule: the text must start with `Problem:` or `Question:`; the query is everything
after the *last* `Question:` header, so a problem or transcript that quotes the header is
fine, but a query containing a blank line followed by `Question:` is cut there. Text in
any other form is taken whole as the query (so `curl` with a bare question works).
"""

from __future__ import annotations

from dataclasses import dataclass

from eapo.types import ExpertRequest

__all__ = ["DEFAULT_SYSTEM_PROMPT", "ParsedQuery", "build_messages", "parse_messages", "parse_user_message",
           "user_text"]

DEFAULT_SYSTEM_PROMPT = (
    "You are an expert consulted by a student who is solving a problem. "
    "Answer the student's question directly, correctly and briefly."
)

_PROBLEM = "Problem:\n"
_WORK = "\n\nWork so far:\n"
_QUESTION = "Question:\n"
_SEP_QUESTION = "\n\n" + _QUESTION


@dataclass(frozen=True)
class ParsedQuery:
    """What a server recovered from a chat: `problem` and `transcript` are None when the
    message did not carry them."""

    query: str
    problem: str | None = None
    transcript: str | None = None

    def as_request(self) -> ExpertRequest:
        return ExpertRequest(problem=self.problem or "", query=self.query, transcript=self.transcript)


def user_text(request: ExpertRequest, *, include_problem: bool = True, include_transcript: bool = True) -> str:
    """The user message for `request` (see the module docstring).

    >>> user_text(ExpertRequest(problem="12+5-3", query="12+5"))
    'Problem:\\n12+5-3\\n\\nQuestion:\\n12+5'
    """
    parts = []
    if include_problem:
        parts.append(_PROBLEM + request.problem)
    if include_transcript and request.transcript:
        parts.append(_WORK.lstrip("\n") + request.transcript)
    parts.append(_QUESTION + request.query)
    return "\n\n".join(parts)


def build_messages(
    request: ExpertRequest,
    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
    *,
    include_problem: bool = True,
    include_transcript: bool = True,
) -> list[dict[str, str]]:
    """The chat messages an OpenAI-compatible expert is sent for `request`; no system
    message when `system_prompt` is None or empty."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": user_text(request, include_problem=include_problem,
                                                          include_transcript=include_transcript)})
    return messages


def parse_user_message(text: str) -> ParsedQuery:
    """Inverse of `user_text`.

    >>> parse_user_message('Problem:\\n12+5-3\\n\\nQuestion:\\n12+5')
    ParsedQuery(query='12+5', problem='12+5-3', transcript=None)
    >>> parse_user_message('what is 2+2?')
    ParsedQuery(query='what is 2+2?', problem=None, transcript=None)
    """
    if text.startswith(_QUESTION):
        return ParsedQuery(query=text[len(_QUESTION):])
    body = text[len(_PROBLEM):] if text.startswith(_PROBLEM) else ""
    cut = body.rfind(_SEP_QUESTION)
    if cut < 0:
        return ParsedQuery(query=text.strip())
    head, query = body[:cut], body[cut + len(_SEP_QUESTION):]
    work = head.find(_WORK)
    if work >= 0:
        return ParsedQuery(query=query, problem=head[:work], transcript=head[work + len(_WORK):])
    return ParsedQuery(query=query, problem=head)


def parse_messages(messages: list[dict[str, object]]) -> ParsedQuery:
    """The query of the last user message (text parts joined when content is a list)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return parse_user_message(content_text(message.get("content")))
    raise ValueError("the chat has no user message")


def content_text(content: object) -> str:
    """A message's text: a string, or the `text` of each text part of a list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    raise ValueError(f"message content must be a string or a list of parts, got {type(content).__name__}")
