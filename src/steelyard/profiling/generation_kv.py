"""A quantized KV cache measured beside the float one: bytes per sequence, TPOT at long context, agreement.

The KV cache is a runtime structure, not part of the saved model, so it is profiled here rather than
registered as a compression transform. ``--kv-cache`` picks one of transformers' quantized caches:

- ``int4`` / ``int2``: ``QuantizedCache("quanto")``, optimum-quanto's group-wise codes with a scale and a
  shift per ``kv_group_size`` values (quanto stores only 2 and 4 bits);
- ``int8``: ``QuantizedCache("hqq")`` (HQQ is the backend with 8-bit integer codes; it needs ``hqq``);
- ``fp8``: ``QuantizedCache("fp8")``, float8 e4m3 with one scale per layer tensor (torch alone).

The group-wise caches keep the newest ``kv_residual_length`` tokens in float and re-quantize the whole
cache each time that window fills (KIVI's scheme), so their decode step pays a dequantize of the
context plus a periodic re-quantization: the measured TPOT says what that costs on this machine.

Both caches run the real greedy ``generate()`` on the same prompts, interleaved (float, quantized,
float, ... through :func:`~steelyard.profiling.interleaved.time_interleaved`); each run's stamps give
its mean decode step, and the TPOT ratio gets the bootstrap interval over paired rounds.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from steelyard.errors import BackendUnavailableError, ConfigError
from steelyard.models.handle import ModelHandle
from steelyard.profiling.generation_config import GenerationWorkload
from steelyard.profiling.generation_measure import StepClock, greedy_generate, prompt
from steelyard.profiling.generation_report import KVCacheComparison, KVCacheRun
from steelyard.profiling.interleaved import paired_speedup, time_interleaved
from steelyard.units import Bytes, Seconds

#: ``--kv-cache`` value → (transformers' QuantizedCache backend, bits; None: the backend's own format).
KV_KINDS: dict[str, tuple[str, int | None]] = {"int4": ("quanto", 4), "int2": ("quanto", 2), "int8": ("hqq", 8),
                                               "fp8": ("fp8", None)}  # fmt: skip
#: Backend → (importable module, pip package, pyproject extra or None). fp8 needs torch alone.
BACKENDS: dict[str, tuple[str, str, str | None]] = {"quanto": ("optimum.quanto", "optimum-quanto", "llm"),
                                                    "hqq": ("hqq", "hqq", None)}  # fmt: skip
_CACHE_TENSORS = ("keys", "values", "_quantized_keys", "_quantized_values")


def tensor_bytes(t: Any) -> int:
    """Bytes a value holds: a tensor, tensor subclasses (quanto's codes, scales, shifts), tuples of them (fp8)."""
    if isinstance(t, tuple | list):
        return sum(tensor_bytes(x) for x in t)
    if not isinstance(t, torch.Tensor):
        return 0
    if getattr(type(t), "__tensor_flatten__", None) is not None:
        names, _ = t.__tensor_flatten__()
        return sum(tensor_bytes(getattr(t, n)) for n in names)
    return t.numel() * t.element_size()


def cache_bytes(cache: Any) -> int:
    """Bytes held by every layer of a transformers cache (float keys / values and quantized ones)."""
    return sum(tensor_bytes(getattr(layer, name, None)) for layer in cache.layers for name in _CACHE_TENSORS)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def require_kv_backend(kind: str) -> None:
    """One line naming what to install when ``kind``'s backend is missing (int8: quanto has no 8-bit cache)."""
    if kind == "float":
        return
    if kind not in KV_KINDS:
        raise ConfigError(f"--kv-cache must be one of float, {', '.join(KV_KINDS)}, got {kind!r}")
    backend = KV_KINDS[kind][0]
    if backend not in BACKENDS:
        return
    module, package, extra = BACKENDS[backend]
    if _installed(module):
        return
    install = f"pip install 'steelyard[{extra}]' (or {package})" if extra else f"pip install {package}"
    why = ""
    if kind == "int8":
        why = " (optimum-quanto's quantized cache stores only int2 / int4; fp8 needs nothing more)"
    raise BackendUnavailableError(f"--kv-cache {kind} needs {package}, which is not installed{why}: {install}")


def backend_label(kind: str) -> str:
    """The class and library that hold a ``kind`` cache, with the library's version (what ran)."""
    if kind == "float":
        return "DynamicCache"
    backend = KV_KINDS[kind][0]
    if backend not in BACKENDS:
        return f"QuantizedCache({backend}) torch {torch.__version__}"
    package = BACKENDS[backend][1]
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    return f"QuantizedCache({backend}) {package} {version}"


def make_cache(model: nn.Module, kind: str, group_size: int = 64, residual_length: int = 128) -> Any:
    """A fresh, empty cache of ``kind`` for ``model`` ("float": transformers' DynamicCache)."""
    from transformers import DynamicCache, QuantizedCache

    if kind == "float":
        return DynamicCache(config=model.config)
    require_kv_backend(kind)
    backend, nbits = KV_KINDS[kind]
    try:
        if nbits is None:
            return QuantizedCache(backend, model.config)
        return QuantizedCache(backend, model.config, nbits=nbits, q_group_size=group_size,
                              residual_length=residual_length)  # fmt: skip
    except ValueError as exc:  # e.g. sliding-window layers: transformers quantizes full attention only
        raise ConfigError(f"--kv-cache {kind} does not apply to this model: {str(exc).splitlines()[0]}") from None


def check_kv_request(handle: ModelHandle, workload: GenerationWorkload, measure: bool) -> None:
    """Refuse, before anything is counted, a ``--kv-cache`` that this model or run cannot measure."""
    if workload.kv_cache == "float":
        return
    if handle.on_meta or not measure:
        raise ConfigError(f"--kv-cache {workload.kv_cache} is measured with the real generate(): it needs real "
                          "weights and measurement (drop --config-only / --no-measure)")  # fmt: skip
    config = handle.config
    if config is None or getattr(config, "is_encoder_decoder", False) or not hasattr(handle.module, "generate"):
        raise ConfigError(f"--kv-cache {workload.kv_cache} applies to decoder-only causal LMs "
                          "(transformers' quantized cache holds self-attention only)")  # fmt: skip
    require_kv_backend(workload.kv_cache)
    make_cache(handle.module, workload.kv_cache, workload.kv_group_size, workload.kv_residual_length)


@dataclass
class _Runs:
    """What one cache kind's generate() calls left behind: each call's stamps, the last output and cache."""

    stamps: list[list[float]]
    output: torch.Tensor | None = None
    cache: Any = None


def _mean_step(stamps: list[float], new_tokens: int) -> float:
    """Mean decode step of one run: first token to last token over the gaps between them."""
    return (stamps[new_tokens - 1] - stamps[0]) / (new_tokens - 1)


def agreement(reference: torch.Tensor, other: torch.Tensor) -> tuple[float, float]:
    """(share of positions equal, mean share of each sequence before its first difference), new tokens only."""
    same = (reference == other).to(torch.int64)
    prefix = same.cumprod(dim=1).sum(dim=1).float() / same.shape[1]
    return float(same.float().mean()), float(prefix.mean())


def compare_kv_caches(handle: ModelHandle, workload: GenerationWorkload, *, threads: int | None = None,
                      clock: Callable[[], float] = time.perf_counter) -> KVCacheComparison:
    """Float vs ``workload.kv_cache``: interleaved generate() runs at the first batch size, same prompts.

    ``threads``: torch intra-op threads, fixed for the rounds and recorded (None: the current count).
    """
    kind = workload.kv_cache
    if workload.new_tokens < 2:
        raise ConfigError(f"--kv-cache {kind} times decode steps: --new-tokens must be at least 2")
    device = torch.device(handle.device)
    batch = workload.batch_sizes[0]
    inputs = prompt(handle, batch, workload.prompt_len)
    runs = {name: _Runs([]) for name in ("float", kind)}

    def candidate(name: str) -> Callable[[], None]:
        stamps = StepClock(device, clock)

        def once() -> None:
            cache = make_cache(handle.module, name, workload.kv_group_size, workload.kv_residual_length)
            stamps.start()
            out = greedy_generate(handle, inputs, workload.new_tokens, [stamps], cache=cache)
            record = runs[name]
            record.stamps.append(stamps.stop())
            record.output, record.cache = out, cache

        return once

    handle.module.eval()
    rounds = max(workload.runs, 3)
    timing = time_interleaved({name: candidate(name) for name in runs}, device=device, batch_size=batch,
                              warmup=max(workload.warmup, 1), rounds=rounds, threads=threads)  # fmt: skip
    steps = {name: [_mean_step(s, workload.new_tokens) for s in r.stamps[-rounds:]] for name, r in runs.items()}
    tpot = paired_speedup("float", kind, steps)
    positions = workload.prompt_len + workload.new_tokens - 1  # the last token is never written to the cache
    prompt_len = inputs["input_ids"].shape[1]

    def measured(name: str) -> KVCacheRun:
        held = cache_bytes(runs[name].cache) / batch
        return KVCacheRun(name, backend_label(name), Bytes(held), Bytes(held / positions),
                          Seconds(statistics.median(steps[name])), Seconds(timing.stats[name].median))  # fmt: skip

    tokens, prefix = agreement(runs["float"].output[:, prompt_len:], runs[kind].output[:, prompt_len:])
    return KVCacheComparison(
        batch=batch, positions=positions, group_size=workload.kv_group_size,
        residual_length=workload.kv_residual_length, rounds=rounds, threads=timing.stats["float"].threads,
        float_cache=measured("float"), quantized=measured(kind),
        tpot_speedup=tpot.ratio, tpot_ci_low=tpot.ci_low, tpot_ci_high=tpot.ci_high, tpot_outcome=tpot.outcome,
        token_agreement=tokens, prefix_agreement=prefix,
    )


__all__ = ["KV_KINDS", "cache_bytes", "check_kv_request", "compare_kv_caches", "make_cache", "require_kv_backend",
           "tensor_bytes"]
