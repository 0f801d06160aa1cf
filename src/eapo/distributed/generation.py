"""Generating with the trainer's model inside a distributed run.

Two things differ from one process:

1. The model may be wrapped (DDP) or sharded (DeepSpeed ZeRO-3, FSDP). `generation_model`
   hands the rollout the model the way TRL's own generation does
   (`unwrap_model_for_generation`, which gathers ZeRO-3 parameters for the duration when
   `ds3_gather_for_generation` is on, plus FSDP1's `summon_full_params`).
2. With sharded parameters every forward pass is a collective (each rank all-gathers the
   layer it runs). Transformers keeps the ranks together *within* one `generate` call
   (`synced_gpus`), but the multi-turn rollout makes as many calls as its longest episode
   needs turns, and that differs between ranks: a rank that finishes early would leave the
   others waiting forever. `LockstepBackend` makes every rank make the same number of
   calls: before each call the ranks exchange "still generating?", and a rank whose
   episodes are done joins each remaining call with a one-token dummy generation
   (`finish`). With replicated parameters (DDP, ZeRO-1/2, ZeRO-3 with gathering, vLLM)
   generation has no collectives and no lockstep is needed.

Not run here: ZeRO-3 and FSDP (no GPU, no DeepSpeed on these machines); the lockstep
protocol itself is tested with threads standing in for ranks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from eapo.distributed.collective import Collective
from eapo.rollout.backend import GenerationBackend, Generation, SamplingParams


@contextlib.contextmanager
def generation_model(trainer: Any) -> Iterator[Any]:
    """The trainer's model, unwrapped (and gathered where sharded) for generation. Sharded
    models go through TRL's `unwrap_model_for_generation` (as TRL's own generation does);
    replicated ones are simply unwrapped."""
    from trl.distributed import DistributedBackend
    from trl.models.utils import unwrap_model_for_generation

    wrapped = getattr(trainer, "model_wrapped", None) or trainer.model
    backend = DistributedBackend(trainer.accelerator)
    if not (backend.is_zero3 or backend.is_fsdp):  # replicated (one process, DDP, ZeRO-1/2): just unwrap
        yield trainer.accelerator.unwrap_model(trainer.model)
        return
    with (
        unwrap_model_for_generation(wrapped, trainer.accelerator,
                                    gather_deepspeed3_params=trainer.args.ds3_gather_for_generation) as model,
        backend.summon_full_params(wrapped, recurse=False),
    ):
        yield model


def needs_lockstep(trainer: Any) -> bool:
    """Whether generation runs collectives, so all ranks must make the same calls."""
    from trl.distributed import DistributedBackend

    if trainer.accelerator.num_processes <= 1 or getattr(trainer, "use_vllm", False):
        return False
    backend = DistributedBackend(trainer.accelerator)
    return backend.is_fsdp or (backend.is_zero3 and not trainer.args.ds3_gather_for_generation)


class LockstepBackend:
    """Wraps a backend so that every rank makes the same number of `generate` calls.

    Call `finish(params)` once this rank's episodes are done; it returns when every rank's
    are. `calls` and `dummy_calls` count real and filler calls (for tests and logs)."""

    def __init__(self, inner: GenerationBackend, collective: Collective, filler: list[int]) -> None:
        if not filler:
            raise ValueError("the filler context must hold at least one token id")
        self.inner = inner
        self.collective = collective
        self.filler = list(filler)
        self.eos_token_ids = inner.eos_token_ids
        self.calls = 0
        self.dummy_calls = 0

    def _anyone_generating(self, me: bool) -> bool:
        return any(self.collective.all_gather_object(bool(me)))

    def generate(self, contexts: list[list[int]], max_new_tokens: list[int], params: SamplingParams) -> list[Generation]:
        self._anyone_generating(True)
        self.calls += 1
        return self.inner.generate(contexts, max_new_tokens, params)

    def finish(self, params: SamplingParams) -> None:
        while self._anyone_generating(False):
            self.dummy_calls += 1
            self.inner.generate([self.filler], [1], params)
