"""Data-parallel training on torch.distributed, launched by torchrun.

``torchrun --nproc-per-node N -m letras.core run CONFIG`` starts N processes with RANK,
WORLD_SIZE and LOCAL_RANK in their environment; ``letras run`` then trains on all of them.
The core sets up the process group (gloo on the CPU, nccl on CUDA) and makes sure only rank 0
writes the run folder; the trainer shards each batch across the ranks.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any


@dataclasses.dataclass(frozen=True)
class World:
    """Where this process stands among the processes that train together."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes the run folder and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world_from_env(env: Any = None) -> World:
    """The world torchrun describes in the environment (one process when it does not)."""
    env = os.environ if env is None else env
    try:
        return World(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))
    except ValueError:
        return World()


def device_for(world: World, spec: str) -> str:
    """Each process on a machine takes its own GPU: ``auto`` and ``cuda`` become cuda:LOCAL_RANK."""
    if not world.distributed:
        return spec
    import torch

    if spec == "cuda" or (spec == "auto" and torch.cuda.is_available()):
        return f"cuda:{world.local_rank}"
    return spec


def init(world: World, device: Any) -> None:
    """Join the process group: nccl between GPUs, gloo between CPUs."""
    import torch.distributed as dist

    if world.distributed and not dist.is_initialized():
        backend = "nccl" if getattr(device, "type", str(device)).startswith("cuda") else "gloo"
        if backend == "nccl":
            import torch

            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=world.rank, world_size=world.size)


def shutdown() -> None:
    """Leave the process group. A DistributedDataParallel wrapper sits in a reference cycle
    and its reducer holds the group: collected only later, at the interpreter's exit, it takes
    the group down while the interpreter is half gone, where gloo may abort the process."""
    import gc

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        gc.collect()  # free such wrappers while everything they hold still works
        dist.destroy_process_group()


def all_reduce_sum(value: Any) -> Any:
    """The sum of ``value`` (a tensor) over every process; the value itself with one process."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
