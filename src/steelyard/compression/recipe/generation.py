"""The generative rows of a recipe's before / after table, both models measured in the same run.

For a causal LM one forward says little about serving it: decode at small batch is memory-bound, so
what a compression buys shows in tokens per second, time to first token and per output token, and
the bytes each sequence's KV cache holds. Everything here reuses :mod:`steelyard.profiling`:

- **decode tokens/s, TTFT, TPOT**: at each batch size, both models run the same fixed-length greedy
  workload (:func:`~steelyard.profiling.generation_measure.generate_once`: exactly ``new_tokens``
  tokens, the model's own cache) in alternating rounds of the one interleaved timer
  (:func:`~steelyard.profiling.interleaved.time_interleaved`). Each call's step clock gives its TTFT
  (prefill + first token) and its decode time (the ``new_tokens − 1`` later steps); TTFT and TPOT are
  the medians of :func:`~steelyard.profiling.generation_measure.summarize`. Decode tokens/s is
  ``batch × (new_tokens − 1) / median decode time``, and the speedup is the ratio of the two models'
  median decode times, with the bootstrap interval over the paired rounds
  (:func:`~steelyard.profiling.interleaved.paired_speedup`): the same rule as every other speedup;
- **KV bytes per token and memory**: the real cache ``generate()`` leaves behind, weighed by
  :func:`~steelyard.profiling.generation_count.cache_bytes` (a quantized cache weighs what it holds);
  memory at a batch is the weights plus that cache at the last position; the peak at the largest
  batch adds every tensor alive during that ``generate()``, traced by the one cost counter
  (:class:`~steelyard.profiling.counter.CostCounter`, as the one-forward peak is): both models share
  a process, so its RSS could not tell them apart;
- **agreement**: greedy generations of both models on one fixed set of prompts cut from the evaluation
  text (random token ids with a fixed seed without data), compared token by token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from steelyard.errors import ConfigError
from steelyard.models.handle import ModelHandle
from steelyard.profiling.generation_count import GENERATIVE_TASKS, cache_bytes, is_encoder_decoder
from steelyard.profiling.generation_measure import StepClock, generate_once, prompt, summarize
from steelyard.profiling.interleaved import Speedup, paired_speedup, time_interleaved
from steelyard.profiling.latency import summarize as latency_stats
from steelyard.profiling.report import LatencyStats
from steelyard.units import Bytes, Seconds


@dataclass
class DecodeRun:
    """One model generating at one batch size: ``new_tokens`` greedy tokens per sequence."""

    batch: int
    new_tokens: int
    #: Bytes of the KV cache ``generate()`` held at the last position, the whole batch.
    kv_cache_bytes: Bytes
    #: Weights plus that cache: what serving this batch holds beyond activations.
    memory: Bytes
    #: The largest batch only: weights plus the peak of every tensor alive during ``generate()`` (KV cache,
    #: activations, logits, dequantized weights if a kernel makes them), traced by the cost counter.
    peak_memory: Bytes | None = None
    #: Timed fields (None when the recipe ran without timing).
    #: ``batch × (new_tokens − 1) / decode.median``: tokens the decode steps produce per second.
    tokens_per_second: float | None = None
    ttft: Seconds | None = None  # median over rounds: prefill and the first token
    tpot: Seconds | None = None  # median of every later inter-token gap
    tpot_p90: Seconds | None = None
    #: Per-round decode time (end − first token), the interleaved samples kept, noise flagged.
    decode: LatencyStats | None = None
    #: Compressed model only: its decode speedup over the original (ratio of median decode times).
    speedup: Speedup | None = None


@dataclass
class GenerationCard:
    """The generative part of one column of the before / after table."""

    prompt_len: int
    new_tokens: int
    #: Where the prompts came from: "evaluation text" or "random token ids".
    prompt_source: str
    #: KV cache bytes per token per sequence (all layers), from the real cache after ``generate()``.
    kv_bytes_per_token: Bytes
    runs: list[DecodeRun] = field(default_factory=list)
    #: Share of generated tokens equal to the original's at the same position, over ``prompts`` prompts.
    agreement: float | None = None
    prompts: int = 0
    #: Prompts whose whole generation equals the original's.
    identical: int | None = None


def generates(handle: ModelHandle, new_tokens: int) -> bool:
    """Whether the generative rows apply: a decoder-only LM that can ``generate()`` and new tokens asked."""
    return (new_tokens > 0 and handle.task in GENERATIVE_TASKS and hasattr(handle.module, "generate")
            and not is_encoder_decoder(handle))


def text_prompts(blocks: list[dict[str, Any]], count: int, length: int) -> torch.Tensor:
    """``count`` prompts of ``length`` tokens cut at evenly spaced places of the evaluation text's token stream.

    The blocks are joined in order, so the set is fixed by the data alone (no randomness).
    """
    stream = [int(t) for block in blocks for t in block["input_ids"]]
    if len(stream) < length:
        raise ConfigError(f"--prompt-len {length}: the evaluation text holds only {len(stream)} tokens")
    span = len(stream) - length
    starts = [0] if count == 1 else [round(i * span / (count - 1)) for i in range(count)]
    return torch.tensor([stream[s : s + length] for s in starts], dtype=torch.long)


def random_prompts(handle: ModelHandle, count: int, length: int, seed: int) -> torch.Tensor:
    """Without data: the fixed-seed random prompts of the generation profile."""
    return prompt(handle, count, length, seed)["input_ids"].cpu()


def _batch(prompts: torch.Tensor, batch: int, device: Any) -> dict[str, torch.Tensor]:
    rows = prompts[[i % len(prompts) for i in range(batch)]].to(device)
    return {"input_ids": rows, "attention_mask": torch.ones_like(rows)}


def _greedy(handle: ModelHandle, inputs: dict[str, torch.Tensor], new_tokens: int) -> Any:
    kept: list[Any] = []
    generate_once(handle, inputs, new_tokens, StepClock(torch.device(handle.device)), keep=kept)
    return kept[0]


def _traced_greedy(handle: ModelHandle, inputs: dict[str, torch.Tensor], new_tokens: int) -> tuple[Any, int]:
    """:func:`_greedy` under the cost counter: the output and the peak bytes of the tensors it allocated."""
    from steelyard.profiling.counter import CostCounter

    with torch.inference_mode(), CostCounter(handle.module) as counter:
        output = _greedy(handle, inputs, new_tokens)
    return output, counter.result.peak_live_bytes


def returned_cache(output: Any) -> Any:
    """The cache of a ``generate()`` output (``cache`` in transformers 5, ``past_key_values`` before)."""
    fields = getattr(output, "__dataclass_fields__", {})
    return getattr(output, "cache" if "cache" in fields else "past_key_values")


def kv_per_token(cache: Any, batch: int) -> tuple[int, Bytes]:
    """(bytes the cache holds, bytes per token per sequence) of a cache ``generate()`` returned."""
    total = cache_bytes(cache)
    positions = int(cache.get_seq_length()) if hasattr(cache, "get_seq_length") else 0
    return total, Bytes(total / (batch * positions) if positions else 0.0)


def measure_generation_pair(
    original: ModelHandle,
    compressed: ModelHandle,
    prompts: torch.Tensor,
    *,
    source: str,
    new_tokens: int,
    batch_sizes: tuple[int, ...],
    weights: tuple[Bytes, Bytes],
    timed: bool,
    rounds: int,
    warmup: int,
    threads: int | None,
) -> tuple[GenerationCard, GenerationCard]:
    """Both models' generation cards: agreement on ``prompts``, and at each batch its cache, memory and timing."""
    handles = {"original": original, "compressed": compressed}
    for h in handles.values():
        h.module.eval()
    device = torch.device(original.device)
    length = int(prompts.shape[1])
    outs = {k: _greedy(h, _batch(prompts, len(prompts), h.device), new_tokens) for k, h in handles.items()}
    gen = {k: o.sequences[:, length:].cpu() for k, o in outs.items()}
    same = gen["original"] == gen["compressed"]
    cards = {k: GenerationCard(length, new_tokens, source, Bytes(0), prompts=len(prompts)) for k in handles}
    cards["original"].agreement, cards["original"].identical = 1.0, len(prompts)
    cards["compressed"].agreement = float(same.float().mean())
    cards["compressed"].identical = int(same.all(dim=1).sum())
    for k, o in outs.items():
        cards[k].kv_bytes_per_token = kv_per_token(returned_cache(o), len(prompts))[1]
    del outs
    for batch in batch_sizes:
        runs = _measure_batch(handles, _batch(prompts, batch, device), batch, new_tokens, dict(zip(handles, weights,
                              strict=True)), timed=timed, rounds=rounds, warmup=warmup, threads=threads,
                              traced=batch == max(batch_sizes))
        for k in handles:
            cards[k].runs.append(runs[k])
    return cards["original"], cards["compressed"]


def _measure_batch(handles: dict[str, ModelHandle], inputs: dict[str, torch.Tensor], batch: int, new_tokens: int,
                   weights: dict[str, Bytes], *, timed: bool, rounds: int, warmup: int, threads: int | None,
                   traced: bool) -> dict[str, DecodeRun]:
    runs = {}
    for k, h in handles.items():
        output, live = _traced_greedy(h, inputs, new_tokens) if traced else (_greedy(h, inputs, new_tokens), None)
        held = kv_per_token(returned_cache(output), batch)[0]
        runs[k] = DecodeRun(batch, new_tokens, Bytes(held), Bytes(weights[k] + held),
                            None if live is None else Bytes(weights[k] + live))
    if not timed:
        return runs
    device = torch.device(next(iter(handles.values())).device)
    stamps: dict[str, list[list[float]]] = {k: [] for k in handles}
    clocks = {k: StepClock(device) for k in handles}

    def candidate(name: str) -> Any:
        return lambda: stamps[name].append(generate_once(handles[name], inputs, new_tokens, clocks[name]))

    timing = time_interleaved({k: candidate(k) for k in handles}, device=device, batch_size=batch, warmup=warmup,
                              rounds=rounds, threads=threads)
    decode: dict[str, list[float]] = {}
    for k, run in runs.items():
        timed_runs = stamps[k][-rounds:]  # the warm-up calls come first
        stats = timing.stats[k]
        # TTFT / TPOT only: the process's peak memory is not the model's (both share it; see peak_memory)
        measured = summarize(batch, new_tokens, timed_runs, stats.timer, 0.0, 0.0, "not measured")
        decode[k] = [r[-1] - r[0] for r in timed_runs]
        run.decode = latency_stats(decode[k], batch_size=batch, warmup=warmup, threads=stats.threads,
                                   timer=stats.timer)
        run.ttft, run.tpot, run.tpot_p90 = measured.ttft_median, measured.tpot_median, measured.tpot_p90
        run.tokens_per_second = decode_tokens_per_second(batch, new_tokens, float(run.decode.median))
    runs["compressed"].speedup = paired_speedup("original", "compressed", decode)
    return runs


def decode_tokens_per_second(batch: int, new_tokens: int, decode_seconds: float) -> float:
    """Tokens the decode steps produce per second: the first token belongs to the prefill (TTFT)."""
    return batch * (new_tokens - 1) / decode_seconds if decode_seconds > 0 else 0.0
