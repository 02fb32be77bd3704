"""Who this process is among the ranks of a ``torchrun`` launch, and the process group's start and stop.

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in every process it
starts; without them occseg runs as one process and nothing here touches ``torch.distributed``. The backend is
gloo on the CPU and NCCL on CUDA, one GPU per rank (``cuda:LOCAL_RANK``): the same code runs on both.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

import torch

Backend = Literal["gloo", "nccl"]
#: the variables torchrun sets in each process it starts (``MASTER_ADDR`` / ``MASTER_PORT`` are read by torch)
TORCHRUN_VARIABLES: tuple[str, ...] = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistContext:
    """This process's place among ``world_size`` ranks; the default is one process, no process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: Backend | None = None  # None: no process group (one process)

    def __post_init__(self) -> None:
        if not (0 <= self.rank < self.world_size and self.local_rank >= 0):
            raise ValueError(f"rank {self.rank} of {self.world_size} (local rank {self.local_rank}) is not a rank")

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that merges, writes the outputs and prints."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """A process group is up (collectives talk to the other ranks)."""
        return self.backend is not None

    @property
    def comm_device(self) -> torch.device:
        """Where the tensors of the collectives live: the rank's GPU with NCCL, else the CPU."""
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")

    def shard(self, n: int) -> list[int]:
        """The indices of ``n`` items this rank handles: every ``world_size``-th from ``rank`` (round robin, so
        neighbouring items, often of similar size, spread over the ranks)."""
        return list(range(self.rank, n, self.world_size))


def torchrun_ranks(env: Mapping[str, str]) -> tuple[int, int, int] | None:
    """``(rank, world size, local rank)`` from torchrun's variables, or ``None`` when they are not all set."""
    if not all(env.get(v) for v in TORCHRUN_VARIABLES):
        return None
    try:
        rank, world, local = (int(env[v]) for v in TORCHRUN_VARIABLES)
    except ValueError as exc:
        raise ValueError(
            f"torchrun variables {', '.join(f'{v}={env[v]!r}' for v in TORCHRUN_VARIABLES)}: {exc}"
        ) from exc
    return rank, world, local


def backend_for(device: str | None) -> Backend:
    """NCCL for a CUDA device, gloo for the CPU."""
    return "nccl" if device is not None and str(device).startswith("cuda") else "gloo"


def rank_device(device: str | None, ctx: DistContext) -> str | None:
    """The device this rank computes on: ``cuda:LOCAL_RANK`` when CUDA was asked for under torchrun (one GPU per
    rank), else ``device`` as given."""
    if ctx.backend == "nccl":
        return f"cuda:{ctx.local_rank}"
    return device


def start(device: str | None, env: Mapping[str, str] | None = None) -> DistContext:
    """Join the process group when torchrun started this process (``env://`` rendezvous), else one process."""
    import torch.distributed as dist

    ranks = torchrun_ranks(os.environ if env is None else env)
    if ranks is None:
        return DistContext()
    rank, world, local = ranks
    backend = backend_for(device)
    if backend == "nccl":
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world)
    return DistContext(rank=rank, world_size=world, local_rank=local, backend=backend)


def quiet_other_ranks(ctx: DistContext) -> None:
    """Only errors are logged on the ranks other than 0 (rank 0 reports the run's notes and warnings once)."""
    import logging

    if not ctx.is_main:
        logging.getLogger().setLevel(logging.ERROR)


def stop(ctx: DistContext) -> None:
    """Leave the process group (nothing in one process)."""
    import torch.distributed as dist

    if ctx.active and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def session(device: str | None, env: Mapping[str, str] | None = None) -> Iterator[DistContext]:
    """:func:`start`, then :func:`stop` however the block ends."""
    ctx = start(device, env)
    quiet_other_ranks(ctx)
    try:
        yield ctx
    finally:
        stop(ctx)
