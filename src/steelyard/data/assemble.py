"""Turning raw columns (inputs and label values, maybe already split) into a TaskDataset.

Every source ends here, so label mapping, missing-label errors and the seeded split are decided
once: string labels become ids in sorted order, non-negative integer labels are kept as they
are, and data without a split gets a deterministic stratified train / validation / test split.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from steelyard.data.dataset import SPLITS, Example, TaskDataset, stratified_split
from steelyard.errors import DataError


@dataclass(frozen=True)
class LoadOptions:
    """What :func:`steelyard.data.load_dataset` was asked for, passed to every source reader."""

    text_column: str = "text"
    label_column: str = "label"
    image_column: str = "image"
    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.2


@dataclass
class RawSplit:
    """One split's inputs before labels are mapped: ``where`` names each row for error messages."""

    inputs: list[Any]
    labels: list[Any] | None
    where: list[str]


@dataclass
class RawData:
    """A source's content: splits keyed by canonical name, or the single key None when unsplit."""

    splits: dict[str | None, RawSplit]
    modality: str
    label_names: list[str] | None = None
    notes: list[str] = field(default_factory=list)


def is_missing(value: Any) -> bool:
    """True for None, NaN and pandas' NA: a cell with no value."""
    if value is None:
        return True
    if isinstance(value, float) and value != value:
        return True
    return type(value).__name__ in ("NAType", "NaTType")


def missing_column_error(origin: str, name: str, columns: Sequence[str], role: str, flag: str) -> DataError:
    """Say which column is missing, which exist, and the closest existing name."""
    cols = [str(c) for c in columns]
    close = [c for c in cols if c.lower() == name.lower()] or difflib.get_close_matches(name, cols, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listing = ", ".join(repr(c) for c in cols) if cols else "(none)"
    return DataError(f"{origin}: no {role} column {name!r} (set it with {flag}); columns are {listing}{hint}")


def _as_int(value: Any) -> int | None:
    """The value as an int when it is an integer (1, np.int64(1), 1.0), else None. Bools are not."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return None
    if isinstance(value, int):
        return value
    if hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu" and getattr(value, "ndim", 1) == 0:
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def map_labels(
    raw: dict[str | None, RawSplit], given_names: list[str] | None, origin: str
) -> tuple[dict[str | None, list[int]], list[str]]:
    """Label ids per split and the label names, the same mapping for every split."""
    values: list[tuple[Any, str]] = []
    for split in raw.values():
        assert split.labels is not None
        values.extend(zip(split.labels, split.where, strict=True))
    missing = [where for value, where in values if is_missing(value)]
    if missing:
        raise DataError(f"{origin}: {len(missing)} example(s) have no label (first at {missing[0]})")
    if not values:
        return {k: [] for k in raw}, list(given_names or [])

    ints = [_as_int(v) for v, _ in values]
    if given_names is not None:
        index = {name: i for i, name in enumerate(given_names)}

        def to_id(value: Any, where: str) -> int:
            as_int = _as_int(value)
            if as_int is not None and 0 <= as_int < len(given_names):
                return as_int
            if str(value) in index:
                return index[str(value)]
            raise DataError(f"{origin}: label {value!r} at {where} is not one of {given_names}")

        names = list(given_names)
    elif all(i is not None for i in ints) and min(ints) >= 0:  # type: ignore[type-var]
        names = [str(i) for i in range(max(ints) + 1)]  # type: ignore[type-var]

        def to_id(value: Any, where: str) -> int:
            return _as_int(value)  # type: ignore[return-value]

    else:
        names = sorted({str(v) for v, _ in values})
        index = {name: i for i, name in enumerate(names)}

        def to_id(value: Any, where: str) -> int:
            return index[str(value)]

    out = {
        key: [to_id(v, w) for v, w in zip(split.labels or [], split.where, strict=True)]
        for key, split in raw.items()
    }
    return out, names


def _take(examples: list[Example], idx: list[int]) -> list[Example]:
    return [examples[i] for i in idx]


def assemble(raw: RawData, *, name: str, source: str, task: str, opts: LoadOptions, origin: str) -> TaskDataset:
    """Build the TaskDataset: map labels, then keep the source's splits or make seeded ones."""
    labelled = task != "causal-lm"
    notes = list(raw.notes)
    if labelled:
        if any(s.labels is None for s in raw.splits.values()):
            raise DataError(f"{origin}: task {task!r} needs labels and this source has none")
        label_ids, names = map_labels(raw.splits, raw.label_names, origin)
    else:
        label_ids, names = {k: [None] * len(s.inputs) for k, s in raw.splits.items()}, []  # type: ignore[misc]

    field_name = "image" if raw.modality == "image" else "text"
    keyed: dict[str | None, list[Example]] = {
        key: [
            Example(**{field_name: x}, label=y)  # type: ignore[arg-type]
            for x, y in zip(split.inputs, label_ids[key], strict=True)
        ]
        for key, split in raw.splits.items()
    }
    if sum(len(v) for v in keyed.values()) == 0:
        raise DataError(f"{origin}: the dataset is empty (no examples found)")

    def labels_of(examples: list[Example]) -> list[int | None]:
        return [ex.label for ex in examples]

    splits: dict[str, list[Example]]
    if set(keyed) == {None}:
        everything = keyed[None]
        tr, va, te = stratified_split(labels_of(everything), opts.val_fraction, opts.test_fraction, opts.seed)
        splits = {"train": _take(everything, tr), "validation": _take(everything, va), "test": _take(everything, te)}
        notes.append(
            f"no split in the source: made a stratified {len(tr)}/{len(va)}/{len(te)} "
            f"train/validation/test split with seed {opts.seed}"
        )
    else:
        if None in keyed:
            raise DataError(f"{origin}: some examples have a split and others do not")
        splits = {s: keyed.get(s, []) for s in SPLITS}
        train = splits["train"]
        carve_val = "validation" not in keyed and bool(train)
        carve_test = "test" not in keyed and bool(train)
        if carve_val or carve_test:
            val_frac = opts.val_fraction if carve_val else 0.0
            test_frac = opts.test_fraction if carve_test else 0.0
            tr, va, te = stratified_split(labels_of(train), val_frac, test_frac, opts.seed)
            splits["train"] = _take(train, tr)
            if carve_val:
                splits["validation"] = _take(train, va)
            if carve_test:
                splits["test"] = _take(train, te)
            carved = [s for s, c in (("validation", carve_val), ("test", carve_test)) if c]
            notes.append(f"carved {' and '.join(carved)} out of train (seed {opts.seed})")
    return TaskDataset(
        name=name,
        task=task,
        label_names=names,
        train=splits["train"],
        validation=splits["validation"],
        test=splits["test"],
        source=source,
        notes=notes,
    )
