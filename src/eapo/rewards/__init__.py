"""Rewards: scorers (answer vs gold) and the composite EAPO reward."""

from eapo.rewards.reward import RewardConfig, composite_reward
from eapo.rewards.scorers import SCORERS, ScoreResult

# Registering every scorer with the package, so a name from configuration always resolves
# (math-verify itself is imported only when a math answer is first scored).
from eapo.rewards import math as _math  # noqa: E402,F401
from eapo.rewards import text as _text  # noqa: E402,F401

__all__ = ["SCORERS", "RewardConfig", "ScoreResult", "composite_reward"]
