"""Replay a saved structure on a freshly built model, then load the weights strictly.

The architecture comes from ``config.json`` (or the factory); the manifest says which layers to
replace, which tensors have another shape or dtype and which size attributes changed. Weights load
only when every key fits, so the result computes exactly what was saved.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from importlib import import_module
from typing import Any

import torch
from torch import nn

from steelyard.compression.base import set_module
from steelyard.compression.serialization import int8_dynamic
from steelyard.compression.serialization.manifest import MANIFEST
from steelyard.compression.serialization.records import MODULE_KINDS
from steelyard.errors import CompressionError


def _resolve(spec: str) -> Any:
    module, attr = spec.split(":")
    return getattr(import_module(module), attr)


def build_replacement(rec: dict[str, Any]) -> nn.Module:
    """An empty layer of the recorded kind and size."""
    kind = rec.get("kind")
    if kind == int8_dynamic.KIND:
        return int8_dynamic.empty_layer(rec)
    if kind not in MODULE_KINDS:
        raise CompressionError(f"unknown module kind '{kind}' in {MANIFEST}; is this steelyard too old?")
    return _resolve(MODULE_KINDS[kind]).from_record(rec)


def resize(model: nn.Module, tensors: dict[str, dict[str, Any]]) -> None:
    """Give every parameter / buffer the saved shape and dtype (pruned widths, casts)."""
    for name, spec in tensors.items():
        owner_name, _, leaf = name.rpartition(".")
        try:
            owner = model.get_submodule(owner_name) if owner_name else model
        except AttributeError:
            continue
        shape, dtype = tuple(spec["shape"]), getattr(torch, spec["dtype"])
        if leaf in owner._parameters and owner._parameters[leaf] is not None:
            current = owner._parameters[leaf]
            if tuple(current.shape) != shape or current.dtype != dtype:
                owner._parameters[leaf] = nn.Parameter(
                    torch.empty(shape, dtype=dtype), requires_grad=current.requires_grad and dtype.is_floating_point
                )
        elif leaf in owner._buffers and owner._buffers[leaf] is not None:
            current = owner._buffers[leaf]
            if tuple(current.shape) != shape or current.dtype != dtype:
                owner._buffers[leaf] = torch.empty(shape, dtype=dtype)


def set_attrs(model: nn.Module, attrs: dict[str, dict[str, Any]]) -> None:
    for name, values in attrs.items():
        try:
            module = model.get_submodule(name) if name else model
        except AttributeError:
            continue
        for attr, value in values.items():
            if attr in module.__dict__:
                module.__dict__[attr] = tuple(value) if isinstance(value, list) else value


def tied_names(model: nn.Module) -> set[str]:
    """Names of parameters that share their tensor with an earlier name (tied weights)."""
    seen: set[int] = set()
    tied: set[str] = set()
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            tied.add(name)
        seen.add(id(p))
    return tied


def engine_of(manifest: dict[str, Any]) -> str:
    """The torch quantized engine the last quantizing method used (else the current one)."""
    for step in reversed(manifest.get("methods", [])):
        engine = step.get("config", {}).get("engine")
        if engine:
            return engine
    return str(torch.backends.quantized.engine)


def rebuild(model: nn.Module, manifest: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Module:
    """Replay the saved structure on a freshly built ``model`` and load ``state`` into it."""
    from steelyard.compression.quantization.engine import quantized_engine

    records = manifest.get("modules", {})
    for name in sorted(records, key=lambda n: n.count(".")):  # outer layers before their children
        set_module(model, name, build_replacement(records[name]))
    resize(model, manifest.get("tensors", {}))
    set_attrs(model, manifest.get("attrs", {}))
    for alias, original in manifest.get("aliases", {}).items():
        if original in state:
            state[alias] = state[original]
    has_int8 = any(r.get("kind") in (int8_dynamic.KIND, "int8-static-linear") for r in records.values())
    with quantized_engine(engine_of(manifest)) if has_int8 else contextlib.nullcontext():
        int8_dynamic.load_weights(model, state, records)
        ordered: Any = OrderedDict(state)
        # torch's quantized modules read their state-dict version from the metadata
        ordered._metadata = getattr(model.state_dict(), "_metadata", None)
        result = model.load_state_dict(ordered, strict=False)
    missing = [k for k in result.missing_keys if k not in tied_names(model)]
    if missing or result.unexpected_keys:
        raise CompressionError(
            "the saved weights do not fit the rebuilt model: "
            f"missing {missing[:3]}{'…' if len(missing) > 3 else ''}, "
            f"unexpected {result.unexpected_keys[:3]}{'…' if len(result.unexpected_keys) > 3 else ''}"
        )
    return model.eval()
