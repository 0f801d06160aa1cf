"""Re-export, kept for one release: the expert pool's sections live in `eapo.schema.experts`."""

from eapo.schema.experts import EXPERT_KINDS, MEMBER_TYPES, ExpertMemberConfig, ExpertsConfig  # re-export: the old path

__all__ = ["EXPERT_KINDS", "MEMBER_TYPES", "ExpertMemberConfig", "ExpertsConfig"]
