"""The generation card as plain data: counted phases, per-device projections, measurements.

Only dataclasses with unit-typed numbers live here (no torch), so :class:`GenerationReport`
round-trips through JSON (``to_dict`` / ``from_dict``) and rides inside a profile's
:class:`~steelyard.profiling.report.CostReport` into the results store.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any

from steelyard.errors import ConfigError
from steelyard.profiling.generation_config import GenerationWorkload
from steelyard.serialize import from_dict, to_dict
from steelyard.units import Bytes, Flops, Joules, Seconds, Usd


@dataclass(frozen=True)
class PhaseCost:
    """One forward of a generation phase at batch 1 (or at :meth:`at_batch`)."""

    tokens: int  # tokens fed per sequence (P for the prefill, 1 for a decode step)
    flops: Flops  # matrix-class work (matmul, attention)
    other_flops: Flops  # elementwise, normalisation, softmax
    weight_bytes: Bytes  # weights read once per forward
    kv_read: Bytes  # KV cache read (the context before this forward)
    kv_written: Bytes  # KV cache written (this forward's positions)
    op_bytes: Bytes  # the counter's unfused per-op bytes (an upper bound, for reference)
    batch: int = 1

    @property
    def bytes_moved(self) -> Bytes:
        return Bytes(self.weight_bytes + self.kv_read + self.kv_written)

    @property
    def total_flops(self) -> Flops:
        return Flops(self.flops + self.other_flops)


@dataclass(frozen=True)
class DecodePoint:
    """A counted decode step with ``context`` positions already in the cache."""

    context: int
    cost: PhaseCost


@dataclass(frozen=True)
class MixtureOfExperts:
    """Expert weights of an MoE model and how many experts a token uses (the batch model's inputs)."""

    experts: int
    per_token: int
    expert_bytes: Bytes  # every expert's weights, all layers

    def touched_bytes(self, tokens: int) -> Bytes:
        return Bytes(self.expert_bytes * expert_fraction(self.experts, self.per_token, tokens))


def expert_fraction(experts: int, per_token: int, tokens: int) -> float:
    """Expected share of a layer's experts that ``tokens`` tokens touch, each routed to ``per_token`` of ``experts``.

    Routing is taken as uniform and independent per token: an expert is missed by one token with
    probability ``1 - k/E``, by all of them with ``(1 - k/E)^T``. At ``T = 1`` this is ``k/E``
    (only the active experts are read); it tends to 1 as the batch grows.
    """
    if experts <= 0 or tokens <= 0:
        return 0.0
    return 1.0 - (1.0 - min(per_token, experts) / experts) ** tokens


@dataclass(frozen=True)
class GenerationCount:
    """Counted prefill and decode costs of one request shape, per sequence at batch 1."""

    prompt_len: int
    new_tokens: int
    prefill: PhaseCost
    decode: tuple[DecodePoint, ...]  # counted context lengths, ascending
    weight_bytes: Bytes  # read per forward at batch 1 (active experts only for MoE)
    kv_bytes_per_token: Bytes  # per sequence, all layers (from the cache tensors); self-attention for enc-dec
    moe: MixtureOfExperts | None = None
    #: Encoder-decoders: the encoder pass alone (already inside ``prefill``), its output length, the
    #: cross-attention KV per sequence (computed once, read by every step) and the decoder's cache length
    #: at its first decode step (the start token); decoder-only models leave these unset.
    encoder: PhaseCost | None = None
    encoder_tokens: int = 0
    cross_kv_bytes: Bytes = field(default_factory=lambda: Bytes(0))
    context_start: int | None = None

    @property
    def first_context(self) -> int:
        """Self-attention cache length at the first decode step: the prompt, or an enc-dec's start token."""
        return self.prompt_len if self.context_start is None else self.context_start

    @property
    def kv_bytes_per_sequence(self) -> Bytes:
        """KV cache one sequence holds at its last position (cross-attention included)."""
        return Bytes((self.first_context + self.new_tokens) * self.kv_bytes_per_token + self.cross_kv_bytes)

    def decode_at(self, context: int) -> PhaseCost:
        """The decode step at ``context``: the counted point, or linear between (beyond) the nearest two."""
        points = self.decode
        if not points:
            raise ConfigError("no decode step was counted (--new-tokens 1 is the prefill alone)")
        for p in points:
            if p.context == context:
                return p.cost
        if len(points) == 1:
            return points[0].cost
        lo, hi = points[0], points[1]
        for a, b in itertools.pairwise(points):
            lo, hi = a, b
            if context <= b.context:
                break
        t = (context - lo.context) / (hi.context - lo.context)

        def mix(a: float, b: float) -> float:
            return a + t * (b - a)

        c0, c1 = lo.cost, hi.cost
        return replace(
            c0,
            flops=Flops(mix(c0.flops, c1.flops)),
            other_flops=Flops(mix(c0.other_flops, c1.other_flops)),
            kv_read=Bytes(mix(c0.kv_read, c1.kv_read)),
            kv_written=Bytes(mix(c0.kv_written, c1.kv_written)),
            op_bytes=Bytes(mix(c0.op_bytes, c1.op_bytes)),
        )

    def contexts(self) -> range:
        """Cache lengths of the decode steps of one request: ``P`` .. ``P + N - 2`` (``1`` .. ``N - 1`` for enc-dec)."""
        return range(self.first_context, self.first_context + max(self.new_tokens - 1, 0))


@dataclass
class BatchProjection:
    """One batch size on one device (or tensor-parallel group)."""

    batch: int
    ttft: Seconds  # the prefill: prompt in, first token out
    tpot: Seconds  # mean time per later output token (decode step)
    tpot_first: Seconds  # the first decode step (shortest context)
    tpot_last: Seconds  # the last decode step (longest context)
    e2e: Seconds  # TTFT + every decode step
    tokens_per_second_per_sequence: float  # new tokens / e2e
    tokens_per_second: float  # batch × new tokens / e2e
    prefill_bound: str
    decode_bound: str  # at the mean context
    memory: Bytes  # weights + KV cache of the batch at the final context, over all devices
    fits: bool
    cost_per_1m_output: Usd | None
    cost_per_1m_prompt: Usd | None
    energy_per_token: Joules


@dataclass
class HardwareGeneration:
    """Every batch size of a workload on one device type."""

    hardware: str
    dtype: str
    devices: int  # tensor-parallel degree (1 when one device holds the weights)
    usable_memory: Bytes  # per device
    compute_efficiency: float
    memory_efficiency: float
    ridge_point: float  # FLOP per byte where the device's roofs meet
    batches: list[BatchProjection]
    max_batch: int  # largest batch whose weights + KV fit at the final context (0: none)
    max_batch_projection: BatchProjection | None
    decode_compute_bound_batch: int | None  # smallest batch where decode turns compute-bound; None: never
    price_per_hour: Usd | None
    notes: list[str]


@dataclass
class MeasuredBatch:
    """Real ``generate()`` runs at one batch size: exactly ``new_tokens`` greedy tokens per sequence."""

    batch: int
    runs: int
    timer: str  # "perf_counter" (CPU) or "cuda-events"
    ttft_median: Seconds
    tpot_median: Seconds
    tpot_p90: Seconds
    tpot_p99: Seconds
    tpot_early: Seconds  # median over the first quarter of decode steps (short context)
    tpot_late: Seconds  # median over the last quarter (long context)
    e2e_median: Seconds
    decode_median: Seconds  # e2e minus TTFT
    tokens_per_second: float  # batch × new tokens / e2e
    tokens_per_second_per_sequence: float  # new tokens / e2e
    peak_memory: Bytes
    peak_memory_half: Bytes  # the warm-up run with half the new tokens: growth with context
    peak_memory_kind: str  # "cuda" or "rss"
    projected_ttft: Seconds | None = None  # `local` roofline at the stated efficiencies
    projected_tpot: Seconds | None = None

    @property
    def ttft_ratio(self) -> float | None:
        """measured / projected (> 1: slower than the roofline projection)."""
        return float(self.ttft_median) / float(self.projected_ttft) if self.projected_ttft else None

    @property
    def tpot_ratio(self) -> float | None:
        return float(self.tpot_median) / float(self.projected_tpot) if self.projected_tpot else None


@dataclass(frozen=True)
class KVCacheRun:
    """One KV cache measured with the real ``generate()``: what it holds and how fast a decode step ran."""

    cache: str  # "float" or a ``--kv-cache`` value
    backend: str  # the class and library that held the cache, e.g. "QuantizedCache(quanto) optimum-quanto 0.2.7"
    bytes_per_sequence: Bytes  # tensors the cache holds after the last token (codes, scales, float residual)
    bytes_per_token: Bytes  # bytes_per_sequence / cached positions
    tpot_median: Seconds  # median over rounds of each run's mean decode step (re-quantizations included)
    e2e_median: Seconds  # one whole generate()


@dataclass(frozen=True)
class KVCacheComparison:
    """The float KV cache against a quantized one, interleaved in one process on the same prompts."""

    batch: int
    positions: int  # cached positions per sequence at the end (prompt + new tokens - 1)
    group_size: int
    residual_length: int
    rounds: int
    threads: int  # torch intra-op threads, fixed for every round
    float_cache: KVCacheRun
    quantized: KVCacheRun
    tpot_speedup: float  # float TPOT / quantized TPOT (> 1: the quantized cache decodes faster)
    tpot_ci_low: float  # bootstrap interval over paired rounds
    tpot_ci_high: float
    tpot_outcome: str  # "faster" / "slower" / "not significant" (the one speedup rule)
    token_agreement: float  # share of new tokens equal to the float cache's, position by position
    prefix_agreement: float  # mean share of new tokens before a sequence first departs from the float one

    @property
    def smaller(self) -> float:
        """How many times fewer bytes per sequence the quantized cache holds."""
        q = float(self.quantized.bytes_per_sequence)
        return float(self.float_cache.bytes_per_sequence) / q if q else float("inf")


@dataclass
class PositionCost:
    """One decode step's cost at a context length (batch 1): the per-position curve."""

    context: int
    flops: Flops
    bytes_moved: Bytes


@dataclass
class GenerationReport:
    """Prefill, decode and serving cost of one request shape on each device, and measurements."""

    model: str
    dtype: str
    workload: GenerationWorkload
    count: GenerationCount
    total_weight_bytes: Bytes  # every weight resident (all experts, embedding table)
    hardware: list[HardwareGeneration]
    positions: list[PositionCost]
    measured: list[MeasuredBatch] = field(default_factory=list)
    local_projection: HardwareGeneration | None = None
    assumptions: list[str] = field(default_factory=list)
    kv_cache: KVCacheComparison | None = None  # with --kv-cache int4 / int2 / int8 / fp8

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationReport:
        return from_dict(cls, data)

    def on(self, hardware: str) -> HardwareGeneration:
        for row in self.hardware:
            if row.hardware == hardware:
                return row
        raise ConfigError(f"no projection for {hardware}; projected: {', '.join(r.hardware for r in self.hardware)}")
