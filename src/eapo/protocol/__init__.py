"""The consultation protocol: tag strings, the parser from policy text to an action, and
the renderer of observations (expert replies, refusals, notices)."""

from eapo.protocol.tags import Tags

__all__ = ["Tags"]
