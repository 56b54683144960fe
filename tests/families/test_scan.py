"""Mamba's selective scan counted vectorised on meta prices exactly what transformers' per-token loop does."""

from __future__ import annotations

import contextlib

import pytest
import torch
from transformers import MambaConfig, MambaForCausalLM
from transformers.models.mamba import modeling_mamba

from steelyard.families.scan import vectorised_scans
from steelyard.models.handle import ModelHandle
from steelyard.profiling import memory
from steelyard.profiling.counter import CostCounter
from steelyard.profiling.counting import count_forward
from steelyard.profiling.memory import _saved_bytes

CONFIG = dict(hidden_size=32, num_hidden_layers=2, state_size=4, expand=2, conv_kernel=4, vocab_size=64)


def _mamba(dtype: torch.dtype, device: str = "meta") -> MambaForCausalLM:
    torch.manual_seed(0)
    with torch.device(device):
        return MambaForCausalLM(MambaConfig(**CONFIG)).to(dtype).eval()


def _per_op(result, with_bytes: bool) -> dict[str, tuple[int, ...]]:
    return {name: (s.macs, s.other_flops, *((s.bytes_moved,) if with_bytes else ()))
            for name, s in result.ops.items() if s.macs or s.other_flops or (with_bytes and s.bytes_moved)}


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_vectorised_scan_counts_what_the_per_token_loop_counts(dtype, batch):
    model = _mamba(dtype)
    ids = torch.zeros(batch, 7, dtype=torch.long, device="meta")
    with torch.inference_mode(), CostCounter(model) as slow:  # transformers' own loop, token by token
        model(input_ids=ids)
    fast = count_forward(model, {"input_ids": ids})
    loop_calls = sum(s.calls for s in slow.result.ops.values())
    assert sum(s.calls for s in fast.ops.values()) < loop_calls  # the loop did not run
    assert fast.macs == slow.result.macs > 0
    assert dict(fast.other_flops_by_category) == dict(slow.result.other_flops_by_category)
    # Per op: MACs and other FLOPs always; bytes too in float32 (below it the loop reads a float32 state).
    exact_bytes = dtype == torch.float32
    assert _per_op(fast, exact_bytes) == _per_op(slow.result, exact_bytes)
    if exact_bytes:
        assert fast.bytes_moved == slow.result.bytes_moved


def test_vectorised_scan_saves_the_same_activations_in_float32(monkeypatch):
    model = _mamba(torch.float32)
    ids = torch.zeros(1, 7, dtype=torch.long, device="meta")
    handle = ModelHandle(name="mamba", source_kind="config", task="causal-lm", module=model, inputs={"input_ids": ids})
    original = modeling_mamba.mamba_selective_scan
    saved_fast = _saved_bytes(handle)  # vectorised inside
    assert modeling_mamba.mamba_selective_scan is original  # restored on exit
    monkeypatch.setattr(memory, "vectorised_scans", contextlib.nullcontext)
    saved_slow = _saved_bytes(handle)  # transformers' loop, token by token
    assert saved_fast == saved_slow > 0


def test_real_tensors_keep_the_loop():
    model = _mamba(torch.float32, device="cpu")
    ids = torch.randint(0, 64, (1, 5))
    with torch.no_grad():
        expected = model(input_ids=ids).logits
        with vectorised_scans():
            got = model(input_ids=ids).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
