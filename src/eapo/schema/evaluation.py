"""What a run reports: `eval` (the expert-free evaluation, EAPO.md §5) and `logging`
(where its metrics go besides `metrics.jsonl`)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from eapo.schema.checks import check_int as _int
from eapo.schema.checks import check_one_of as _one_of
from eapo.schema.checks import check_real as _real

__all__ = ["EVAL_LOCKS", "LOGGING_BACKENDS", "WANDB_MODES", "EvalConfig", "LoggingConfig"]

EVAL_LOCKS = ("forbid", "refuse", "both")
# Metric back-ends besides metrics.jsonl (always written) -> the package each one needs.
LOGGING_BACKENDS = {"tensorboard": "tensorboard", "wandb": "wandb", "trackio": "trackio"}
WANDB_MODES = ("offline", "online")


@dataclass(frozen=True)
class EvalConfig:
    """Expert-free evaluation (EAPO.md §5)."""

    n: int = 4
    """Samples per problem (avg@n, and pass@k for k <= n)."""
    k: tuple[int, ...] = (1, 2, 4)
    """The k of the reported pass@k, each <= n."""
    temperature: float = 1.0
    """Sampling temperature of the n samples."""
    greedy: bool = True
    """Also report greedy (temperature 0) accuracy."""
    lock: str = "forbid"
    """How consulting is locked off: forbid (consult tag can't be decoded), refuse (rho = 0), both."""
    every_steps: int = 50
    """Evaluate on the validation split every this many RL steps; 0 only at the end."""
    val_size: int = 100
    """Validation problems used by the evaluations during training (<= task.val_size)."""
    test_size: int | None = None
    """Test problems of the final evaluation (the first ones of the split); null: all of them.
    Limit here rather than with task.test_size, which redraws the splits (and the warm start)."""
    backend: str = "hf"
    """hf | vllm: what generates the evaluation rows of `eapo compare` (base, workflow), which
    evaluate a saved policy. A trained arm's own evaluations use the in-memory weights (hf);
    evaluate its saved checkpoint with `eapo eval --backend vllm`."""

    def __post_init__(self) -> None:
        _int("eval", "n", self.n)
        if not self.k:
            raise ValueError("eval.k must list at least one k")
        for k in self.k:
            _int("eval", "k", k)
            if k > self.n:
                raise ValueError(f"eval.k values must be <= eval.n ({self.n}) for an unbiased pass@k, got {k}")
        _real("eval", "temperature", self.temperature, open_low=True)
        _one_of("eval", "lock", self.lock, EVAL_LOCKS)
        _one_of("eval", "backend", self.backend, ("hf", "vllm"))
        _int("eval", "every_steps", self.every_steps, low=0)
        _int("eval", "val_size", self.val_size)
        if self.test_size is not None:
            _int("eval", "test_size", self.test_size)


@dataclass(frozen=True)
class LoggingConfig:
    """Where a run's metrics go besides `metrics.jsonl` (always written), and how they are named."""

    backends: tuple[str, ...] = ()
    """Extra back-ends: tensorboard (event files in RUN/tensorboard), wandb, trackio. Each
    needs its package installed (pip install 'eapo[tracking]'); checked when the config is built."""
    project: str = "eapo"
    """Project name in W&B and trackio."""
    run_name: str | None = None
    """Run name in W&B and trackio; null: the run folder's parent and name, e.g. quick-s0/eapo."""
    wandb_mode: str = "offline"
    """offline (files under RUN/wandb, no network; upload later with `wandb sync`) or online."""

    def __post_init__(self) -> None:
        if isinstance(self.backends, str) or not all(isinstance(b, str) for b in self.backends):
            raise ValueError(f"logging.backends must be a list of names, got {self.backends!r}")
        for name in self.backends:
            _one_of("logging", "backends", name, tuple(LOGGING_BACKENDS))
        if len(set(self.backends)) != len(self.backends):
            raise ValueError(f"logging.backends lists a back-end twice: {list(self.backends)}")
        missing = [b for b in self.backends if importlib.util.find_spec(LOGGING_BACKENDS[b]) is None]
        if missing:  # fail at load time, not after the warm start
            raise ValueError(
                f"logging.backends lists {', '.join(missing)} but the package is not installed: "
                f"pip install {' '.join(LOGGING_BACKENDS[b] for b in missing)} (or 'eapo[tracking]'), or remove it"
            )
        if not isinstance(self.project, str) or not self.project:
            raise ValueError(f"logging.project must be a non-empty string, got {self.project!r}")
        if self.run_name is not None and (not isinstance(self.run_name, str) or not self.run_name):
            raise ValueError(f"logging.run_name must be null or a non-empty string, got {self.run_name!r}")
        _one_of("logging", "wandb_mode", self.wandb_mode, WANDB_MODES)
