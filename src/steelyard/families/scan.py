"""Selective scans of Mamba-style models, counted on meta without a Python loop per token.

Without the CUDA kernels, transformers' Mamba (and Falcon-Mamba) run the selective scan as a Python loop
over the sequence: per token one multiply and one add of the (batch, inner, state) state and one
(inner × state) @ (state × 1) matmul, then a ``stack`` of the outputs. Counted at the aten level on meta
that is ~4 dispatched ops per token per layer, ~50 k ops for Mamba-2.8B at 128 tokens, and the counter's
Python cost per op makes a config-only profile take tens of seconds.

On meta there are no values to carry from one step to the next, so :func:`vectorised_scans` replaces the
loop by the same tensor work done once over the whole sequence: the multiply and the add over
(batch, inner, seq, state), one batched matmul per batch row over all tokens, and a ``stack`` that reads
and writes the same bytes as the per-token one. The priced work (MACs and other FLOPs per op, bytes moved)
is identical; only the number of dispatched calls shrinks. Real tensors keep transformers' own function
(their values matter), and so does everything outside :func:`vectorised_scans`.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F

#: transformers modules whose ``mamba_selective_scan`` runs the per-token loop off CUDA.
SCAN_MODULES = ("transformers.models.mamba.modeling_mamba", "transformers.models.falcon_mamba.modeling_falcon_mamba")


def meta_selective_scan(
    hidden_states: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    **_: Any,
) -> Any:
    """transformers' recurrent ``mamba_selective_scan`` with its token loop done as one vectorised step.

    Same signature and shapes as the original; shapes only (the previous state each step reads is a zero
    state broadcast over the sequence), so it is used on meta tensors alone.
    """
    batch_size, intermediate_size, seq_len = hidden_states.shape
    input_dtype = hidden_states.dtype
    if delta_bias is not None:
        dt = dt + delta_bias.to(dt.dtype)[..., None]
    if delta_softplus:
        dt = F.softplus(dt)
    B = B.transpose(1, 2)
    C = C.transpose(1, 2)
    discrete_A = torch.exp(A[None, :, None, :] * dt[:, :, :, None])
    discrete_B = dt[:, :, :, None] * B[:, None, :, :].float()
    deltaB_u = discrete_B * hidden_states[:, :, :, None].float()

    ssm_state = torch.zeros(batch_size, intermediate_size, A.shape[-1], dtype=input_dtype, device=hidden_states.device)
    # The state each step reads, broadcast over the sequence (a view: no bytes). The loop reads it in the
    # input dtype at the first step and in float32 after; below float32 this prices the reads of steps
    # 2..L at the input dtype (fewer bytes moved); the FLOPs are the same.
    previous = ssm_state[:, :, None, :].expand(-1, -1, seq_len, -1)
    full = discrete_A * previous + deltaB_u  # seq × the loop's mul and add
    states = full.to(input_dtype)  # the loop's per-token ``ssm_state.to(input_dtype)``
    # One (L, I, N) @ (L, N, 1) batched matmul per batch row: the loop's L matmuls, no reshape copies.
    rows = [torch.matmul(states[b].transpose(0, 1), C[b, :, :, None])[..., 0].transpose(0, 1)
            for b in range(batch_size)]
    scan_output = torch.stack(rows, dim=0)  # reads and writes B·I·L elements, as the loop's stack over tokens

    if D is not None:
        scan_output = scan_output + hidden_states * D[None, :, None]
    if z is not None:
        scan_output = scan_output * F.silu(z)
    if return_last_state:
        return scan_output, full[:, :, -1]
    return scan_output


def _on_meta(module: Any, original: Callable[..., Any]) -> Callable[..., Any]:
    """``original`` off meta, and on meta where it would not loop (mambapy's parallel scan installed and asked for)."""

    def scan(hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        parallel = kwargs.get("use_mambapy") and getattr(module, "is_mambapy_available", lambda: False)()
        if hidden_states.device.type == "meta" and not parallel:
            return meta_selective_scan(hidden_states, *args, **kwargs)
        return original(hidden_states, *args, **kwargs)

    scan.__wrapped__ = original  # type: ignore[attr-defined]
    return scan


@contextlib.contextmanager
def vectorised_scans() -> Iterator[None]:
    """While open, transformers' Mamba selective scans on meta tensors run as :func:`meta_selective_scan`.

    Only modules already imported are patched (a model using them has imported them); each is restored on exit.
    """
    patched: list[tuple[Any, Callable[..., Any]]] = []
    for name in SCAN_MODULES:
        module = sys.modules.get(name)
        original = getattr(module, "mamba_selective_scan", None)
        if original is not None:
            patched.append((module, original))
            module.mamba_selective_scan = _on_meta(module, original)  # type: ignore[union-attr]
    try:
        yield
    finally:
        for module, original in patched:
            module.mamba_selective_scan = original
