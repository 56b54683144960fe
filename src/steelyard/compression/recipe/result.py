"""What a recipe run returns: the before / after cards, the steps, and the compressed model."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from steelyard.compression.api import CompressedModel
from steelyard.compression.fidelity import Fidelity
from steelyard.compression.recipe.measure import ModelCard
from steelyard.data.quality import Leakage
from steelyard.profiling.interleaved import Speedup
from steelyard.serialize import to_dict
from steelyard.significance import PairedChange

#: Tokenizer / preprocessing files copied next to a saved model so ``steelyard evaluate`` finds them.
PREPROCESSING_FILES = (
    "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json", "merges.txt",
    "vocab.json", "sentencepiece.bpe.model", "spiece.model", "preprocessor_config.json",
)


@dataclass
class Verdict:
    """One measured claim on what a recipe delivered; :func:`steelyard.reporting.compress_view.verdict_text`
    words it ("1.84x faster ...", "sparse, not smaller ...", "no significant change ...")."""

    #: speed: after vs before (ratio of interleaved medians); decode: a causal LM's decode tokens/s at one batch
    #: (ratio of interleaved median decode times); size: bytes in memory; sparsity: weights newly zero without
    #: getting smaller; metric: points lost (+) or gained (−) on the headline metric.
    kind: Literal["speed", "decode", "size", "sparsity", "metric"]
    #: speed, decode: "faster" | "slower" (its interval excludes 1.0) | "not significant" ("same" in older runs);
    #: size: "smaller" | "same"; sparsity: "sparse"; metric: "dropped" | "rose" (the paired test rejects
    #: "no change") | "not significant" | "unchanged" (identical predictions) | "untested" (no paired outputs).
    outcome: str
    #: The ratio (speed, size), the count of new zeros (sparsity) or the points (metric, absolute).
    value: float
    #: sparsity: the new zeros as a fraction of the parameters.
    share: float | None = None
    #: metric: its name.
    metric: str | None = None
    #: speed: the interval of the ratio; metric: of the change after − before, in points.
    ci_low: float | None = None
    ci_high: float | None = None
    #: metric: the paired test's p-value and name (steelyard.significance); speed: None.
    p_value: float | None = None
    test: str | None = None
    #: speed: interleaved rounds; metric: examples only the original / only the compressed model got right.
    rounds: int | None = None
    only_before: int | None = None
    only_after: int | None = None
    n: int | None = None
    #: decode: the batch size it was timed at.
    batch: int | None = None
    #: metric: its value before, so a metric that is not a share (perplexity) is worded relative to it.
    before: float | None = None


@dataclass
class StepRecord:
    """One step as it ran: what it changed, how long it took, what it noted."""

    name: str
    text: str
    seconds: float
    params_after: int
    bytes_after: int
    notes: list[str] = field(default_factory=list)
    fidelity: Fidelity | None = None  # vs the model before this step, on the example input
    validation: float | None = None  # validation metric after a training step
    train_steps: int | None = None


@dataclass
class RecipeResult:
    model: str
    recipe: str
    data: str | None
    eval_split: str | None
    before: ModelCard
    after: ModelCard
    steps: list[StepRecord]
    backend: str
    fidelity: Fidelity | None  # after vs before on the timing batch
    timing: dict[str, Any]
    seconds: float
    notes: list[str] = field(default_factory=list)
    compressed: CompressedModel | None = field(default=None, repr=False)
    output: str | None = None
    #: The compressed model's speedup with its bootstrap interval over the interleaved rounds.
    speed: Speedup | None = None
    #: Each metric, compressed vs original on the same examples, with its paired test (McNemar for accuracy).
    changes: dict[str, PairedChange] = field(default_factory=dict)
    #: Scored examples whose input is also in an earlier split (test in train): the metric is optimistic.
    leakage: list[Leakage] = field(default_factory=list)

    @property
    def speedup(self) -> float | None:
        if self.before.latency is None or self.after.latency is None:
            return None
        return float(self.before.latency.median) / float(self.after.latency.median)

    @property
    def size_ratio(self) -> float:
        return float(self.before.bytes) / float(self.after.bytes) if self.after.bytes else float("inf")

    @property
    def flops_ratio(self) -> float | None:
        if not self.before.flops or self.after.flops is None:
            return None
        return float(self.after.flops) / float(self.before.flops)

    @property
    def metric_drop(self) -> float | None:
        """Points lost on the headline metric (before − after, ×100; negative: it improved)."""
        b, a = self.before.headline, self.after.headline
        if b is None or a is None:
            return None
        sign = 1.0 if b.higher_is_better else -1.0
        return sign * (b.value - a.value) * 100.0

    @property
    def compressed_handle(self) -> Any:
        return self.compressed.handle if self.compressed is not None else None

    def verdicts(self) -> list[Verdict]:
        """What the recipe delivered, each claim from a measured number and its test.

        Speed: faster or slower only when the interval over the interleaved rounds excludes 1.0. Size: 5%
        threshold (sizes are exact). Metric: dropped or rose only when the paired test on the same examples
        (McNemar for accuracy) rejects "no change" at 5%; never from the point values alone.
        """
        out = []
        s = self.speedup
        if s is not None:
            out.append(self._speed_verdict(s))
        out.extend(self._decode_verdicts())
        r = self.size_ratio
        out.append(Verdict("size", "smaller" if r >= 1.05 else "same", r))
        new_zeros = _zeros(self.after) - _zeros(self.before)
        if new_zeros > 0.01 * self.after.params and r < 1.05:
            out.append(Verdict("sparsity", "sparse", new_zeros, share=new_zeros / self.after.params))
        d = self.metric_drop
        if d is not None and self.after.headline is not None:
            out.append(self._metric_verdict(d, self.after.headline.name))
        return out

    def _speed_verdict(self, ratio: float) -> Verdict:
        sp = self.speed
        if sp is None:
            return Verdict("speed", "not significant", ratio)  # no interval: no claim
        return Verdict("speed", sp.outcome, ratio, ci_low=sp.ci_low, ci_high=sp.ci_high, rounds=sp.rounds)

    def _decode_verdicts(self) -> list[Verdict]:
        """One per timed decode batch of a causal LM: its tokens/s ratio, worded by its interval."""
        gen = self.after.generation
        return [Verdict("decode", r.speedup.outcome, r.speedup.ratio, ci_low=r.speedup.ci_low,
                        ci_high=r.speedup.ci_high, rounds=r.speedup.rounds, batch=r.batch)
                for r in (gen.runs if gen is not None else []) if r.speedup is not None]

    def _metric_verdict(self, drop: float, name: str) -> Verdict:
        change = self.changes.get(name)
        if change is None:
            return Verdict("metric", "untested", abs(drop), metric=name)
        outcome = {"unchanged": "unchanged", "not significant": "not significant"}.get(
            change.outcome, "dropped" if drop > 0 else "rose")
        return Verdict("metric", outcome, abs(drop), metric=name, ci_low=100.0 * change.ci_low,
                       ci_high=100.0 * change.ci_high, p_value=change.p_value, test=change.test,
                       only_before=change.only_before, only_after=change.only_after, n=change.n,
                       before=change.before)

    def to_dict(self) -> dict[str, Any]:
        data = to_dict({k: v for k, v in self.__dict__.items() if k != "compressed"})
        data.update(speedup=self.speedup, size_ratio=self.size_ratio, flops_ratio=self.flops_ratio,
                    metric_drop=self.metric_drop, verdicts=to_dict(self.verdicts()),
                    changes={k: v.to_dict() for k, v in self.changes.items()})
        if self.speed is not None:
            data.update(speedup_ci=[self.speed.ci_low, self.speed.ci_high], speedup_outcome=self.speed.outcome)
        return data

    def save(self, path: str | Path, *, overwrite: bool = False, preprocessing_from: Path | None = None) -> Path:
        """Save the compressed model (folder or ``.onnx``) with the tokenizer files of the source."""
        if self.compressed is None:
            raise ValueError("nothing to save: the recipe produced no model")
        target = self.compressed.save(path, overwrite=overwrite)
        source = preprocessing_from or self.compressed.source_path
        if target.is_dir() and source is not None and Path(source).is_dir():
            for name in PREPROCESSING_FILES:
                file = Path(source) / name
                if file.is_file() and not (target / name).exists():
                    shutil.copy2(file, target / name)
        self.output = str(target)
        self.after.file_bytes = _disk_size(target)
        return target


def _disk_size(path: Path) -> Any:
    from steelyard.units import Bytes

    if path.is_file():
        return Bytes(path.stat().st_size)
    weights = (".safetensors", ".onnx", ".bin")
    return Bytes(sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and f.suffix in weights))


def _zeros(card: ModelCard) -> int:
    return 0 if card.nonzero is None else card.params - card.nonzero
