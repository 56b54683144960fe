"""A model's structure as plain data: replaced layers, tensor shapes and dtypes, structural attributes."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from steelyard.compression.serialization import int8_dynamic
from steelyard.compression.serialization.manifest import dtype_name
from steelyard.families import SURGERY_ATTRS

#: Module attributes that carry sizes (pruning changes them; the loader sets them back).
STRUCT_ATTRS = (
    "in_features",
    "out_features",
    "in_channels",
    "out_channels",
    "groups",
    "num_features",
    "normalized_shape",
    "num_attention_heads",
    "all_head_size",
    "attention_head_size",
    "num_heads",
    "head_dim",
    *SURGERY_ATTRS,
)
#: Replacement layers by record kind ("module:Class" with ``from_record``); int8 dynamic is separate.
MODULE_KINDS = {
    "low-rank-linear": "steelyard.compression.low_rank.svd:FactorizedLinear",
    "low-rank-conv2d": "steelyard.compression.low_rank.svd:FactorizedConv2d",
    "weight-only-linear": "steelyard.compression.quantization.lowbit:WeightOnlyLinear",
    "int8-static-linear": "steelyard.compression.quantization.modules:StaticQuantLinear",
    "int8-embedding": "steelyard.compression.quantization.modules:QuantizedEmbedding",
}


def module_records(model: nn.Module) -> dict[str, dict[str, Any]]:
    """Replaced layers by path: what the loader must build instead of the config's own layer."""
    dynamic = int8_dynamic.linear_type()
    records: dict[str, dict[str, Any]] = {}
    for name, m in model.named_modules():
        if isinstance(m, dynamic):
            records[name] = int8_dynamic.record(m)
        elif callable(getattr(m, "steelyard_record", None)) and name:
            records[name] = m.steelyard_record()
    return records


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with int8 dynamic Linear layers as plain tensors (codes, scales, zero points)."""
    state = model.state_dict()
    int8_dynamic.plain_tensors(model, state)
    return {k: v.detach().cpu().contiguous() for k, v in state.items() if isinstance(v, torch.Tensor)}


def tensor_specs(state: dict[str, torch.Tensor]) -> dict[str, dict[str, Any]]:
    return {k: {"shape": list(v.shape), "dtype": dtype_name(v.dtype)} for k, v in state.items()}


def structural_attrs(model: nn.Module) -> dict[str, dict[str, Any]]:
    attrs: dict[str, dict[str, Any]] = {}
    for name, m in model.named_modules():
        found = {}
        for attr in STRUCT_ATTRS:
            value = m.__dict__.get(attr)
            if isinstance(value, int) and not isinstance(value, bool):
                found[attr] = value
            elif isinstance(value, tuple) and all(isinstance(v, int) for v in value):
                found[attr] = list(value)
        if found:
            attrs[name] = found
    return attrs
