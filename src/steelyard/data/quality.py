"""A data report before training, and cleaning what it flags.

Bad data quietly caps what a model can be worth: empty inputs teach nothing, duplicates across
splits inflate test scores (leakage), and the same text with two labels is noise no model can fit.
:func:`data_report` finds these; :func:`clean` drops them and says how many.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from steelyard.data.dataset import SPLITS, Example, TaskDataset, canonical_split
from steelyard.errors import DataError

_PREVIEW = 60


@dataclass(frozen=True)
class LengthStats:
    """Distribution of one length measure over a split's non-empty examples."""

    min: float
    median: float
    p90: float
    max: float

    @classmethod
    def of(cls, values: list[int]) -> LengthStats | None:
        if not values:
            return None
        arr = np.asarray(values, dtype=float)
        return cls(float(arr.min()), float(np.median(arr)), float(np.percentile(arr, 90)), float(arr.max()))


@dataclass(frozen=True)
class Conflict:
    """One input that appears with more than one label, and where."""

    preview: str
    labels: tuple[str, ...]
    locations: tuple[tuple[str, int], ...]


@dataclass
class DataReport:
    """What :func:`data_report` found, per split. Indices refer to positions in each split's list.

    - ``empty``: examples with no text (or only whitespace) or no image.
    - ``duplicates``: later copies of an input already seen in the same split with the same label.
    - ``leakage``: indices of examples whose input also appears in an evaluation split
      (train vs validation/test, validation vs test); ``leakage_pairs`` counts them per pair.
    - ``conflicts``: inputs seen with different labels, anywhere in the dataset.
    - ``class_balance``: examples per label name per split.
    - ``chars`` / ``tokens``: length distribution in characters and whitespace tokens (text only).
    """

    name: str
    task: str
    counts: dict[str, int]
    empty: dict[str, list[int]]
    duplicates: dict[str, list[int]]
    leakage: dict[str, list[int]]
    leakage_pairs: dict[str, int]
    conflicts: list[Conflict]
    class_balance: dict[str, dict[str, int]]
    chars: dict[str, LengthStats | None] = field(default_factory=dict)
    tokens: dict[str, LengthStats | None] = field(default_factory=dict)

    @property
    def n_conflicting(self) -> int:
        """Number of examples that belong to a conflicting group."""
        return sum(len(c.locations) for c in self.conflicts)

    def imbalance(self, split: str = "train") -> float | None:
        """Largest over smallest class count in a split (inf if a class is absent; None if unlabelled)."""
        counts = list(self.class_balance.get(split, {}).values())
        if not counts:
            return None
        return float("inf") if min(counts) == 0 else max(counts) / min(counts)

    def issues(self) -> list[str]:
        """One line per problem found; empty when the data looks clean."""
        lines = []
        for split in SPLITS:
            if self.empty.get(split):
                lines.append(f"{split}: {len(self.empty[split])} empty example(s)")
            if self.duplicates.get(split):
                lines.append(f"{split}: {len(self.duplicates[split])} duplicate example(s)")
        for pair, n in self.leakage_pairs.items():
            if n:
                lines.append(f"{pair}: {n} example(s) shared between splits (leakage)")
        if self.conflicts:
            lines.append(
                f"{len(self.conflicts)} input(s) appear with conflicting labels ({self.n_conflicting} examples)"
            )
        for split, balance in self.class_balance.items():
            absent = [name for name, n in balance.items() if n == 0]
            if absent and self.counts.get(split):
                lines.append(f"{split}: no examples of {', '.join(absent)}")
        ratio = self.imbalance("train")
        if ratio is not None and ratio != float("inf") and ratio >= 3:
            lines.append(f"train: classes are imbalanced (largest/smallest = {ratio:.1f})")
        return lines

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output and the results store."""
        return asdict(self)


def _key(ex: Example) -> Any:
    """What makes two examples the same input: the exact text, or the image's bytes and shape."""
    if ex.image is not None:
        arr = np.ascontiguousarray(ex.image)
        digest = hashlib.sha1(arr.tobytes()).hexdigest()
        return ("image", arr.shape, str(arr.dtype), digest)
    return ("text", ex.text)


def _is_empty(ex: Example) -> bool:
    if ex.image is not None:
        return np.asarray(ex.image).size == 0
    return ex.text is None or not ex.text.strip()


def _preview(ex: Example) -> str:
    if ex.image is not None:
        return f"<image {tuple(np.asarray(ex.image).shape)}>"
    text = " ".join((ex.text or "").split())
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 1] + "…"


def data_report(ds: TaskDataset) -> DataReport:
    """Count empty, duplicate, leaked and conflicting examples, class balance and lengths."""
    labelled = ds.task != "causal-lm"
    counts = ds.sizes()
    empty: dict[str, list[int]] = {s: [] for s in SPLITS}
    # key -> list of (split, index, label) for every non-empty example
    seen: dict[Any, list[tuple[str, int, int | None]]] = {}
    for split in SPLITS:
        for i, ex in enumerate(ds.split(split)):
            if _is_empty(ex):
                empty[split].append(i)
            else:
                seen.setdefault(_key(ex), []).append((split, i, ex.label))

    conflicts: list[Conflict] = []
    in_conflict: set[tuple[str, int]] = set()
    duplicates: dict[str, list[int]] = {s: [] for s in SPLITS}
    leakage: dict[str, list[int]] = {s: [] for s in SPLITS}
    pairs = {"train/validation": 0, "train/test": 0, "validation/test": 0}
    for where in seen.values():
        if len(where) == 1:
            continue
        labels = {lab for _, _, lab in where}
        if labelled and len(labels) > 1:
            first_split, first_index, _ = where[0]
            preview = _preview(ds.split(first_split)[first_index])
            names = tuple(sorted(_label_name(ds, lab) for lab in labels))
            conflicts.append(Conflict(preview, names, tuple((s, i) for s, i, _ in where)))
            in_conflict.update((s, i) for s, i, _ in where)
            continue
        splits_here = {s for s, _, _ in where}
        first_in_split: set[str] = set()
        for s, i, _ in where:
            if s in first_in_split:
                duplicates[s].append(i)
            first_in_split.add(s)
        for earlier, later in (("train", "validation"), ("train", "test"), ("validation", "test")):
            if earlier in splits_here and later in splits_here:
                pairs[f"{earlier}/{later}"] += sum(1 for s, _, _ in where if s == earlier)
                leakage[earlier].extend(i for s, i, _ in where if s == earlier)
    for split in SPLITS:
        duplicates[split].sort()
        leakage[split] = sorted(set(leakage[split]))

    balance: dict[str, dict[str, int]] = {}
    if labelled and ds.label_names:
        for split in SPLITS:
            row = dict.fromkeys(ds.label_names, 0)
            for ex in ds.split(split):
                if ex.label is not None:
                    row[_label_name(ds, ex.label)] = row.get(_label_name(ds, ex.label), 0) + 1
            balance[split] = row

    chars: dict[str, LengthStats | None] = {}
    tokens: dict[str, LengthStats | None] = {}
    if ds.modality == "text":
        for split in SPLITS:
            texts = [ex.text for ex in ds.split(split) if ex.text and ex.text.strip()]
            chars[split] = LengthStats.of([len(t) for t in texts])
            tokens[split] = LengthStats.of([len(t.split()) for t in texts])

    return DataReport(
        name=ds.name,
        task=ds.task,
        counts=counts,
        empty=empty,
        duplicates=duplicates,
        leakage=leakage,
        leakage_pairs=pairs,
        conflicts=conflicts,
        class_balance=balance,
        chars=chars,
        tokens=tokens,
    )


def _label_name(ds: TaskDataset, label: int | None) -> str:
    if label is None:
        return "-"
    return ds.label_names[label] if 0 <= label < len(ds.label_names) else str(label)


def _drop_plan(report: DataReport) -> tuple[dict[str, set[int]], dict[str, int]]:
    """Indices to drop per split and how many per reason, each example counted under its first reason."""
    drop: dict[str, set[int]] = {s: set() for s in SPLITS}
    counts = {"empty": 0, "conflicting": 0, "duplicate": 0, "leaked": 0}
    groups: list[tuple[str, list[tuple[str, int]]]] = [
        ("empty", [(s, i) for s in SPLITS for i in report.empty.get(s, [])]),
        ("conflicting", [loc for c in report.conflicts for loc in c.locations]),
        ("duplicate", [(s, i) for s in SPLITS for i in report.duplicates.get(s, [])]),
        ("leaked", [(s, i) for s in SPLITS for i in report.leakage.get(s, [])]),
    ]
    for reason, locations in groups:
        for split, i in locations:
            if i not in drop[split]:
                drop[split].add(i)
                counts[reason] += 1
    return drop, counts


def drop_counts(report: DataReport) -> dict[str, int]:
    """How many examples :func:`clean` would drop per reason (each example counted once)."""
    return _drop_plan(report)[1]


def clean(ds: TaskDataset, report: DataReport | None = None) -> TaskDataset:
    """A copy without the empty, duplicate, conflicting and leaked examples the report flags.

    Conflicting inputs are dropped everywhere (which label is right cannot be told). A leaked
    input is dropped from the earlier split (train before validation before test), so the test
    set stays the benchmark others report on while the model never trains on test inputs.
    The counts dropped per reason are added to the copy's ``notes``.
    """
    if report is None:
        report = data_report(ds)
    if report.name != ds.name or report.counts != ds.sizes():
        raise DataError(f"the data report is for {report.name} {report.counts}, not {ds.name} {ds.sizes()}")
    drop, dropped = _drop_plan(report)
    kept = {s: [ex for i, ex in enumerate(ds.split(s)) if i not in drop[s]] for s in SPLITS}
    out = ds.with_splits(**kept)
    total = sum(dropped.values())
    detail = ", ".join(f"{n} {reason}" for reason, n in dropped.items())
    out.notes.append(f"clean: dropped {total} example(s) ({detail})")
    return out


@dataclass(frozen=True)
class Leakage:
    """``count`` of the ``total`` examples of an evaluation ``split`` whose input also appears in ``other``.

    Such examples were seen in training (``other`` = train) or in model selection (validation), so a
    score on ``split`` is optimistic; :func:`clean` drops them from the earlier split.
    """

    split: str
    other: str
    count: int
    total: int


def leakage(ds: TaskDataset, split: str = "test", examples: list[Example] | None = None) -> list[Leakage]:
    """How many examples of ``split`` share their input with each earlier split (only pairs that do).

    ``examples``: the part of ``split`` actually scored (a subset), default the whole split. The same
    input counts whatever its label (a conflicting copy in train still shows the model the test
    input). ``split`` "train" or "all" has no earlier split to leak from: the list is empty.
    """
    name = canonical_split(split) or split
    earlier = {"validation": ("train",), "test": ("train", "validation")}.get(name, ())
    if not earlier:
        return []
    examples = ds.split(name) if examples is None else examples
    out: list[Leakage] = []
    for other in earlier:
        keys = {_key(ex) for ex in ds.split(other) if not _is_empty(ex)}
        if not keys:
            continue
        count = sum(1 for ex in examples if not _is_empty(ex) and _key(ex) in keys)
        if count:
            out.append(Leakage(name, other, count, len(examples)))
    return out
