"""The process group a training run lives in: rank, world size, and collectives on Python objects.

A single process is a world of one, so the training loop has one code path; ``shard`` and
``gather`` let every rank do a slice of the evaluation work and all see the same numbers, which
keeps early-stopping and target decisions identical on every rank.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's share: every ``world``-th item starting at ``rank``."""
        return list(items[self.rank :: self.world])

    def gather(self, local: list[Any], n: int) -> list[Any]:
        """Undo :meth:`shard`: every rank's share back in the original order (all ranks get all)."""
        if not self.distributed:
            return local
        import torch.distributed as dist

        parts: list[Any] = [None] * self.world
        dist.all_gather_object(parts, local)
        out: list[Any] = [None] * n
        for rank, part in enumerate(parts):
            out[rank :: self.world] = part
        return out

    def all_objects(self, value: Any) -> list[Any]:
        """``value`` from every rank, in rank order."""
        if not self.distributed:
            return [value]
        import torch.distributed as dist

        parts: list[Any] = [None] * self.world
        dist.all_gather_object(parts, value)
        return parts

    def sync_buffers(self, module: torch.nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

        DDP syncs parameters through gradients and broadcasts buffers only at the start of each
        forward, so after the last step each rank holds running statistics of its own shard.
        Validating or saving without this would use slightly different models per rank.
        """
        if self.distributed:
            import torch.distributed as dist

            for buffer in module.buffers():
                dist.broadcast(buffer.data, src=0)

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()


def launched_by_torchrun() -> bool:
    """True inside a process started by torchrun / the elastic agent with more than one rank."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def context_from_env(backend: str) -> DistContext:
    """Join (or reuse) the process group described by torchrun's environment variables."""
    import datetime as dt

    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=dt.timedelta(minutes=30))
    return DistContext(
        rank=dist.get_rank(),
        world=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        backend=dist.get_backend(),
    )


def pick_backend(requested: str, device: str) -> str:
    """nccl for CUDA, gloo for CPU, unless one was asked for."""
    if requested != "auto":
        return requested
    return "nccl" if device.startswith("cuda") and torch.cuda.is_available() else "gloo"


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 over every parameter and buffer, in name order: equal digests, equal weights."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]
