"""Time the real ``generate()``: TTFT, every inter-token gap, end-to-end, peak memory, per batch size.

Greedy decoding of exactly ``new_tokens`` tokens (``min_new_tokens = max_new_tokens``, so an early
end-of-sequence cannot shorten a run) with the model's own cache. A logits processor is called once
per generated token, right after that step's forward: it stamps the clock (on CUDA it records an
event, read after a final synchronise). The first stamp minus the start is the TTFT (prefill and
first token); each later gap is one decode step (TPOT). One warm-up run with half the new tokens
also gives the peak memory at half the context, so the report shows how memory grows with it.
An encoder-decoder gets its encoder input (prompt tokens or log-mel features): ``generate()`` runs
the encoder before the first token, so its TTFT includes the encoder.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from steelyard.models.handle import ModelHandle
from steelyard.profiling.generation_config import GenerationWorkload
from steelyard.profiling.generation_count import is_encoder_decoder
from steelyard.profiling.generation_report import MeasuredBatch
from steelyard.profiling.generation_seq2seq import encoder_inputs
from steelyard.profiling.latency import PeakMemory
from steelyard.units import Bytes, Seconds


class StepClock:
    """Stamps one time per generated token; ``times()`` gives seconds since :meth:`start`."""

    def __init__(self, device: torch.device, clock: Callable[[], float] = time.perf_counter) -> None:
        self.cuda = device.type == "cuda"
        self.clock = clock
        self._marks: list[Any] = []
        self._start: Any = None

    def _mark(self) -> Any:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return self.clock()

    def start(self) -> None:
        self._marks = []
        self._start = self._mark()

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:  # a LogitsProcessor
        self._marks.append(self._mark())
        return scores

    def stop(self) -> list[float]:
        """Seconds from the start to each token, then to the end (the last entry)."""
        end = self._mark()
        if self.cuda:
            torch.cuda.synchronize()
            return [self._start.elapsed_time(m) / 1000 for m in [*self._marks, end]]
        return [m - self._start for m in [*self._marks, end]]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = q / 100 * (len(ordered) - 1)
    lo = int(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def summarize(batch: int, new_tokens: int, runs: list[list[float]], timer: str, peak: float, peak_half: float,
              peak_kind: str) -> MeasuredBatch:
    """Statistics of timed runs, each the stamps of :meth:`StepClock.stop` (token times, then the end).

    TTFT and e2e are medians over runs; TPOT percentiles pool every decode gap of every run;
    throughput is ``batch × new_tokens / e2e`` (total) and ``new_tokens / e2e`` per sequence.
    """
    ttfts = [r[0] for r in runs]
    ends = [r[-1] for r in runs]
    gaps = [[b - a for a, b in itertools.pairwise(r[:new_tokens])] for r in runs]
    pooled = [g for run in gaps for g in run]
    quarter = max(1, len(gaps[0]) // 4) if gaps and gaps[0] else 0
    early = [g for run in gaps for g in run[:quarter]]
    late = [g for run in gaps for g in run[-quarter:]] if quarter else []
    e2e = statistics.median(ends)
    ttft = statistics.median(ttfts)
    return MeasuredBatch(
        batch=batch,
        runs=len(runs),
        timer=timer,
        ttft_median=Seconds(ttft),
        tpot_median=Seconds(statistics.median(pooled) if pooled else 0.0),
        tpot_p90=Seconds(_percentile(pooled, 90)),
        tpot_p99=Seconds(_percentile(pooled, 99)),
        tpot_early=Seconds(statistics.median(early) if early else 0.0),
        tpot_late=Seconds(statistics.median(late) if late else 0.0),
        e2e_median=Seconds(e2e),
        decode_median=Seconds(statistics.median([e - t for e, t in zip(ends, ttfts, strict=True)])),
        tokens_per_second=batch * new_tokens / e2e if e2e else 0.0,
        tokens_per_second_per_sequence=new_tokens / e2e if e2e else 0.0,
        peak_memory=Bytes(peak),
        peak_memory_half=Bytes(peak_half),
        peak_memory_kind=peak_kind,
    )


def prompt(handle: ModelHandle, batch: int, length: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random token ids (a fixed seed) and a full attention mask: ``batch`` prompts of ``length`` tokens."""
    vocab = int(getattr(handle.config, "vocab_size", 0) or 1000)
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (batch, length), generator=generator).to(handle.device)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def greedy_generate(handle: ModelHandle, inputs: dict[str, torch.Tensor], new_tokens: int,
                    processors: list[Any], cache: Any = None, return_dict: bool = False) -> Any:
    """One greedy ``generate()`` of exactly ``new_tokens`` tokens (``cache``: a transformers cache to fill;
    ``return_dict``: the whole output, sequences and the model's cache, not only the tokens)."""
    from transformers import LogitsProcessorList

    config = handle.config
    pad = getattr(config, "pad_token_id", None)
    eos = getattr(config, "eos_token_id", None)
    pad = pad if pad is not None else (eos[0] if isinstance(eos, list) else eos) or 0
    extra: dict[str, Any] = {} if cache is None else {"cache": cache}
    if return_dict:
        extra["return_dict_in_generate"] = True
    with torch.inference_mode():
        return handle.module.generate(
            **inputs,
            do_sample=False,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            pad_token_id=pad,
            use_cache=True,
            logits_processor=LogitsProcessorList(processors),
            **extra,
        )


def generate_once(handle: ModelHandle, inputs: dict[str, torch.Tensor], new_tokens: int,
                  clock: StepClock, *, keep: list[Any] | None = None) -> list[float]:
    """One greedy ``generate()`` of exactly ``new_tokens`` tokens with the model's own cache; the clock's stamps.

    ``keep``: a list that receives ``generate()``'s output (sequences and the model's cache), for a
    caller that also needs the tokens (agreement between two models) or the cache (its bytes).
    """
    clock.start()
    output = greedy_generate(handle, inputs, new_tokens, [clock], return_dict=keep is not None)
    stamps = clock.stop()
    if keep is not None:
        keep.append(output)
    return stamps


def measure_generation(handle: ModelHandle, workload: GenerationWorkload,
                       clock: Callable[[], float] = time.perf_counter) -> list[MeasuredBatch]:
    """Warm-up (half the new tokens, its peak memory kept), then ``workload.runs`` timed runs per batch."""
    out = []
    device = torch.device(handle.device)
    timer = "cuda-events" if device.type == "cuda" else "perf_counter"
    handle.module.eval()
    for batch in workload.batch_sizes:
        inputs = encoder_inputs(handle, workload, batch) if is_encoder_decoder(handle) else \
            prompt(handle, batch, workload.prompt_len)
        stamps = StepClock(device, clock)
        half = max(1, workload.new_tokens // 2)
        with PeakMemory(device) as peak_half:
            for _ in range(max(workload.warmup, 1)):
                generate_once(handle, inputs, half, stamps)
        runs = []
        with PeakMemory(device) as peak:
            for _ in range(workload.runs):
                runs.append(generate_once(handle, inputs, workload.new_tokens, stamps))
        out.append(summarize(batch, workload.new_tokens, runs, timer, float(peak.peak), float(peak_half.peak),
                             peak.kind))
    return out
