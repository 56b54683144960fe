"""One pass of a frozen model over a dataset, cached for training: the shared path of output caching.

A frozen encoder's embeddings (head-only fine-tuning) and a teacher's logits (distillation) never
change during training, so each is computed once per example instead of once per step. Both go
through :func:`frozen_outputs`: the model runs in eval mode (no dropout) under inference mode,
each DDP rank takes its shard and every rank gathers the whole list, so under DDP the pass costs
1/world of a single process's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from steelyard.evaluation.adapters import Adapter, Batch, Feature, call_model, iter_batches
from steelyard.evaluation.progress import progress_bar
from steelyard.training.dist import DistContext

#: What to keep of one batch's output: one row per example (float32, moved to the CPU by the caller).
Read = Callable[[Any, Batch], torch.Tensor]


def frozen_outputs(
    module: torch.nn.Module,
    adapter: Adapter,
    items: Sequence[Any],
    batch_size: int,
    dist: DistContext,
    read: Read,
    *,
    device: torch.device | str = "cpu",
    progress: bool = False,
    description: str = "caching",
    encode: bool = False,
) -> list[torch.Tensor]:
    """``read(output, batch)`` rows for every item, in order, each rank computing its shard.

    ``items`` are encoded features, or examples when ``encode`` (each rank then encodes only its
    own shard). The module's training flag is restored afterwards.
    """
    local = dist.shard(list(items))
    features: list[Feature] = adapter.encode(local) if encode and local else local
    rows: list[torch.Tensor] = []
    was = module.training
    module.eval()
    batches = iter_batches(features, batch_size) if features else []
    try:
        with torch.inference_mode(), progress_bar(description, len(batches), progress) as bar:
            for chunk in batches:
                batch = {k: v.to(device) for k, v in adapter.collate(chunk).items()}
                rows.extend(read(call_model(module, batch, adapter.positional), batch).float().cpu())
                bar.advance()
    finally:
        module.train(was)
    return dist.gather(rows, len(items))
