"""The two collective operations EAPO's rollout needs across training processes.

Under `accelerate launch` each process rolls out its own share of the global batch. Three
things must still be global: the episode ids (the acceptance coin is keyed on them), the
adaptive schedule's per-problem history, and the logged metrics. All three need only
`all_gather_object` (every rank gets every rank's Python object, in rank order) and a
barrier. `Collective` is that interface; `LocalCollective` is the single-process case
(a gather returns `[obj]`), `TorchCollective` the default process group (gloo on CPU, NCCL
on GPUs, whatever accelerate initialised), and tests use a thread-backed fake.

Deliberately not here: tensors (TRL gathers rewards itself), and which rank writes
files (callers ask `is_main`).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Collective(Protocol):
    rank: int
    world_size: int

    def all_gather_object(self, obj: Any) -> list[Any]:
        """`[obj of rank 0, obj of rank 1, ...]` on every rank. A collective: every rank
        must call it, in the same order as every other collective."""
        ...

    def barrier(self) -> None:
        ...


class LocalCollective:
    """One process: gathering is wrapping, a barrier is nothing."""

    rank = 0
    world_size = 1

    def all_gather_object(self, obj: Any) -> list[Any]:
        return [obj]

    def barrier(self) -> None:
        return None


class TorchCollective:
    """The default `torch.distributed` process group, as accelerate initialised it."""

    def __init__(self) -> None:
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError("torch.distributed is not initialised: use LocalCollective for a single process")
        self._dist = dist
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()

    def all_gather_object(self, obj: Any) -> list[Any]:
        out: list[Any] = [None] * self.world_size
        self._dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        self._dist.barrier()


def is_main(collective: Collective) -> bool:
    return collective.rank == 0


def default_collective() -> Collective:
    """`TorchCollective` when a process group with more than one rank exists, else local."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return TorchCollective()
    return LocalCollective()


def env_rank() -> int:
    """This process's global rank as the launcher set it (`RANK`; 0 when not launched).

    Read from the environment, not from accelerate: asking accelerate would initialise its
    process state before the trainer does, possibly with the wrong device."""
    import os

    return int(os.environ.get("RANK", "0"))


def env_world_size() -> int:
    """How many processes the launcher started (`WORLD_SIZE`; 1 when not launched)."""
    import os

    return int(os.environ.get("WORLD_SIZE", "1"))


def per_process_batch(global_batch: int, world_size: int | None = None) -> int:
    """Each process's share of a step's rollouts, so that the global batch (and with it
    the run) does not change with the number of processes.

    >>> per_process_batch(24, 2), per_process_batch(24, 1)
    (12, 24)
    """
    world = env_world_size() if world_size is None else world_size
    if global_batch % world:
        raise ValueError(
            f"rl.prompts_per_step * rl.num_generations = {global_batch} rollouts per step cannot be split "
            f"evenly over {world} processes; choose a multiple of {world}")
    return global_batch // world
