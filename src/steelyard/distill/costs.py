"""Size and counted FLOPs of teacher and student on the same harness: batch 1, ``max_length`` tokens.

Both models are counted on identical inputs (random token ids of the run's maximum length, or one
image at the model's size), so the FLOPs ratio compares the architectures, not the data.
"""

from __future__ import annotations

from typing import Any

import torch

from steelyard.distill.result import ModelCost
from steelyard.evaluation.adapters import Adapter, TextAdapter
from steelyard.families import config_int, find_blocks
from steelyard.models.handle import ModelHandle
from steelyard.models.tasks import InputSpec, make_inputs
from steelyard.units import Flops


def counting_inputs(handle: ModelHandle, task: str, adapter: Adapter) -> tuple[Any, int | None]:
    """Batch-1 inputs for counting: ``max_length`` tokens for text (a causal LM's block), the model's
    image for vision."""
    config = getattr(handle.module, "config", None) or handle.config
    seq = adapter.max_length if isinstance(adapter, TextAdapter) else getattr(adapter, "block_size", None)
    if handle.source_kind == "factory" or config is None or not getattr(config, "model_type", None):
        return handle.inputs_for_batch(1), seq
    spec = InputSpec(batch_size=1, seq_len=seq or 128)
    return make_inputs(config, task, spec, handle.device), seq


def model_cost(handle: ModelHandle, task: str, adapter: Adapter) -> ModelCost:
    """Parameters (tied weights once) and one counted forward at batch 1."""
    from steelyard.profiling.counting import count_forward
    from steelyard.profiling.weigh import weigh

    inputs, seq = counting_inputs(handle, task, adapter)
    counted = count_forward(handle.module, inputs)
    found = find_blocks(handle.module)
    config = getattr(handle.module, "config", None) or handle.config
    depth = config_int(config, "layers")
    layers = len(found) if found is not None else (depth[1] if depth else None)
    return ModelCost(weigh(handle.module).parameters.total, Flops(float(counted.flops)), seq, layers)


def student_handle(module: torch.nn.Module, like: ModelHandle, name: str, task: str) -> ModelHandle:
    """A handle for the trained student that finds its preprocessing where ``like`` (the model whose
    tokenizer / image settings it uses) keeps them."""
    config = getattr(module, "config", None)
    inputs = like.inputs_for_batch(1)
    if config is not None and getattr(config, "model_type", None) and like.source_kind != "factory":
        inputs = make_inputs(config, task, InputSpec(batch_size=1, seq_len=16), like.device)
    return ModelHandle(name=name, source_kind=like.source_kind, task=task, module=module, inputs=inputs,
                       config=config if config is not None else like.config, path=like.path)
