"""Count what an encoder-decoder (T5, BART, Marian, Whisper) costs to generate: encoder once, decoder per token.

The model's own forward runs under the counter, on the meta device or real weights alike:

* **encoder**: once, on the prompt (token ids) or the audio (log-mel ``input_features``);
* **prefill**: the encoder plus the decoder's first forward on the start token, which projects the
  encoder output into every layer's cross-attention keys and values and caches them in the model's
  own ``EncoderDecoderCache`` (so TTFT includes the encoder);
* **decode**: one decoder token against that cache at a few self-attention context lengths; the
  cross-attention keys and values are not recomputed, but every step reads them.

Bytes per decode step: the decoder's weights (every weight the encoder does not own exclusively;
a lookup-only embedding table excluded) + the self-attention KV of the context + the cross-attention
KV over the encoder length, and the new self-attention position written.
"""

from __future__ import annotations

from typing import Any

import torch

from steelyard.errors import ConfigError, InputShapeError
from steelyard.families.blocks import max_positions
from steelyard.families.inputs import example_inputs, modality
from steelyard.models.handle import ModelHandle
from steelyard.profiling.counting import call, count_forward
from steelyard.profiling.generation_config import GenerationWorkload
from steelyard.profiling.generation_count import cache_bytes, cache_kwarg, sample_contexts
from steelyard.profiling.generation_report import DecodePoint, GenerationCount, PhaseCost
from steelyard.units import Bytes, Flops

#: Decoder tokens fed at the first forward: the start token (``decoder_start_token_id``).
DECODER_START = 1


def check_encoder_decoder(handle: ModelHandle, workload: GenerationWorkload) -> None:
    """Refuse a request longer than the decoder's (or the text encoder's) positions, in one line."""
    config = handle.config
    decoder_limit = getattr(config, "max_target_positions", None) or max_positions(config)
    decoder_positions = DECODER_START + workload.new_tokens
    if isinstance(decoder_limit, int) and decoder_positions > decoder_limit:
        raise ConfigError(f"--new-tokens {workload.new_tokens} + {DECODER_START} start token = {decoder_positions} "
                          f"decoder positions, but {handle.name} holds at most {decoder_limit}")
    encoder_limit = max_positions(config)
    if modality(config) == "seq2seq" and encoder_limit is not None and workload.prompt_len > encoder_limit:
        raise ConfigError(f"--prompt-len {workload.prompt_len} exceeds the {encoder_limit} encoder positions "
                          f"of {handle.name}")


def encoder_inputs(handle: ModelHandle, workload: GenerationWorkload, batch: int = 1) -> dict[str, torch.Tensor]:
    """What ``generate()`` feeds the encoder: ``prompt_len`` token ids, or log-mel features in the model's dtype."""
    inputs = example_inputs(handle.config, batch=batch, seq_len=workload.prompt_len, device=handle.device,
                            decoder_len=1, audio_seconds=workload.audio_seconds)
    dtype = handle.dtype
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in inputs.items() if not k.startswith("decoder_")}


def cache_parts(cache: Any) -> tuple[int, int]:
    """Bytes of (self-attention, cross-attention) keys and values in an ``EncoderDecoderCache``."""
    return cache_bytes(cache.self_attention_cache), cache_bytes(cache.cross_attention_cache)


def _new_cache(module: torch.nn.Module) -> Any:
    from transformers import DynamicCache, EncoderDecoderCache

    return EncoderDecoderCache(DynamicCache(config=module.config), DynamicCache(config=module.config))


def _encoder_prefix(module: torch.nn.Module, encoder: torch.nn.Module) -> str:
    for name, sub in module.named_modules():
        if sub is encoder:
            return f"{name}."
    raise InputShapeError(f"{type(module).__name__}: its encoder is not one of its submodules")


def decoder_weight_bytes(module: torch.nn.Module, table: int) -> int:
    """Bytes of every weight a decoder step reads: all but the encoder's own, less a lookup-only table."""
    prefix = _encoder_prefix(module, module.get_encoder())
    named = [*module.named_parameters(remove_duplicate=False), *module.named_buffers(remove_duplicate=False)]
    seen: set[int] = set()
    total = 0
    for name, tensor in named:
        if name.startswith(prefix) or id(tensor) in seen or not tensor.is_floating_point():
            continue
        seen.add(id(tensor))
        total += tensor.numel() * tensor.element_size()
    return total - table


def _step(module: torch.nn.Module, encoded: Any, cache: Any, tokens: int, device: Any) -> dict[str, Any]:
    return {
        "decoder_input_ids": torch.ones(1, tokens, dtype=torch.long, device=device),
        "encoder_outputs": encoded,
        cache_kwarg(module): cache,
        "use_cache": True,
    }


def _decoder_cost(module: torch.nn.Module, inputs: dict[str, Any], cache: Any, causal: str, weights: float,
                  tokens: int) -> PhaseCost:
    self_before, cross_before = cache_parts(cache)
    result = count_forward(module, inputs, causal_attention=causal)  # type: ignore[arg-type]
    self_after, cross_after = cache_parts(cache)
    return PhaseCost(
        tokens=tokens,
        flops=Flops(result.flops),
        other_flops=Flops(result.other_flops),
        weight_bytes=Bytes(weights),
        kv_read=Bytes(self_before + cross_before),
        kv_written=Bytes(max(self_after - self_before, 0) + max(cross_after - cross_before, 0)),
        op_bytes=Bytes(result.bytes_moved),
    )


def count_encoder_decoder(handle: ModelHandle, workload: GenerationWorkload, causal_attention: str,
                          total: int, table: int) -> GenerationCount:
    """Count the encoder, the prefill (encoder + start token) and the decode steps of ``workload`` (batch 1)."""
    check_encoder_decoder(handle, workload)
    module, device = handle.module, handle.device
    encoder = module.get_encoder()
    step_weights = decoder_weight_bytes(module, table)
    cache = _new_cache(module)
    try:
        inputs = encoder_inputs(handle, workload)
        counted = count_forward(encoder, inputs, causal_attention=causal_attention)  # type: ignore[arg-type]
        with torch.inference_mode():
            encoded = call(encoder, inputs)
        encoder_tokens = int(encoded[0].shape[1])
        encoder_cost = PhaseCost(
            tokens=workload.prompt_len, flops=Flops(counted.flops), other_flops=Flops(counted.other_flops),
            weight_bytes=Bytes(total - table - step_weights), kv_read=Bytes(0), kv_written=Bytes(0),
            op_bytes=Bytes(counted.bytes_moved))
        start = _decoder_cost(module, _step(module, encoded, cache, DECODER_START, device), cache, causal_attention,
                              step_weights, DECODER_START)
        self_kv, cross_kv = cache_parts(cache)
        points = []
        filled = DECODER_START
        for context in sample_contexts(DECODER_START, workload.new_tokens, workload.decode_samples):
            if context > filled:  # grow the self-attention cache, uncounted
                with torch.inference_mode():
                    call(module, _step(module, encoded, cache, context - filled, device))
                filled = context
            points.append(DecodePoint(context, _decoder_cost(module, _step(module, encoded, cache, 1, device), cache,
                                                             causal_attention, step_weights, 1)))
            filled += 1
    except (RuntimeError, ValueError, IndexError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputShapeError(f"{handle.name}: a generation step failed ({first})") from exc
    prefill = PhaseCost(
        tokens=workload.prompt_len,
        flops=Flops(encoder_cost.flops + start.flops),
        other_flops=Flops(encoder_cost.other_flops + start.other_flops),
        weight_bytes=Bytes(total - table),
        kv_read=Bytes(0),
        kv_written=start.kv_written,
        op_bytes=Bytes(encoder_cost.op_bytes + start.op_bytes),
    )
    return GenerationCount(
        prompt_len=workload.prompt_len,
        new_tokens=workload.new_tokens,
        prefill=prefill,
        decode=tuple(points),
        weight_bytes=Bytes(step_weights),
        kv_bytes_per_token=Bytes(self_kv / DECODER_START),
        encoder=encoder_cost,
        encoder_tokens=encoder_tokens,
        cross_kv_bytes=Bytes(cross_kv),
        context_start=DECODER_START,
    )


__all__ = ["cache_parts", "check_encoder_decoder", "count_encoder_decoder", "decoder_weight_bytes", "encoder_inputs"]
