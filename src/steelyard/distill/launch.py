"""Distillation under DDP: ``nproc`` local processes, as :mod:`steelyard.training.launch` does for
fine-tuning (elastic launcher, gloo on CPU / nccl on GPU, global batch split over processes).

Each worker rebuilds the plan (deterministic: same seed, same student), caches its shard of the
teacher's logits and gathers the rest, and trains under DDP; rank 0 writes the trained weights to
a staging file that the calling process loads. Evaluation, counting and saving then happen once,
in the calling process, exactly as after a single-process run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch.distributed.elastic.multiprocessing.errors import record

from steelyard.data.dataset import TaskDataset
from steelyard.distill.config import DistillConfig
from steelyard.distill.train import DistillOutcome
from steelyard.errors import SteelyardError
from steelyard.models.handle import ModelHandle
from steelyard.training.launch import quiet_worker, run_on_local_processes, threads_per_process

STATE_FILE = "student.safetensors"


@dataclass
class DistillPayload:
    teacher: ModelHandle
    student: str | ModelHandle
    dataset: TaskDataset
    config: DistillConfig
    staging: Path
    threads: int


@dataclass
class DistillReturn:
    rank: int
    outcome: DistillOutcome | None
    digests: list[str]
    error: tuple[str, str, str] | None = None


@record
def distill_worker(payload: DistillPayload) -> DistillReturn:
    """Entry point of each process the launcher starts (module level so it can be pickled)."""
    import torch
    import torch.distributed as torch_dist

    from steelyard.distill.plan import plan_run, train_process
    from steelyard.training.dist import context_from_env, pick_backend, weights_digest

    torch.set_num_threads(payload.threads)
    quiet_worker()
    cfg = payload.config
    dist = context_from_env(pick_backend(cfg.train.backend, cfg.train.device))
    try:
        plan = plan_run(payload.teacher, payload.student, payload.dataset, cfg)
        outcome = train_process(plan, cfg, dist)
        digests = dist.all_objects(weights_digest(plan.student.module))
        if dist.main:
            from safetensors.torch import save_model

            save_model(plan.student.module, str(payload.staging / STATE_FILE))
        dist.barrier()
        outcome.best_state = None  # the weights travel through the staging file
        return DistillReturn(dist.rank, outcome if dist.main else None, digests)
    except SteelyardError as exc:
        cls = type(exc)
        return DistillReturn(dist.rank, None, [], (cls.__module__, cls.__name__, str(exc)))
    finally:
        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def launch_distill(teacher: ModelHandle, student: str | ModelHandle, dataset: TaskDataset, cfg: DistillConfig,
                   staging: Path) -> tuple[DistillOutcome, list[str]]:
    """Train on ``cfg.train.nproc`` local processes; returns rank 0's outcome and every rank's digest."""
    nproc = cfg.train.nproc
    payload = DistillPayload(teacher, student, dataset, cfg, staging, threads_per_process(nproc))
    ordered = run_on_local_processes(distill_worker, payload, nproc, "distillation")
    main = next((r for r in ordered if r.outcome is not None), None)
    if main is None or main.outcome is None:
        raise RuntimeError("distributed distillation finished but rank 0 returned no result")
    return main.outcome, main.digests
