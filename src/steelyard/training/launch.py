"""The one launcher of every training workflow: a single process, ``nproc`` local processes, or torchrun.

:func:`process_group` says where a call runs: in torchrun's process group when torchrun started
it, in a world of one when ``nproc`` is 1, or nowhere yet (None): then :func:`launch` runs the
workflow's per-process function on ``nproc`` processes and returns rank 0's value. Fine-tuning
and distillation both go through it.

``finetune(..., FinetuneConfig(nproc=N))`` (or ``distill`` with ``train.nproc=N``) starts N worker processes with
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
from typing import Any

from torch.distributed.elastic.multiprocessing.errors import record

from steelyard.errors import ConfigError, SteelyardError
from steelyard.training.config import FinetuneConfig
from steelyard.training.dist import DistContext, context_from_env, launched_by_torchrun, pick_backend


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


#: A workflow's per-process function: ``process(*args, dist)``, defined at module level (it is
#: pickled by reference into each spawned worker).
Process = Callable[..., Any]


@dataclass
class WorkerPayload:
    process: Process
    args: tuple[Any, ...]
    backend: str
    threads: int


@dataclass
class WorkerReturn:
    rank: int
    value: Any
    error: tuple[str, str, str] | None = None


@record
def ddp_worker(payload: WorkerPayload) -> WorkerReturn:
    """Entry point of each process the launcher starts: join the group, run the workflow's share."""
    import torch
    import torch.distributed as torch_dist

    torch.set_num_threads(payload.threads)
    quiet_worker()
    dist = context_from_env(payload.backend)
    try:
        value = payload.process(*payload.args, dist)
        return WorkerReturn(dist.rank, value if dist.main else None)
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


def process_group(cfg: FinetuneConfig) -> DistContext | None:
    """Where this call trains: torchrun's group, a world of one, or None when ``cfg.nproc`` processes
    must be launched (:func:`launch`)."""
    if launched_by_torchrun():
        return context_from_env(pick_backend(cfg.backend, cfg.device))
    if cfg.nproc > 1:
        return None
    return DistContext()


def launched_context(cfg: FinetuneConfig) -> DistContext:
    """The world a :func:`launch` ran in, as seen from the calling process."""
    return DistContext(world=cfg.nproc, backend=pick_backend(cfg.backend, cfg.device))


def nproc_ignored(cfg: FinetuneConfig, dist: DistContext) -> str | None:
    """A note when torchrun started another number of processes than ``--nproc`` asked for."""
    if launched_by_torchrun() and cfg.nproc not in (1, dist.world):
        return f"--nproc {cfg.nproc} ignored: torchrun started {dist.world} processes"
    return None


def launch(process: Process, args: tuple[Any, ...], cfg: FinetuneConfig, what: str = "training") -> Any:
    """Run ``process(*args, dist)`` on ``cfg.nproc`` local processes; returns rank 0's value.

    A SteelyardError in a worker is raised here again with its own class.
    """
    check_nproc(cfg)
    payload = WorkerPayload(process, args, pick_backend(cfg.backend, cfg.device), threads_per_process(cfg.nproc))
    ordered = run_on_local_processes(ddp_worker, payload, cfg.nproc, what)
    main = next((r for r in ordered if r.rank == 0), None)
    if main is None or main.value is None:
        raise RuntimeError(f"distributed {what} finished but rank 0 returned no result")
    return main.value
