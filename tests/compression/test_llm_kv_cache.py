"""KV-cache memory per sequence: the float cache weighed exactly; the quantized one where a backend exists."""

from __future__ import annotations

import importlib.util

import pytest
from llm_toys import tiny_llama

from steelyard.compression import BackendUnavailableError
from steelyard.compression.quantization.kv_cache import kv_memory


def quanto_installed() -> bool:
    try:
        return importlib.util.find_spec("optimum.quanto") is not None
    except ModuleNotFoundError:
        return False


def test_float_cache_bytes_are_layers_x_kv_heads_x_head_dim_x_tokens():
    handle = tiny_llama(batch=2, seq=6)
    c = handle.module.config
    kv = kv_memory(handle.module, handle.inputs["input_ids"], 5)
    assert kv.tokens == 6 + 5 - 1 and kv.generated.shape == (2, 5)
    head_dim = c.hidden_size // c.num_attention_heads
    # keys + values, every layer, only the KV heads (GQA: 2 of 4), float32
    assert kv.bytes_per_token == 2 * c.num_hidden_layers * c.num_key_value_heads * head_dim * 4


@pytest.mark.skipif(not quanto_installed(), reason="optimum-quanto is not installed (the kv extra)")
def test_quantized_cache_is_smaller():
    handle = tiny_llama(batch=1, seq=8, max_position_embeddings=256)
    ids = handle.inputs["input_ids"]
    float_kv = kv_memory(handle.module, ids, 80)
    int4 = kv_memory(handle.module, ids, 80, nbits=4, residual_length=16)
    assert int4.bytes_per_sequence < 0.4 * float_kv.bytes_per_sequence  # measured 5.4x smaller at 207 tokens


@pytest.mark.skipif(quanto_installed(), reason="optimum-quanto is installed")
def test_missing_backend_names_the_package():
    handle = tiny_llama(batch=1, seq=4)
    with pytest.raises(BackendUnavailableError, match="pip install optimum-quanto"):
        kv_memory(handle.module, handle.inputs["input_ids"], 2, nbits=4)
