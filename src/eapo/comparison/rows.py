"""The rows of the paper's comparison (EAPO.md §6), as data.

A row is a recipe applied to one shared starting point (the warm start, or `--model`):
what it trains (nothing, RL, or supervised distillation), with which configuration
changes, and how it is evaluated. Keeping rows as `--set`-style overrides on one
`TrainConfig` is what makes the comparison fair by construction: every row inherits the
same task, splits, seed, number of policy updates, batch and evaluation, and differs only
in the keys its spec names. Users add rows to `ROWS` (or pass their own specs) rather
than editing the runner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from eapo.registry import Registry
from eapo.schema import TrainConfig
from eapo.typed_yaml import apply_overrides, from_dict, to_dict

__all__ = ["DEFAULT_ROWS", "ROWS", "RowSpec", "row_config"]

RowKind = Literal["eval", "rl", "distill"]


@dataclass(frozen=True)
class RowSpec:
    """One row. `kind`: "eval" trains nothing (the starting policy is evaluated), "rl" runs
    the trainer, "distill" fine-tunes on expert-written solutions for `rl.steps` updates.
    `overrides` are `--set` strings applied on top of the comparison's config.
    `with_experts`: the test evaluation lets the policy consult (the inference-time
    workflow baseline); every other row is evaluated expert-free."""

    name: str
    label: str
    kind: RowKind
    overrides: tuple[str, ...] = ()
    with_experts: bool = False
    lora: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("eval", "rl", "distill"):
            raise ValueError(f"row {self.name!r}: kind must be eval, rl or distill, got {self.kind!r}")
        if self.with_experts and self.kind != "eval":
            raise ValueError(f"row {self.name!r}: with_experts is an evaluation-only row (kind 'eval')")


ROWS: Registry[RowSpec] = Registry("comparison row")


def _add(spec: RowSpec) -> None:
    ROWS.add(spec.name, spec)


_add(RowSpec("base", "base (start)", "eval", description="the starting policy, expert-free"))
_add(RowSpec("self_rl", "self-exploratory RL", "rl", ("rl.arm=self_rl",),
             description="the same trainer with the consult action disabled"))
_add(RowSpec("workflow", "expert-assisted workflow", "eval", ("rl.arm=eapo",), with_experts=True,
             description="the starting policy evaluated WITH the experts (rho = 1): an inference-time pipeline"))
_add(RowSpec("distill_full", "expert-distilled (full)", "distill",
             description="supervised fine-tuning on expert-written solutions, all weights"))
_add(RowSpec("distill_lora", "expert-distilled (LoRA)", "distill", lora=True,
             description="supervised fine-tuning on expert-written solutions through a peft LoRA adapter"))
_add(RowSpec("eapo_k1", "EAPO sequential (K=1)", "rl", ("rl.arm=eapo", "rollout.max_queries=1"),
             description="one query per consultation"))
_add(RowSpec("eapo", "EAPO parallel (K=3)", "rl", ("rl.arm=eapo", "rollout.max_queries=3"),
             description="up to three parallel queries per consultation"))
_add(RowSpec("homogeneous", "EAPO, homogeneous expert", "rl",
             ("rl.arm=eapo", "rollout.max_queries=3", "experts.kind=homogeneous", "experts.replicas=3",
              "experts.temperature=1.0"),
             description="the expert is a frozen copy of the starting policy"))
_add(RowSpec("noisy_0.2", "EAPO, noisy expert p=0.2", "rl",
             ("rl.arm=eapo", "rollout.max_queries=3", "experts.kind=noisy", "experts.noise_p=0.2"),
             description="the oracle, each reply wrong with probability 0.2"))
_add(RowSpec("noisy_0.5", "EAPO, noisy expert p=0.5", "rl",
             ("rl.arm=eapo", "rollout.max_queries=3", "experts.kind=noisy", "experts.noise_p=0.5"),
             description="the oracle, each reply wrong with probability 0.5"))
_add(RowSpec("adaptive", "EAPO, adaptive acceptance (ours)", "rl",
             ("rl.arm=eapo", "rollout.max_queries=3", "acceptance.adaptive={combine: min}"),
             description="the global schedule, closed early per problem once it is solved alone (EAPO.md §2)"))

DEFAULT_ROWS: tuple[str, ...] = (
    "base", "self_rl", "workflow", "distill_full", "distill_lora", "eapo_k1", "eapo", "homogeneous",
    "noisy_0.2", "noisy_0.5", "adaptive",
)


def row_config(cfg: TrainConfig, spec: RowSpec, *, seed: int, output_dir: str) -> TrainConfig:
    """The row's configuration: the comparison's, with the row's overrides, seed and folder.

    Rows that name an expert kind keep the comparison's other expert settings; a row that
    does not consult keeps them too (they are unused), so configs differ only where the
    row says.

    >>> c = row_config(TrainConfig(), ROWS.get("eapo_k1"), seed=2, output_dir="x")
    >>> (c.rl.arm, c.rollout.max_queries, c.seed, c.output_dir)
    ('eapo', 1, 2, 'x')
    """
    data = to_dict(cfg)
    data = apply_overrides(data, [*spec.overrides, f"seed={seed}", f"output_dir={output_dir}"], TrainConfig)
    return from_dict(TrainConfig, data)
