"""The expert pool's sections of a run: `experts` and its `members` (EAPO.md §2, §6).

Why their own module: the pool is the largest part of a run's config (endpoints, retries,
limits, weights). What builds a pool from them is `eapo.assembly.pool.build_pool`; the
pool itself is `eapo.experts.pool`, whose routing registry has the names of
`ROUTING_NAMES` (a test checks that they agree).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eapo.schema.checks import check_int as _int
from eapo.schema.checks import check_one_of as _one_of
from eapo.schema.checks import check_real as _real

__all__ = ["EXPERT_KINDS", "MEMBER_TYPES", "ROUTING_NAMES", "ExpertMemberConfig", "ExpertsConfig"]

EXPERT_KINDS = ("oracle", "model", "homogeneous", "noisy", "pool")
MEMBER_TYPES = ("openai", "oracle", "noisy", "model", "homogeneous")
# The names of `eapo.experts.routing.ROUTINGS`, sorted as a Registry lists them.
ROUTING_NAMES = ("mod", "random", "round_robin")


@dataclass(frozen=True)
class ExpertMemberConfig:
    """One member of a configured pool (experts.kind "pool"): an OpenAI-compatible endpoint
    (vLLM, SGLang, a hosted API, `eapo serve-expert`) or a local expert. The fields from
    base_url to max_response_bytes are read by type "openai" only, except model (also
    type "model"), temperature and max_tokens (also types "model" and "homogeneous")."""

    type: str = "openai"
    """openai (an endpoint), oracle, noisy (the oracle, wrong with probability noise_p),
    model (a local model folder), homogeneous (a frozen copy of the initial policy)."""
    name: str | None = None
    """Label in metrics and dumps; null: the model name, or the type."""
    weight: int = 1
    """Share of the routed slots: a member of weight w appears w times in the pool's
    member list, interleaved (smooth weighted round robin), so every routing rule
    (mod, round_robin, random) gives it w / sum(weights) of the queries."""
    base_url: str | None = None
    """Endpoint of type openai, e.g. http://127.0.0.1:8000/v1."""
    model: str | None = None
    """Type openai: the served model name; type model: a local folder or hub id."""
    api_key_env: str | None = None
    """Name of the environment variable holding the API key (never the key itself); null:
    no key. The key is never logged or written to the run folder."""
    system_prompt: str | None = None
    """The expert's system prompt; null: the default one, "" none."""
    temperature: float = 0.0
    """Sampling temperature; 0 is greedy. Replicas of one model differ through it."""
    top_p: float = 1.0
    """Nucleus sampling mass."""
    max_tokens: int = 256
    """Longest reply, in tokens."""
    max_tokens_param: str = "max_tokens"
    """Request field for it: max_tokens (vLLM, SGLang) or max_completion_tokens (OpenAI's newer models)."""
    send_seed: bool = True
    """Send a per-request seed (from the run seed and the request's identity), for
    reproducible replies where the server honours it, and a reproducible cache key."""
    extra_body: dict[str, Any] = field(default_factory=dict)
    """Extra request fields sent as-is, e.g. {chat_template_kwargs: {enable_thinking: false}}."""
    timeout_s: float = 30.0
    """One attempt; must be <= experts.timeout_s, which bounds the whole call with retries."""
    retries: int = 2
    """Extra attempts after timeouts, connection errors, 408, 429 and 5xx."""
    backoff_s: float = 0.5
    """First retry wait; doubles per retry, with jitter."""
    backoff_max_s: float = 8.0
    """Longest retry wait (before jitter)."""
    max_retry_after_s: float = 30.0
    """A 429 asking to wait longer than this fails the call at once."""
    max_concurrency: int = 64
    """Calls in flight to this endpoint at once."""
    breaker_failures: int = 5
    """Failed attempts in a row that rest the endpoint (circuit breaker); 0: never."""
    breaker_cooldown_s: float = 30.0
    """How long a failing endpoint rests before one trial call."""
    max_reply_chars: int = 8192
    """Reply text beyond this is cut (counted as truncated)."""
    max_response_bytes: int = 8000000
    """A response body beyond this is abandoned while read (failure too_large)."""
    price_prompt_per_mtok: float = 0.0
    """USD per million prompt tokens, for the cost estimate in the metrics."""
    price_completion_per_mtok: float = 0.0
    """USD per million completion tokens."""
    noise_p: float = 0.0
    """Probability that a reply is made wrong (the noisy-expert ablation); type noisy needs > 0."""

    def __post_init__(self) -> None:
        _one_of("member", "type", self.type, MEMBER_TYPES)
        for key in ("name", "base_url", "model", "api_key_env"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"member.{key} must be null or a non-empty string, got {value!r}")
        if self.type == "openai":
            if self.base_url is None or not self.base_url.startswith(("http://", "https://")):
                raise ValueError(f"member.base_url must be an http(s) URL for type openai, got {self.base_url!r}")
            if self.model is None:
                raise ValueError("member.model (the served model name) is required for type openai")
        else:
            unused = [k for k in ("base_url", "api_key_env") if getattr(self, k) is not None]
            if unused:
                raise ValueError(f"member.{unused[0]} is read by type openai only, not {self.type!r}")
            if (self.model is not None) != (self.type == "model"):
                raise ValueError(f"member.model is required by type model and read by types openai and model only; "
                                 f"got type {self.type!r} with model {self.model!r}")
        if self.api_key_env is not None and not self.api_key_env.replace("_", "").isalnum():
            # The value is not echoed: a key pasted here by mistake must not reach a terminal or log.
            raise ValueError("member.api_key_env must name an environment variable (letters, digits, _); "
                             "put the key in that variable, and its name here, never the key itself")
        _int("member", "weight", self.weight)
        _real("member", "temperature", self.temperature)
        _real("member", "top_p", self.top_p, 0.0, 1.0, open_low=True)
        _int("member", "max_tokens", self.max_tokens)
        _one_of("member", "max_tokens_param", self.max_tokens_param, ("max_tokens", "max_completion_tokens"))
        if not isinstance(self.extra_body, Mapping):
            raise ValueError(f"member.extra_body must be a mapping of request fields, got {self.extra_body!r}")
        _real("member", "timeout_s", self.timeout_s, open_low=True)
        _int("member", "retries", self.retries, low=0)
        for key in ("backoff_s", "backoff_max_s", "max_retry_after_s", "breaker_cooldown_s",
                    "price_prompt_per_mtok", "price_completion_per_mtok"):
            _real("member", key, getattr(self, key))
        for key in ("max_concurrency", "max_reply_chars", "max_response_bytes"):
            _int("member", key, getattr(self, key))
        _int("member", "breaker_failures", self.breaker_failures, low=0)
        _real("member", "noise_p", self.noise_p, 0.0, 1.0)
        if self.type == "noisy" and self.noise_p <= 0:
            raise ValueError("member.noise_p must be > 0 for type noisy (the oracle made wrong with that probability)")


@dataclass(frozen=True)
class ExpertsConfig:
    """The expert pool consulted during training (EAPO.md §2, §6)."""

    kind: str = "oracle"
    """oracle (reads the gold answer), model (a separate model), homogeneous (a frozen
    copy of the initial policy), noisy (the oracle, wrong with probability noise_p), or
    pool (the members listed under members: endpoints and local experts, with weights)."""
    model: str | None = None
    """The expert model of kind "model" (required there): a local folder or hub id."""
    noise_p: float = 0.0
    """Probability that a reply is made wrong; any kind but pool (set it per member there);
    kind "noisy" is the oracle with this noise."""
    replicas: int = 1
    """Pool size: copies of the expert, diverse through sampling temperature (not for kind pool: use weights)."""
    routing: str = "mod"
    """Which member answers the i-th query of a turn: mod (paper: i mod |pool|), round_robin, random."""
    timeout_s: float = 60.0
    """Per call, retries included; a slower reply counts as unavailable (EAPO.md §8)."""
    max_new_tokens: int = 32
    """Longest reply a model expert generates (kinds model, homogeneous)."""
    temperature: float = 0.0
    """Sampling temperature of a model expert; 0 is greedy (kinds model, homogeneous)."""
    members: tuple[ExpertMemberConfig, ...] = ()
    """Kind pool only: the members (docs/EXPERTS.md, examples/experts/)."""
    cache_dir: str | None = None
    """Folder of the on-disk reply cache of endpoint members (keyed by model, messages,
    sampling and seed), shared by runs; null: no cache."""

    def __post_init__(self) -> None:
        _one_of("experts", "kind", self.kind, EXPERT_KINDS)
        if self.model is not None and (not isinstance(self.model, str) or not self.model):
            raise ValueError(f"experts.model must be null or a folder/hub id, got {self.model!r}")
        if (self.model is not None) != (self.kind == "model"):
            raise ValueError(
                "experts.model (a folder or hub id) is required by experts.kind 'model' and used by no other kind; "
                f"got kind {self.kind!r} with model {self.model!r}"
            )
        _real("experts", "noise_p", self.noise_p, 0.0, 1.0)
        _int("experts", "replicas", self.replicas)
        _one_of("experts", "routing", self.routing, ROUTING_NAMES)
        _real("experts", "timeout_s", self.timeout_s, open_low=True)
        _int("experts", "max_new_tokens", self.max_new_tokens)
        _real("experts", "temperature", self.temperature)
        if self.cache_dir is not None and (not isinstance(self.cache_dir, str) or not self.cache_dir):
            raise ValueError(f"experts.cache_dir must be null or a folder, got {self.cache_dir!r}")
        if not isinstance(self.members, tuple) or not all(isinstance(m, ExpertMemberConfig) for m in self.members):
            raise ValueError("experts.members must be a list of member sections (see ExpertMemberConfig)")
        if bool(self.members) != (self.kind == "pool"):
            raise ValueError("experts.members lists the members of experts.kind 'pool' and is read by no other kind; "
                             f"got kind {self.kind!r} with {len(self.members)} members")
        if self.kind == "pool":
            if self.replicas != 1:
                raise ValueError("experts.replicas is not read by kind 'pool'; give members weights instead")
            if self.noise_p != 0:
                raise ValueError("experts.noise_p is not read by kind 'pool'; set experts.members[i].noise_p")
            for i, m in enumerate(self.members):
                if m.type == "openai" and m.timeout_s > self.timeout_s:
                    raise ValueError(
                        f"experts.members[{i}].timeout_s ({m.timeout_s}) is over experts.timeout_s ({self.timeout_s}), "
                        "which bounds the whole call: the pool would cut the first attempt and never retry"
                    )
