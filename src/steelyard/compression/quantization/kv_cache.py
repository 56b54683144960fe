"""KV-cache quantization: the memory one generated sequence holds, float vs transformers' quantized cache.

The KV cache is a runtime structure, not part of the saved model, so this is a measurement helper
rather than a registered transform: it runs a fixed-length greedy ``generate`` with a float
``DynamicCache`` or with transformers' ``QuantizedCache`` (int4 / int2 codes; the newest
``residual_length`` tokens stay float) and weighs the tensors the cache holds afterwards. The
quantized cache needs a backend: ``optimum-quanto`` (the one measured here) or ``hqq``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from steelyard.compression.base import BackendUnavailableError

BACKEND_MODULES = {"quanto": "optimum.quanto", "hqq": "hqq"}
BACKEND_PACKAGES = {"quanto": "optimum-quanto", "hqq": "hqq"}
_CACHE_TENSORS = ("keys", "values", "_quantized_keys", "_quantized_values")


@dataclass(frozen=True)
class KVMemory:
    """What the cache of one sequence holds after ``tokens`` tokens (prompt + generated)."""

    bytes_per_sequence: float
    tokens: int
    nbits: int | None  # None: the float cache
    generated: torch.Tensor  # the greedy tokens, to compare with the float cache's

    @property
    def bytes_per_token(self) -> float:
        return self.bytes_per_sequence / self.tokens


def tensor_bytes(t: Any) -> int:
    """Bytes a tensor holds, looking inside tensor subclasses (quanto's QTensor: codes, scales, shifts)."""
    if not isinstance(t, torch.Tensor):
        return 0
    flatten = getattr(type(t), "__tensor_flatten__", None)
    if flatten is not None:
        names, _ = t.__tensor_flatten__()
        return sum(tensor_bytes(getattr(t, n)) for n in names)
    return t.numel() * t.element_size()


def cache_bytes(cache: Any) -> int:
    """Bytes held by every layer of a transformers cache (float keys / values and quantized ones)."""
    return sum(tensor_bytes(getattr(layer, name, None)) for layer in cache.layers for name in _CACHE_TENSORS)


def require_backend(backend: str) -> None:
    module = BACKEND_MODULES.get(backend)
    if module is None:
        raise BackendUnavailableError(f"KV-cache backend must be one of {', '.join(BACKEND_MODULES)}, got {backend!r}")
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        raise BackendUnavailableError(f"KV-cache quantization with {backend} needs {BACKEND_PACKAGES[backend]}: "
                                      f"pip install {BACKEND_PACKAGES[backend]}")  # fmt: skip


def kv_memory(model: nn.Module, input_ids: torch.Tensor, new_tokens: int, *, nbits: int | None = None,
              backend: str = "quanto", residual_length: int = 32, group_size: int = 64) -> KVMemory:  # fmt: skip
    """Generate ``new_tokens`` greedily for a batch of prompts and weigh the cache per sequence."""
    from transformers import DynamicCache, QuantizedCache

    if nbits is None:
        cache: Any = DynamicCache(config=model.config)
    else:
        require_backend(backend)
        cache = QuantizedCache(backend, model.config, nbits=nbits, q_group_size=group_size,
                               residual_length=residual_length)  # fmt: skip
    with torch.inference_mode():
        out = model.generate(input_ids, cache=cache, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                             do_sample=False, attention_mask=torch.ones_like(input_ids))  # fmt: skip
    batch = input_ids.shape[0]
    tokens = int(out.shape[1]) - 1  # the last token is generated but never written to the cache
    return KVMemory(cache_bytes(cache) / batch, tokens, nbits, out[:, input_ids.shape[1]:])
