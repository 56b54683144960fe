"""What a recipe's before / after table is made of, each number measured on this machine.

- size: parameters, non-zeros and the bytes the weights take in memory (int8 codes + scales
  for quantized layers), from :func:`steelyard.profiling.weigh.weigh`;
- FLOPs / MACs: one counted forward (:func:`steelyard.profiling.counting.count_forward`) on the
  timing batch. Quantized kernels do the same multiply-adds in int8, so a quantization step keeps
  the count of the float model it came from (and says so);
- latency: the original and the compressed model timed in alternating rounds in one process
  (A B A B ...) by :func:`steelyard.profiling.interleaved.time_interleaved`, so machine drift hits
  both alike; the speedup is a ratio of medians with its bootstrap interval over the paired
  rounds, the raw samples are kept;
- peak memory: the weights plus the peak of the activation tensors alive during one forward on
  the timing batch, traced by the FLOP counter from the storages actually allocated (the
  process's RSS cannot tell: the allocator reuses freed memory, and both models share a process);
- quality: the task metrics with bootstrap intervals on one split, the agreement of the
  predictions with the original's on the same examples, and each metric's change tested paired
  on those examples (McNemar for accuracy, a paired bootstrap otherwise), so a verdict can tell
  one flipped example from a real change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from steelyard.compression.recipe.generation import GenerationCard
from steelyard.evaluation.adapters import Adapter, Feature
from steelyard.evaluation.evaluate import default_metrics, score
from steelyard.evaluation.labels import LabelMap
from steelyard.evaluation.predict import Outputs, predict
from steelyard.metrics import MetricValue
from steelyard.profiling.counter import CountResult
from steelyard.profiling.counting import Inputs, call, rows
from steelyard.profiling.interleaved import Speedup, time_interleaved
from steelyard.profiling.report import LatencyStats
from steelyard.profiling.weigh import weigh
from steelyard.significance import PairedChange, paired_changes
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
    #: Causal LMs: decode tokens/s, TTFT, TPOT, KV bytes per token and agreement of greedy generations.
    generation: GenerationCard | None = None

    @property
    def peak_memory(self) -> Bytes | None:
        """Weights plus the traced activation peak."""
        return None if self.activation_peak is None else Bytes(self.bytes + self.activation_peak)

    @property
    def headline(self) -> MetricValue | None:
        return self.metrics.get(self.metric) if self.metric else None


    def apply_count(self, counted: CountResult) -> None:
        """Take matrix FLOPs, MACs and the traced activation peak from one counted forward."""
        self.flops, self.macs = Flops(counted.flops), Macs(counted.macs)
        self.activation_peak = Bytes(counted.peak_live_bytes)


def size_card(module: torch.nn.Module) -> ModelCard:
    weighed = weigh(module)
    return ModelCard(params=weighed.parameters.total, nonzero=weighed.parameters.nonzero, bytes=weighed.bytes)


def time_pair(
    original: torch.nn.Module,
    compressed: torch.nn.Module,
    inputs: Inputs,
    *,
    rounds: int,
    warmup: int,
    threads: int | None,
) -> tuple[LatencyStats, LatencyStats, Speedup]:
    """Both models timed in alternating rounds on the same batch (samples kept in each), and the
    compressed model's speedup with its interval over the paired rounds."""
    for m in (original, compressed):
        m.eval()
    timing = time_interleaved(
        {"original": lambda: call(original, inputs), "compressed": lambda: call(compressed, inputs)},
        device=_device_of(original), batch_size=rows(inputs), warmup=warmup, rounds=rounds, threads=threads,
    )
    return timing.stats["original"], timing.stats["compressed"], timing.speedups["compressed"]


def _device_of(module: torch.nn.Module) -> torch.device:
    first = next(module.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


@dataclass
class Quality:
    metrics: dict[str, MetricValue]
    predictions: np.ndarray  # predicted class per example (empty for a causal LM)
    #: The per-example outputs the metrics came from, kept so two models can be tested paired.
    outputs: Outputs | None = None


def quality_change(before: Quality, after: Quality, task: str, *, n_resamples: int,
                   seed: int) -> dict[str, PairedChange]:
    """Each metric of ``after`` against ``before`` on the same examples, with a paired test (McNemar for
    accuracy, a paired bootstrap otherwise; :mod:`steelyard.significance`)."""
    a, b = before.outputs, after.outputs
    if a is None or b is None or len(a) != len(b) or not len(a):
        return {}
    names = [n for n in after.metrics if n in before.metrics]
    return paired_changes(names, a.labels, a.proba, b.proba, task=task, nll_before=a.nll, nll_after=b.nll,
                          n_tokens=a.n_tokens, n_resamples=n_resamples, seed=seed)


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
    labels = LabelMap(list(range(len(label_names))), list(label_names)) if label_names else None
    metrics, _ = score(outputs, default_metrics(task), task, labels, n_resamples=n_resamples, seed=seed)
    if outputs.proba is None:  # causal LM: perplexity per token block, no class to agree on
        return Quality(metrics, np.zeros(0, dtype=np.int64), outputs)
    return Quality(metrics, outputs.proba.argmax(axis=1), outputs)


def timing_inputs(adapter: Adapter, features: list[Feature], batch_size: int) -> dict[str, torch.Tensor]:
    """A batch of real examples (without labels) to time and count on."""
    rows = [features[i % len(features)] for i in range(batch_size)]
    batch = adapter.collate(rows)
    return {k: v for k, v in batch.items() if k != "labels" and not k.startswith("_")}


def outputs_on(module: torch.nn.Module, inputs: Inputs) -> Any:
    module.eval()
    with torch.inference_mode():
        return call(module, inputs)
