"""The consultation protocol: tag strings, the parser from policy text to an action, and
the renderer of observations (expert replies, refusals, notices)."""

from eapo.protocol.parser import extract_boxed, normalize_query, parse_segment
from eapo.protocol.render import render_notice, render_observation, render_refusal, render_reply, sanitize_expert_text
from eapo.protocol.tags import Tags

__all__ = [
    "Tags",
    "extract_boxed",
    "normalize_query",
    "parse_segment",
    "render_notice",
    "render_observation",
    "render_refusal",
    "render_reply",
    "sanitize_expert_text",
]
