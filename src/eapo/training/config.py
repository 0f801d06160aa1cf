"""Everything one training run needs to know, as one frozen dataclass (`TrainConfig`).

Why one tree: a run is reproduced from a single file (saved as YAML in its output folder)
and changed from the command line with `--set section.key=value`; the loader in
`eapo.config` checks every key against these classes. The sections that belong to other
layers (rollout, schedules, reward) are imported from those layers, not redefined, so
each setting has exactly one definition; the sections that only a training run has
(task, model, warm start, RL, evaluation) live here; the expert pool's sections
are in `eapo.training.experts_config` (re-exported here). Defaults follow EAPO.md
where it gives one; `examples/default.yaml` writes them all out with a comment each.

Checks that span sections live in `TrainConfig.__post_init__`: the consultation penalty
must not become the whole signal under group-normalised advantages (EAPO.md §8), and the
duplicated settings (penalty recipients, sampling temperature) must agree.

`rl.trl` passes extra keys to TRL's `GRPOConfig` as-is. Its keys are checked when the
config is built, against `dataclasses.fields(trl.GRPOConfig)`: trl is imported lazily
and only when `rl.trl` is non-empty (importing it takes seconds), so the default config
stays cheap to load. Keys this config already owns (learning rate, clipping, ...) are
refused there, so that no setting has two sources; `TRL_OWNED_KEYS` says where each one
is set, and the trainer should build `GRPOConfig` from that mapping plus `rl.trl`.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib.util
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eapo.rewards.reward import RewardConfig
from eapo.rollout.config import BARE_REFUSALS, CONSULT_STYLES, RolloutConfig
from eapo.schedules.acceptance import AcceptanceConfig
from eapo.schedules.budget import TurnBudgetConfig
from eapo.schedules.penalty import PenaltyConfig
from eapo.tasks.arithmetic import ORACLES
from eapo.training.checks import check_int as _int
from eapo.training.checks import check_lengths as _lengths
from eapo.training.checks import check_one_of as _one_of
from eapo.training.checks import check_real as _real
from eapo.training.experts_config import EXPERT_KINDS, MEMBER_TYPES, ExpertMemberConfig, ExpertsConfig

__all__ = [
    "ARMS",
    "EVAL_LOCKS",
    "EXPERT_KINDS",
    "SCALE_REWARDS",
    "TASK_NAMES",
    "TRL_OWNED_KEYS",
    "EvalConfig",
    "ExpertMemberConfig",
    "ExpertsConfig",
    "MEMBER_TYPES",
    "LOGGING_BACKENDS",
    "LoggingConfig",
    "ModelConfig",
    "RLConfig",
    "TaskConfig",
    "TrainConfig",
    "WarmStartConfig",
    "check_trl_overrides",
]

ARMS = ("eapo", "self_rl")
SCALE_REWARDS = ("group", "batch", "none")
EVAL_LOCKS = ("forbid", "refuse", "both")
TASK_NAMES = ("chain", "dataset")
# Metric back-ends besides metrics.jsonl (always written) -> the package each one needs.
LOGGING_BACKENDS = {"tensorboard": "tensorboard", "wandb": "wandb", "trackio": "trackio"}
WANDB_MODES = ("offline", "online")

# GRPOConfig fields that this config sets itself -> the key to set instead.
TRL_OWNED_KEYS: dict[str, str] = {
    "max_steps": "rl.steps",
    "learning_rate": "rl.learning_rate",
    "temperature": "rollout.temperature",
    "num_generations": "rl.num_generations",
    "loss_type": "rl.loss_type",
    "epsilon": "rl.epsilon",
    "epsilon_high": "rl.epsilon_high",
    "beta": "rl.beta",
    "scale_rewards": "rl.scale_rewards",
    "num_iterations": "rl.num_iterations",
    "save_steps": "rl.save_steps",
    "logging_steps": "rl.log_steps",
    "seed": "seed",
    "output_dir": "output_dir",
    "report_to": "logging.backends",
}


# ------------------------------------------------------------------------- TRL keys


@functools.cache
def _grpo_fields() -> tuple[str, ...]:
    import trl  # slow (seconds): only when there is something to check

    return tuple(f.name for f in dataclasses.fields(trl.GRPOConfig) if f.init)


def check_trl_overrides(overrides: Mapping[str, Any]) -> None:
    """Refuse `rl.trl` keys that `trl.GRPOConfig` does not have (with close matches) and
    keys this config owns (naming the key to set instead). Values are left to TRL.

    Called by `RLConfig.__post_init__` when `rl.trl` is non-empty; importing trl is the
    cost of that check.
    """
    for key in overrides:
        if not isinstance(key, str):
            raise ValueError(f"rl.trl keys must be strings, got {key!r}")
        if key in TRL_OWNED_KEYS:
            raise ValueError(
                f"rl.trl.{key} is set by this config; set {TRL_OWNED_KEYS[key]} instead"
            )
    if not overrides:
        return
    names = _grpo_fields()
    for key in overrides:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "; see trl.GRPOConfig"
            raise ValueError(f"rl.trl.{key} is not a field of trl.GRPOConfig{hint}")


# ----------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class TaskConfig:
    """The problems: the built-in task, or a dataset, and how many per split."""

    name: str = "chain"
    """chain (the built-in chained-arithmetic task) or dataset (problems from task.data)."""
    data: str | None = None
    """Task dataset only (required there): a registered set (dapo_math, math500, gsm8k, ...,
    see eapo.evaluation.benchmarks) or a JSON Lines file, read from $EAPO_DATA_DIR or
    ../shared/data. Splits are drawn reproducibly by task.seed (eapo.tasks.dataset)."""
    fields: dict[str, str] = field(default_factory=dict)
    """Task dataset, .jsonl sources only: our field -> the file's (keys id, question, answer,
    choices), e.g. {question: problem, answer: solution}."""
    scorer: str | None = None
    """Task dataset: scorer of the reward and of validation and test (math = math-verify,
    integer, exact, choice, em, f1); null: the one registered for task.data (a .jsonl: exact)."""
    val_data: str | None = None
    """Task dataset: take validation problems from this set instead (e.g. aime2024): its
    first val_size, removed from training; null: drawn from task.data."""
    test_data: str | None = None
    """Task dataset: the same for the test split (e.g. aime2025)."""
    min_len: int = 5
    """Task chain: shortest problem (number of operations). The default RL split is the hard
    one, lengths 5-6, where the warm-started policy alone succeeds a few % of the time
    (docs/TASK.md)."""
    max_len: int = 6
    """Task chain: longest problem."""
    train_size: int | None = 2000
    """Problems in the training split; null (task dataset only): every row left after
    validation and test."""
    val_size: int = 200
    """Problems in the validation split (evaluated during training); from val_data: at most this many."""
    test_size: int = 400
    """Problems in the held-out test split (evaluated at the end); from test_data: at most this many."""
    seed: int = 0
    """Seed of the problem generator or of the dataset shuffle (splits are fixed by it)."""
    oracle: str = "literal"
    """Task chain: what the oracle expert answers. literal: the value of the query as asked
    (`85-19` -> 66, even when the policy misread 19); step: the right result of the step the
    policy is at, from its own running value (the operand read from the problem); write: that
    step written out, for rollout.consult_style bare; tutor: the true running value
    of the problem after the step the policy is at (counted in its transcript, which the
    expert then sees), so a reply also repairs a misread operand or an earlier slip.
    docs/TASK.md says why."""

    def __post_init__(self) -> None:
        _one_of("task", "name", self.name, TASK_NAMES)
        _one_of("task", "oracle", self.oracle, ORACLES)
        dataset = self.name == "dataset"
        for key in ("data", "scorer", "val_data", "test_data"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"task.{key} must be null or a non-empty string, got {value!r}")
        if (self.data is not None) != dataset:
            raise ValueError("task.data (a registered set or a .jsonl file) is required by task.name 'dataset' "
                             f"and read by no other task; got name {self.name!r} with data {self.data!r}")
        if not dataset:
            unused = [k for k in ("scorer", "val_data", "test_data") if getattr(self, k) is not None]
            unused += ["fields"] if self.fields else []
            unused += ["train_size (null)"] if self.train_size is None else []
            if unused:
                raise ValueError(f"task.{unused[0]} is read by task.name 'dataset' only, not {self.name!r}")
        elif self.oracle != "literal":
            raise ValueError("task.oracle is read by the chain task only, not by task.name 'dataset'")
        if not isinstance(self.fields, Mapping) or not all(isinstance(v, str) and v for v in self.fields.values()):
            raise ValueError(f"task.fields must map field names to the file's field names, got {self.fields!r}")
        bad = sorted(set(self.fields) - {"id", "question", "answer", "choices"})
        if bad:
            raise ValueError(f"task.fields keys must be among id, question, answer, choices; got {bad}")
        if self.scorer is not None:
            from eapo.rewards import SCORERS  # light: the scorers import math-verify on first use

            if self.scorer not in SCORERS:
                raise ValueError(f"task.scorer must be one of {', '.join(SCORERS.names())}, got {self.scorer!r}")
        _lengths("task", self.min_len, self.max_len)
        if self.train_size is not None:
            _int("task", "train_size", self.train_size)
        _int("task", "val_size", self.val_size, low=0)
        _int("task", "test_size", self.test_size, low=0)


@dataclass(frozen=True)
class ModelConfig:
    """The policy model, and LoRA if it is trained through adapters."""

    policy: str | None = None
    """None: the tiny built-in policy; else a local folder or a hub id."""
    system_prompt: bool | None = None
    """Whether every prompt opens with the protocol's system text (rollout.system_prompt,
    the protocol's default when that is empty). null: yes for a given policy (--model,
    model.policy), whose chat template would otherwise put its own default there (Qwen2:
    "You are a helpful assistant", nothing about consulting); no for the tiny built-in
    policy, warm-started without it. Resolved by `eapo.training.run.with_policy_prompt`."""
    lora: bool = False
    """Train LoRA adapters instead of all weights."""
    lora_r: int = 8
    """LoRA rank."""
    lora_alpha: int = 16
    """LoRA scaling numerator (scale = alpha / r)."""
    lora_dropout: float = 0.0
    """Dropout on the LoRA branch."""
    lora_target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    """Names of the modules that get adapters."""

    def __post_init__(self) -> None:
        if self.policy is not None and (not isinstance(self.policy, str) or not self.policy):
            raise ValueError(f"model.policy must be null (the built-in policy) or a folder/hub id, got {self.policy!r}")
        if self.system_prompt is not None and not isinstance(self.system_prompt, bool):
            raise ValueError(f"model.system_prompt must be null, true or false, got {self.system_prompt!r}")
        _int("model", "lora_r", self.lora_r)
        _int("model", "lora_alpha", self.lora_alpha)
        _real("model", "lora_dropout", self.lora_dropout, 0.0, 1.0)
        if self.lora_dropout >= 1.0:
            raise ValueError(f"model.lora_dropout must be < 1, got {self.lora_dropout!r}")
        if self.lora and not self.lora_target_modules:
            raise ValueError("model.lora_target_modules must name at least one module when model.lora is true")




@dataclass(frozen=True)
class WarmStartConfig:
    """Supervised warm start of the tiny policy, so it speaks the protocol before RL."""

    steps: int = 1200
    """Optimiser steps, one fresh batch each; 0 skips the warm start. Calibrated in
    docs/TASK.md: at 600 the tiny policy writes the format but hardly computes."""
    learning_rate: float = 2e-3
    """Learning rate of the warm start."""
    batch_size: int = 64
    """Sequences per step."""
    min_len: int = 1
    """Shortest synthetic problem shown."""
    max_len: int = 6
    """Longest synthetic problem shown."""
    consult_prob: float = 0.3
    """Share of demonstrations that consult before answering."""
    refusal_prob: float = 0.3
    """Share of demonstrated consultations that are refused (so the policy learns to go on alone)."""
    seed: int = 0
    """Seed of the demonstrations and of the warm-start optimiser."""
    query: str = "step"
    """What a demonstrated consultation asks: "step" (`85-19`, the step with the policy's own
    running value) or "prefix" (the question up to that step; its reply is the true running
    value, so it can put a derailed chain back on track). See docs/TASK.md."""
    slip_prob: float = 0.0
    """With "prefix" queries: share of demonstrations with an accepted consultation in which
    an earlier own step is shown wrong (never trained on) and the reply repairs the chain."""
    consult_style: str = "block"
    """How demonstrated consultations look: "block" or "bare" (must match
    rollout.consult_style; bare replies are the step itself, see the "write" oracle)."""
    bare_refusal: str = "block"
    """With "bare": what a demonstrated refusal shows (must match rollout.bare_refusal):
    "block" the "expert unavailable" block, "silent" nothing, the policy's own step follows
    its tag."""

    def __post_init__(self) -> None:
        _int("warmstart", "steps", self.steps, low=0)
        _one_of("warmstart", "query", self.query, ("step", "prefix"))
        _real("warmstart", "slip_prob", self.slip_prob, 0.0, 1.0)
        _one_of("warmstart", "consult_style", self.consult_style, CONSULT_STYLES)
        if self.consult_style == "bare" and self.query != "step":
            raise ValueError("warmstart.consult_style bare asks no explicit question: warmstart.query must be step")
        _one_of("warmstart", "bare_refusal", self.bare_refusal, BARE_REFUSALS)
        if self.bare_refusal != "block" and self.consult_style != "bare":
            raise ValueError("warmstart.bare_refusal: silent needs warmstart.consult_style: bare")
        if self.slip_prob > 0 and self.query != "prefix":
            raise ValueError("warmstart.slip_prob needs warmstart.query: prefix (a step query cannot repair a slip)")
        _real("warmstart", "learning_rate", self.learning_rate, open_low=True)
        _int("warmstart", "batch_size", self.batch_size)
        _lengths("warmstart", self.min_len, self.max_len)
        _real("warmstart", "consult_prob", self.consult_prob, 0.0, 1.0)
        _real("warmstart", "refusal_prob", self.refusal_prob, 0.0, 1.0)


@dataclass(frozen=True)
class RLConfig:
    """The RL phase on TRL's GRPOTrainer (EAPO.md §4)."""

    arm: str = "eapo"
    """eapo, or self_rl: the same trainer with the consult action disabled (the baseline)."""
    steps: int = 200
    """Policy updates (global training steps s = 1 .. steps)."""
    prompts_per_step: int = 8
    """Problems per step; each gets num_generations rollouts."""
    num_generations: int = 8
    """G: rollouts per problem, one group for the group-relative advantage."""
    learning_rate: float = 3e-5
    """Learning rate of the RL phase."""
    loss_type: str = "dapo"
    """TRL loss aggregation; dapo is token-level over all mask-1 tokens of the batch."""
    epsilon: float = 0.2
    """Lower clip of the probability ratio (eps_low)."""
    epsilon_high: float = 0.28
    """Upper clip of the probability ratio ("clip-higher")."""
    beta: float = 0.0
    """KL coefficient to a reference model; 0 as in DAPO (no reference model is loaded)."""
    scale_rewards: str = "group"
    """Divide advantages by the group's std (group), the batch's (batch), or not (none: Dr. GRPO)."""
    num_iterations: int = 1
    """Optimiser passes over each generated batch."""
    save_steps: int = 50
    """Save a checkpoint every this many steps."""
    log_steps: int = 5
    """Log training metrics every this many steps."""
    dump_rollouts_every: int = 25
    """Write the step's episodes to the run folder every this many steps; 0 never."""
    trl: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for trl.GRPOConfig, passed as-is (keys checked, see module doc)."""

    def __post_init__(self) -> None:
        _one_of("rl", "arm", self.arm, ARMS)
        _int("rl", "steps", self.steps)
        _int("rl", "prompts_per_step", self.prompts_per_step)
        _int("rl", "num_generations", self.num_generations, low=2)  # a group of one has no advantage
        _real("rl", "learning_rate", self.learning_rate, open_low=True)
        if not isinstance(self.loss_type, str) or not self.loss_type:
            raise ValueError(f"rl.loss_type must be a TRL loss type name, got {self.loss_type!r}")
        _real("rl", "epsilon", self.epsilon)
        _real("rl", "epsilon_high", self.epsilon_high)
        _real("rl", "beta", self.beta)
        _one_of("rl", "scale_rewards", self.scale_rewards, SCALE_REWARDS)
        _int("rl", "num_iterations", self.num_iterations)
        _int("rl", "save_steps", self.save_steps)
        _int("rl", "log_steps", self.log_steps)
        _int("rl", "dump_rollouts_every", self.dump_rollouts_every, low=0)
        if not isinstance(self.trl, Mapping):
            raise ValueError(f"rl.trl must be a mapping of GRPOConfig keyword arguments, got {self.trl!r}")
        check_trl_overrides(self.trl)


@dataclass(frozen=True)
class EvalConfig:
    """Expert-free evaluation (EAPO.md §5)."""

    n: int = 4
    """Samples per problem (avg@n, and pass@k for k <= n)."""
    k: tuple[int, ...] = (1, 2, 4)
    """The k of the reported pass@k."""
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


# ---------------------------------------------------------------------------------- run


@dataclass(frozen=True)
class TrainConfig:
    """One training run: warm start (tiny policy), then RL with experts, then evaluation."""

    seed: int = 0
    """Seed of the run (sampling, acceptance draws, routing, trainer)."""
    output_dir: str = "runs/default"
    """Where checkpoints, metrics, rollout dumps and this config (as YAML) are written."""
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    experts: ExpertsConfig = field(default_factory=ExpertsConfig)
    rollout: RolloutConfig = field(default_factory=lambda: RolloutConfig(system_prompt=""))
    # The built-in default has no system text: the tiny policy learns the protocol in its warm
    # start (which uses none), and every turn would pay for the text. A given policy gets the
    # protocol's text anyway unless model.system_prompt is false (with_policy_prompt).
    acceptance: AcceptanceConfig = field(default_factory=lambda: AcceptanceConfig(kind="linear", start=1.0, end=0.0))
    # The built-in run anneals rho linearly from 1 to 0 over the run, not 1/s (the paper's
    # default, still the default of AcceptanceConfig): at a few hundred updates 1/s is
    # plain RL after the first steps (PILOT.md), so help would never matter.
    turn_budget: TurnBudgetConfig = field(default_factory=TurnBudgetConfig)
    penalty: PenaltyConfig = field(default_factory=PenaltyConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    warmstart: WarmStartConfig = field(default_factory=WarmStartConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")
        if not isinstance(self.output_dir, str) or not self.output_dir:
            raise ValueError(f"output_dir must be a non-empty path, got {self.output_dir!r}")
        if self.penalty.coef > 0 and self.penalty.apply_to == "all" and self.rl.scale_rewards != "none":
            raise ValueError(
                f"penalty.apply_to 'all' with penalty.coef > 0 needs rl.scale_rewards 'none' "
                f"(got {self.rl.scale_rewards!r}): in a group where every completion fails, the per-consult "
                "cost is the only reward difference, and dividing by the group's spread blows it up into "
                "full-size advantages that teach the policy to stop asking whatever rho_s is (EAPO.md §8). "
                "Use penalty.apply_to 'success', or rl.scale_rewards 'none'."
            )
        if self.eval.val_size > self.task.val_size:
            raise ValueError(
                f"eval.val_size ({self.eval.val_size}) must be <= task.val_size ({self.task.val_size})"
            )
