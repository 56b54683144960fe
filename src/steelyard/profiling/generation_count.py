"""Count what generating text costs, phase by phase: the prefill, and one decode step per context length.

The model's own forward runs under the counter (meta device or real weights alike):

* **prefill**: the prompt of ``P`` tokens with ``use_cache=True`` (logits for the last position only,
  as ``generate()`` asks), filling a transformers ``DynamicCache``;
* **decode**: one token fed against that cache at a few context lengths ``L`` along the generation
  (the cache is grown, uncounted, between samples). Attention work is linear in ``L``, so the other
  positions are interpolated piecewise-linearly between the counted ones.

Bytes are a serving model, not the counter's unfused upper bound (kept as ``op_bytes``): a step
reads every weight once (the input embedding table only for the rows it looks up), reads the KV
cache of the current context and writes the new positions; the KV sizes come from the real cache
tensors. Counting is done at batch 1; :meth:`PhaseCost.at_batch` scales it (FLOPs and KV by the
batch, weights once; for mixture-of-experts models the expert weights touched grow with the batch,
see :func:`expert_fraction`).
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from typing import Any

import torch

from steelyard.errors import ConfigError, InputShapeError
from steelyard.families.blocks import max_positions
from steelyard.models.handle import ModelHandle
from steelyard.profiling.counting import call, count_forward
from steelyard.profiling.generation_config import GenerationWorkload
from steelyard.profiling.generation_report import DecodePoint, GenerationCount, MixtureOfExperts, PhaseCost
from steelyard.units import Bytes, Flops

#: Config keys for the expert count and the experts each token is routed to (Mixtral, Qwen-MoE, DeepSeek).
_EXPERTS = ("num_local_experts", "num_experts", "n_routed_experts")
_PER_TOKEN = ("num_experts_per_tok", "moe_top_k", "top_k")


#: Tasks whose head generates tokens (``generate()``): decoder-only and encoder-decoder LMs.
GENERATIVE_TASKS = frozenset({"causal-lm", "seq2seq-lm", "speech-seq2seq"})


def is_encoder_decoder(handle: ModelHandle) -> bool:
    return bool(getattr(handle.config, "is_encoder_decoder", False))


def check_generative(handle: ModelHandle, workload: GenerationWorkload) -> None:
    """Refuse, in one line, a model that cannot generate or a request longer than its positions."""
    config = handle.config
    if handle.task not in GENERATIVE_TASKS or not hasattr(handle.module, "generate"):
        hint = " (an encoder-decoder: --task seq2seq-lm or speech-seq2seq)" if is_encoder_decoder(handle) else ""
        raise ConfigError(f"--new-tokens needs a generative (causal-lm) model; {handle.name} is "
                          f"{handle.task}{hint}")
    if is_encoder_decoder(handle):
        return  # the encoder's and the decoder's limits: generation_seq2seq.check_encoder_decoder
    limit = max_positions(config) if config is not None else None
    if limit is not None and workload.total_tokens > limit:
        raise ConfigError(
            f"--prompt-len {workload.prompt_len} + --new-tokens {workload.new_tokens} = {workload.total_tokens} "
            f"positions, but {handle.name} holds at most {limit}"
        )


def cache_bytes(cache: Any) -> int:
    """Bytes held by a transformers cache: every tensor of every layer (keys, values, states)."""
    total = 0
    for layer in getattr(cache, "layers", []) or []:
        for value in vars(layer).values():
            if isinstance(value, torch.Tensor):
                total += value.numel() * value.element_size()
    return total


def cache_kwarg(module: torch.nn.Module) -> str:
    params = inspect.signature(module.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _step_inputs(module: torch.nn.Module, tokens: int, device: Any, cache: Any) -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "input_ids": torch.ones(1, tokens, dtype=torch.long, device=device),
        cache_kwarg(module): cache,
        "use_cache": True,
    }
    if "logits_to_keep" in inspect.signature(module.forward).parameters:
        inputs["logits_to_keep"] = 1  # as generate() asks: logits of the last position only
    return inputs


def _new_cache(module: torch.nn.Module) -> Any:
    from transformers import DynamicCache

    try:
        return DynamicCache(config=module.config)
    except TypeError:  # older signature
        return DynamicCache()


def _weights(module: torch.nn.Module) -> tuple[int, int]:
    """(bytes of every parameter and buffer counted once, bytes of an input embedding table not read whole)."""
    seen: set[int] = set()
    total = 0
    for tensor in [*module.parameters(), *module.buffers()]:
        if id(tensor) in seen or not tensor.is_floating_point():
            continue
        seen.add(id(tensor))
        total += tensor.numel() * tensor.element_size()
    table = 0
    get_in = getattr(module, "get_input_embeddings", None)
    get_out = getattr(module, "get_output_embeddings", None)
    emb = get_in() if callable(get_in) else None
    out = get_out() if callable(get_out) else None
    weight = getattr(emb, "weight", None)
    if isinstance(weight, torch.Tensor) and (out is None or getattr(out, "weight", None) is not weight):
        table = weight.numel() * weight.element_size()  # a lookup reads B rows, not the table
    return total, table


def total_weight_bytes(module: torch.nn.Module) -> Bytes:
    """Bytes of every weight the device holds (tied tensors once, the embedding table and every expert)."""
    return Bytes(_weights(module)[0])


def mixture_of_experts(module: torch.nn.Module) -> MixtureOfExperts | None:
    """Expert count, experts per token and expert weight bytes, when the config declares experts."""
    config = getattr(module, "config", None)
    experts = next((getattr(config, k) for k in _EXPERTS if isinstance(getattr(config, k, None), int)), 0)
    per_token = next((getattr(config, k) for k in _PER_TOKEN if isinstance(getattr(config, k, None), int)), 0)
    if experts <= 1 or per_token <= 0:
        return None
    expert_bytes = sum(p.numel() * p.element_size() for name, p in module.named_parameters() if ".experts." in
                       f".{name}")
    return MixtureOfExperts(experts, per_token, Bytes(expert_bytes)) if expert_bytes else None


def _counted(module: torch.nn.Module, inputs: dict[str, Any], cache: Any, causal: str, weight_bytes: float,
             tokens: int) -> PhaseCost:
    before = cache_bytes(cache)
    result = count_forward(module, inputs, causal_attention=causal)  # type: ignore[arg-type]
    after = cache_bytes(cache)
    return PhaseCost(
        tokens=tokens,
        flops=Flops(result.flops),
        other_flops=Flops(result.other_flops),
        weight_bytes=Bytes(weight_bytes),
        kv_read=Bytes(before),
        kv_written=Bytes(max(after - before, 0)),
        op_bytes=Bytes(result.bytes_moved),
    )


def sample_contexts(prompt_len: int, new_tokens: int, samples: int) -> list[int]:
    """Evenly spaced cache lengths over the decode steps (first and last included)."""
    steps = max(new_tokens - 1, 0)
    if steps == 0:
        return []
    first, last = prompt_len, prompt_len + steps - 1
    if steps <= samples:
        return list(range(first, last + 1))
    return sorted({round(first + i * (last - first) / (samples - 1)) for i in range(samples)})


def count_generation(handle: ModelHandle, workload: GenerationWorkload,
                     causal_attention: str = "full") -> GenerationCount:
    """Count the prefill and the decode steps of ``workload`` on ``handle`` (batch 1; see :class:`PhaseCost`).

    An encoder-decoder is counted by :func:`~steelyard.profiling.generation_seq2seq.count_encoder_decoder`.
    """
    check_generative(handle, workload)
    module, device = handle.module, handle.device
    total, table = _weights(module)
    if is_encoder_decoder(handle):
        from steelyard.profiling.generation_seq2seq import count_encoder_decoder

        return count_encoder_decoder(handle, workload, causal_attention, total, table)
    moe = mixture_of_experts(module)
    dense = total - table - (float(moe.expert_bytes) if moe else 0.0)
    per_step = dense + (float(moe.touched_bytes(1)) if moe else 0.0)
    per_prefill = dense + (float(moe.touched_bytes(workload.prompt_len)) if moe else 0.0)
    cache = _new_cache(module)
    try:
        prefill = _counted(module, _step_inputs(module, workload.prompt_len, device, cache), cache,
                           causal_attention, per_prefill, workload.prompt_len)
        points = []
        filled = workload.prompt_len
        for context in sample_contexts(workload.prompt_len, workload.new_tokens, workload.decode_samples):
            if context > filled:  # grow the cache, uncounted
                with torch.inference_mode():
                    call(module, _step_inputs(module, context - filled, device, cache))
                filled = context
            points.append(DecodePoint(context, _counted(module, _step_inputs(module, 1, device, cache), cache,
                                                        causal_attention, per_step, 1)))
            filled += 1
    except (RuntimeError, ValueError, IndexError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputShapeError(f"{handle.name}: a generation step failed ({first})") from exc
    kv_per_token = prefill.kv_written / workload.prompt_len
    return GenerationCount(
        prompt_len=workload.prompt_len,
        new_tokens=workload.new_tokens,
        prefill=prefill,
        decode=tuple(points),
        weight_bytes=Bytes(per_step),
        kv_bytes_per_token=Bytes(kv_per_token),
        moe=moe,
    )


def at_batch(cost: PhaseCost, batch: int, count: GenerationCount) -> PhaseCost:
    """``cost`` for ``batch`` sequences: FLOPs and KV traffic times the batch, weights read once.

    Dense weights are read once whatever the batch; an MoE model reads the experts its
    ``batch × tokens`` routed tokens touch (:func:`expert_fraction`).
    """
    weights = float(cost.weight_bytes)
    if count.moe is not None:
        weights += float(count.moe.touched_bytes(batch * cost.tokens) - count.moe.touched_bytes(cost.tokens))
    return replace(
        cost,
        flops=Flops(cost.flops * batch),
        other_flops=Flops(cost.other_flops * batch),
        weight_bytes=Bytes(weights),
        kv_read=Bytes(cost.kv_read * batch),
        kv_written=Bytes(cost.kv_written * batch),
        op_bytes=Bytes(cost.op_bytes * batch),
        batch=batch,
    )
