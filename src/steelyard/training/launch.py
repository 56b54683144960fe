"""Distributed data parallel: ``nproc`` local processes through torch's elastic launcher.

``finetune(..., FinetuneConfig(nproc=N))`` starts N worker processes with
``torch.distributed.launcher.api.elastic_launch`` (what ``torchrun --standalone`` does inside),
each joins a process group (gloo on CPU, nccl on GPU, one GPU per process), trains its
``DistributedSampler`` shard with gradients averaged by DDP, and rank 0 saves the model and
returns the result, in the same format as a single process. The global batch stays
``batch_size`` (each process takes ``ceil(batch_size / N)`` rows), so the step count and
schedule match a single-process run.

Several machines
----------------
Start the same command on every machine with ``torchrun``; steelyard sees torchrun's
environment (``RANK``, ``WORLD_SIZE``, ...) and joins that process group instead of launching
its own (``--nproc`` is then ignored)::

    # on each of 2 machines (4 processes each), host0 reachable from both on port 29500
    torchrun --nnodes 2 --nproc-per-node 4 \\
        --rdzv-backend c10d --rdzv-endpoint host0:29500 --rdzv-id ft-minilm-1 \\
        -m steelyard finetune <model> --data <source> --output <dir>

Every machine needs the model and data at the same paths (or hub access). Only global rank 0
writes the model folder, the ``--json`` file and the store row, so put ``--output`` and the
store (``--store postgresql://...`` or a shared path) where you want them on rank 0's machine.
Use ``--nproc-per-node`` = number of GPUs per machine on GPU nodes (nccl is picked
automatically with ``--device cuda``).
"""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.distributed.elastic.multiprocessing.errors import record

from steelyard.data.dataset import TaskDataset
from steelyard.errors import ConfigError, SteelyardError
from steelyard.models.handle import ModelHandle
from steelyard.training.config import FinetuneConfig
from steelyard.training.result import FinetuneResult


def available_cpus() -> int:
    """CPUs this process may run on (the affinity mask, which containers restrict)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def check_nproc(cfg: FinetuneConfig) -> None:
    """``nproc`` must fit the machine: one CPU core (CPU) or one GPU (CUDA) per process."""
    if cfg.device.startswith("cuda"):
        import torch

        gpus = torch.cuda.device_count()
        if cfg.nproc > gpus:
            raise ConfigError(f"--nproc {cfg.nproc} needs {cfg.nproc} GPUs but this machine has {gpus}")
        return
    cpus = available_cpus()
    if cfg.nproc > cpus:
        raise ConfigError(
            f"--nproc {cfg.nproc} is more than the {cpus} CPU cores available here; use at most --nproc {cpus}, "
            "or run on several machines with torchrun (see `steelyard finetune --help`)"
        )


@dataclass
class WorkerPayload:
    handle: ModelHandle
    dataset: TaskDataset
    config: FinetuneConfig
    output: Path | None
    threads: int


@dataclass
class WorkerReturn:
    rank: int
    result: FinetuneResult | None
    error: tuple[str, str, str] | None = None


@record
def ddp_worker(payload: WorkerPayload) -> WorkerReturn:
    """Entry point of each process the launcher starts (module level so it can be pickled)."""
    import torch
    import torch.distributed as torch_dist

    from steelyard.training.dist import context_from_env, pick_backend
    from steelyard.training.finetune import run_process

    torch.set_num_threads(payload.threads)
    quiet_worker()
    cfg = payload.config
    dist = context_from_env(pick_backend(cfg.backend, cfg.device))
    try:
        result = run_process(payload.handle, payload.dataset, cfg, payload.output, dist)
        # The module stays in the worker: the parent loads the saved folder instead.
        result.trained = None
        return WorkerReturn(dist.rank, result if dist.main else None)
    except SteelyardError as exc:
        cls = type(exc)
        return WorkerReturn(dist.rank, None, (cls.__module__, cls.__name__, str(exc)))
    finally:
        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def quiet_worker() -> None:
    """Workers are fresh interpreters: silence transformers there as the CLI does in the parent."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def quiet_launcher_logs() -> None:
    import logging

    for name in ("torch.distributed.elastic", "torch.distributed.launcher"):
        logging.getLogger(name).setLevel(logging.ERROR)


def reraise(error: tuple[str, str, str]) -> None:
    module, name, message = error
    try:
        cls: Any = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        cls = SteelyardError
    raise cls(message)


def run_on_local_processes(worker: Callable[[Any], Any], payload: Any, nproc: int, what: str) -> list[Any]:
    """Start ``nproc`` processes with torch's elastic launcher, each calling ``worker(payload)``.

    Returns the workers' return values ordered by rank. A worker reports a SteelyardError as an
    ``error`` tuple on its return value (exceptions do not cross the process boundary intact), and
    it is raised again here with its own class, so bad input fails the same way as in one process.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    quiet_launcher_logs()
    launch_cfg = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"steelyard-{uuid.uuid4().hex[:8]}",
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=0.1,
        start_method="spawn",
    )
    try:
        returns = elastic_launch(launch_cfg, worker)(payload)
    except ChildFailedError as exc:
        failure = next(iter(exc.failures.values()))
        message = failure.message
        if isinstance(message, dict):
            message = message.get("message", {}).get("message", str(message))
        first = str(message).strip().splitlines()[0] if str(message).strip() else "unknown failure"
        raise RuntimeError(f"a {what} process failed (exit code {failure.exitcode}): {first}") from exc
    ordered = [returns[r] for r in sorted(returns)]
    for ret in ordered:
        if getattr(ret, "error", None) is not None:
            reraise(ret.error)
    return ordered


def threads_per_process(nproc: int) -> int:
    return max(1, available_cpus() // nproc)


def launch(handle: ModelHandle, dataset: TaskDataset, cfg: FinetuneConfig, output: Path | None) -> FinetuneResult:
    """Run :func:`~steelyard.training.finetune.run_process` on ``cfg.nproc`` local processes."""
    payload = WorkerPayload(handle, dataset, cfg, output, threads_per_process(cfg.nproc))
    ordered = run_on_local_processes(ddp_worker, payload, cfg.nproc, "training")
    main = next((r.result for r in ordered if r.result is not None), None)
    if main is None:
        raise RuntimeError("distributed training finished but rank 0 returned no result")
    return main
