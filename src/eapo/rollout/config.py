"""Re-export, kept for one release: the `rollout` section lives in `eapo.schema.rollout`."""

from eapo.schema.rollout import BARE_REFUSALS, CONSULT_MODES, CONSULT_STYLES, RolloutConfig  # re-export: the old path

__all__ = ["BARE_REFUSALS", "CONSULT_MODES", "CONSULT_STYLES", "ROLLOUT_EXPERTS", "RolloutConfig"]

# The experts `eapo rollout --expert` offers; here, not in rollout/demo.py, so the command
# can refuse a wrong name before it imports torch.
ROLLOUT_EXPERTS = ("oracle", "noisy-oracle", "model")
