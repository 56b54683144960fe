"""What a recipe's before / after table is made of, each number measured on this machine.

- size: parameters, non-zeros and the bytes the weights take in memory (int8 codes + scales
  for quantized layers);
- FLOPs / MACs: counted at the dispatch level on the timing batch. Quantized kernels do the
  same multiply-adds in int8, so a quantization step keeps the count of the float model it
  came from (and says so) instead of reporting the zero that an uncounted kernel would give;
- latency: the original and the compressed model timed in alternating rounds in one process
  (A B A B ...), so machine drift hits both alike; the speedup is a ratio of medians;
- peak memory: the weights plus the peak of the activation tensors alive during one forward on
  the timing batch, traced by the FLOP counter from the storages actually allocated (the
  process's RSS cannot tell: the allocator reuses freed memory, and both models share a process);
- quality: the task metrics with bootstrap intervals on one split, and the agreement of the
  predictions with the original's on the same examples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from steelyard.compression.sizes import model_size
from steelyard.evaluation.adapters import Adapter, Feature
from steelyard.evaluation.evaluate import default_metrics, score
from steelyard.evaluation.labels import LabelMap
from steelyard.evaluation.predict import Outputs, predict
from steelyard.metrics import MetricValue
from steelyard.profiling.counter import CostCounter
from steelyard.profiling.latency import compare_interleaved, summarize
from steelyard.profiling.report import LatencyStats
from steelyard.units import Bytes, Flops, Macs


@dataclass
class ModelCard:
    """One column of the before / after table."""

    params: int
    nonzero: int | None
    bytes: Bytes
    flops: Flops | None = None
    macs: Macs | None = None
    flops_note: str | None = None
    latency: LatencyStats | None = None
    throughput: float | None = None  # examples per second at the timing batch
    activation_peak: Bytes | None = None  # traced peak of live activations on the timing batch
    metrics: dict[str, MetricValue] = field(default_factory=dict)
    metric: str | None = None  # the headline metric's name
    agreement: float | None = None  # share of predictions equal to the original's
    file_bytes: Bytes | None = None  # size on disk once saved

    @property
    def peak_memory(self) -> Bytes | None:
        """Weights plus the traced activation peak."""
        return None if self.activation_peak is None else Bytes(self.bytes + self.activation_peak)

    @property
    def headline(self) -> MetricValue | None:
        return self.metrics.get(self.metric) if self.metric else None


def size_card(module: torch.nn.Module) -> ModelCard:
    size = model_size(module)
    return ModelCard(params=size.parameters, nonzero=size.nonzero, bytes=Bytes(size.bytes))


Inputs = dict[str, torch.Tensor] | tuple[torch.Tensor, ...]


@dataclass(frozen=True)
class Counted:
    flops: Flops
    macs: Macs
    activation_peak: Bytes


def count_flops(module: torch.nn.Module, inputs: Inputs) -> Counted:
    """Matrix FLOPs, MACs and the peak of live activations of one forward on ``inputs``."""
    with torch.inference_mode(), CostCounter(module) as counter:
        _call(module, inputs)
    r = counter.result
    return Counted(Flops(r.flops), Macs(r.macs), Bytes(r.peak_live_bytes))


def _call(module: torch.nn.Module, inputs: Inputs) -> Any:
    return module(*inputs) if isinstance(inputs, tuple) else module(**inputs)


def time_pair(
    original: torch.nn.Module,
    compressed: torch.nn.Module,
    inputs: Inputs,
    *,
    rounds: int,
    warmup: int,
    threads: int | None,
) -> tuple[LatencyStats, LatencyStats]:
    """Both models timed in alternating rounds on the same batch."""
    batch = _batch_size(inputs)
    for m in (original, compressed):
        m.eval()
    samples = compare_interleaved(
        {"original": lambda: _call(original, inputs), "compressed": lambda: _call(compressed, inputs)},
        warmup=warmup, rounds=rounds, threads=threads,
    )
    used = threads or torch.get_num_threads()
    return (
        summarize(samples["original"], batch_size=batch, warmup=warmup, threads=used, timer="perf_counter"),
        summarize(samples["compressed"], batch_size=batch, warmup=warmup, threads=used, timer="perf_counter"),
    )


def _batch_size(inputs: Inputs) -> int:
    first = inputs[0] if isinstance(inputs, tuple) else next(iter(inputs.values()))
    return int(first.shape[0])


@dataclass
class Quality:
    metrics: dict[str, MetricValue]
    predictions: np.ndarray  # predicted class per example


def quality(
    module: torch.nn.Module,
    adapter: Adapter,
    features: list[Feature],
    task: str,
    label_names: list[str],
    *,
    batch_size: int,
    n_resamples: int,
    seed: int,
) -> Quality:
    """Task metrics with bootstrap CIs; labels in ``features`` are already the model's class ids."""
    outputs: Outputs = predict(module, adapter, features, batch_size)
    labels = LabelMap(list(range(len(label_names))), list(label_names))
    metrics, _ = score(outputs, default_metrics(task), task, labels, n_resamples=n_resamples, seed=seed)
    assert outputs.proba is not None
    return Quality(metrics, outputs.proba.argmax(axis=1))


def timing_inputs(adapter: Adapter, features: list[Feature], batch_size: int) -> dict[str, torch.Tensor]:
    """A batch of real examples (without labels) to time and count on."""
    rows = [features[i % len(features)] for i in range(batch_size)]
    batch = adapter.collate(rows)
    return {k: v for k, v in batch.items() if k != "labels" and not k.startswith("_")}


def outputs_on(module: torch.nn.Module, inputs: Inputs) -> Any:
    module.eval()
    with torch.inference_mode():
        return _call(module, inputs)
