"""The expert layer: who answers the policy's consultations, and how a round of them is run.

`Expert` is the contract (an async `ask`), `ExpertPool` runs a consultation round
concurrently with routing, timeouts and failures-as-values, and the built-in experts are
a fake (tests, benchmarks), an oracle (always right), a noisy wrapper (the noisy-expert
ablation), a local Hugging Face model (also the homogeneous-expert ablation) and an
OpenAI-compatible endpoint that survives faults (`OpenAIExpert`, with an optional on-disk
`ReplyCache`). Build them from configuration with `build_expert(name, **config)`.

Importing this package must not import torch: a network expert lives here too and has
to stay light. `eapo.experts.hf` imports torch only when a model is loaded.
"""

from eapo.experts.base import (
    EXPERTS,
    BatchExpert,
    Expert,
    build_expert,
    keyed_rng,
    request_key,
    stable_hash,
    supports_batch,
)
from eapo.experts.fake import FakeBatchExpert, FakeExpert
from eapo.experts.hf import HFModelExpert
from eapo.experts.noisy import NoisyExpert, corrupt_text
from eapo.experts.openai_expert import BreakerPolicy, OpenAIExpert, RetryPolicy
from eapo.experts.oracle import OracleExpert
from eapo.experts.pool import ROUTINGS, ExpertPool, PoolStats, Prices, pool_metrics
from eapo.experts.reply_cache import ReplyCache

__all__ = [
    "EXPERTS",
    "ROUTINGS",
    "BatchExpert",
    "BreakerPolicy",
    "Expert",
    "ExpertPool",
    "FakeBatchExpert",
    "FakeExpert",
    "HFModelExpert",
    "NoisyExpert",
    "OpenAIExpert",
    "OracleExpert",
    "PoolStats",
    "Prices",
    "ReplyCache",
    "RetryPolicy",
    "build_expert",
    "corrupt_text",
    "keyed_rng",
    "pool_metrics",
    "request_key",
    "stable_hash",
    "supports_batch",
]
