"""The expert-assisted multi-turn rollout: generation backends and the engine that keeps
the exact token record (ids, loss mask, sampler log-probs) of every episode."""

from eapo.rollout.backend import Generation, GenerationBackend, SamplingParams
from eapo.schema import RolloutConfig

__all__ = ["Generation", "GenerationBackend", "RolloutConfig", "SamplingParams"]
