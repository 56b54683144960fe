"""The in-memory shape every data source is turned into: examples in three named splits.

Loading, quality checks, augmentation, evaluation and training all speak this one type, so a new
source only has to produce a :class:`TaskDataset` and everything downstream works with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from steelyard.errors import DataError

if TYPE_CHECKING:
    import numpy as np

#: Tasks steelyard knows how to evaluate and train. Feature extraction means an embedding model
#: with a classification head on top, so its data is labelled text like text classification.
TASKS: tuple[str, ...] = ("text-classification", "image-classification", "feature-extraction", "causal-lm")

#: Canonical split names, in the order they are reported.
SPLITS: tuple[str, ...] = ("train", "validation", "test")

#: Other spellings of the split names found in the wild (file names, HF datasets, split columns).
SPLIT_ALIASES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "eval": "validation",
    "test": "test",
    "testing": "test",
}


def canonical_split(name: str) -> str | None:
    """Map a split spelling (``val``, ``dev``, ``Train``) to its canonical name, or None."""
    return SPLIT_ALIASES.get(str(name).strip().lower())


def check_task(task: str) -> str:
    """Return ``task`` when steelyard knows it, else raise a DataError listing the known ones."""
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")
    return task


def modality_of(task: str) -> str:
    """``"image"`` for image tasks, ``"text"`` for the rest: which field of an Example carries input."""
    return "image" if task == "image-classification" else "text"


@dataclass
class Example:
    """One input with its label.

    ``text`` for text tasks; ``image`` for image tasks, a numpy array of shape (H, W) or (H, W, C)
    (uint8 when decoded from files, float32 in [0, 1] for the built-in digits); ``label`` the class
    id (an index into ``TaskDataset.label_names``), or None for unlabelled tasks such as causal LM.
    """

    text: str | None = None
    image: np.ndarray | None = None
    label: int | None = None


@dataclass
class TaskDataset:
    """A task's examples split into train / validation / test, with the names of its labels.

    ``source`` records where the data came from (a path, a hub name, ``builtin:bbc-news``) so a
    result in the store can say what it was measured on. ``notes`` collects one-line remarks made
    while loading or cleaning (for example how many examples :func:`steelyard.data.clean` dropped).
    """

    name: str
    task: str
    label_names: list[str]
    train: list[Example]
    validation: list[Example]
    test: list[Example]
    source: str
    notes: list[str] = field(default_factory=list)

    def split(self, name: str) -> list[Example]:
        """The examples of one split; accepts spellings such as ``val`` or ``dev``, and ``all``.

        ``all`` (train + validation + test, in that order) serves evaluation-only files, where
        every example is meant for testing.
        """
        if str(name).strip().lower() == "all":
            return [*self.train, *self.validation, *self.test]
        canonical = canonical_split(name)
        if canonical is None:
            raise DataError(f"unknown split {name!r}; splits are: {', '.join(SPLITS)}, all")
        return getattr(self, canonical)

    @property
    def num_labels(self) -> int:
        """Number of classes (0 for unlabelled tasks): the size a model's classification head needs."""
        return len(self.label_names)

    @property
    def modality(self) -> str:
        """``"image"`` or ``"text"``: which field of each Example holds the input."""
        return modality_of(self.task)

    def sizes(self) -> dict[str, int]:
        """Number of examples per split."""
        return {s: len(getattr(self, s)) for s in SPLITS}

    def __len__(self) -> int:
        return sum(self.sizes().values())

    def texts(self, split: str) -> list[str]:
        """The texts of a split (empty strings for missing text), in order."""
        return [ex.text or "" for ex in self.split(split)]

    def labels(self, split: str) -> list[int]:
        """The label ids of a split, in order; raises for unlabelled data."""
        examples = self.split(split)
        if any(ex.label is None for ex in examples):
            raise DataError(f"{self.name}: split {split!r} has unlabelled examples")
        return [int(ex.label) for ex in examples]  # type: ignore[arg-type]

    def with_splits(self, **splits: list[Example]) -> TaskDataset:
        """A copy with some splits replaced (the others shared), keeping name, labels and notes."""
        return replace(self, notes=list(self.notes), **splits)

    def subset(self, n_per_split: dict[str, int] | int, seed: int = 0) -> TaskDataset:
        """A smaller copy with at most ``n`` examples per split, for fast tests and quick looks.

        Sampling is stratified by label where the data is labelled, so a small subset keeps every
        class that fits, and deterministic for a given seed. A dict gives a size per split; splits
        it does not name are kept whole.
        """
        if isinstance(n_per_split, int):
            sizes = dict.fromkeys(SPLITS, n_per_split)
        else:
            sizes = {}
            for key, value in n_per_split.items():
                canonical = canonical_split(key)
                if canonical is None:
                    raise DataError(f"unknown split {key!r} in subset sizes; splits are: {', '.join(SPLITS)}")
                sizes[canonical] = int(value)
        new: dict[str, list[Example]] = {}
        for offset, split in enumerate(SPLITS):
            examples = getattr(self, split)
            n = sizes.get(split)
            if n is None or n >= len(examples):
                new[split] = list(examples)
                continue
            if n < 0:
                raise DataError(f"subset size for {split!r} must be >= 0, got {n}")
            labels = [ex.label for ex in examples]
            idx = stratified_sample(labels, n, seed=seed + offset)
            new[split] = [examples[i] for i in idx]
        out = self.with_splits(**new)
        out.notes.append(f"subset of {self.sizes()} -> {out.sizes()} (seed {seed})")
        return out


def _rng(seed: int) -> Any:
    import numpy as np

    return np.random.default_rng(seed)


def _groups(labels: Sequence[int | None]) -> dict[Any, list[int]]:
    groups: dict[Any, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    return groups


def _largest_remainder(weights: dict[Any, float], total: int) -> dict[Any, int]:
    """Integer counts proportional to ``weights`` that add up exactly to ``total``."""
    import math

    raw = {k: w * total for k, w in weights.items()}
    counts = {k: math.floor(v) for k, v in raw.items()}
    left = total - sum(counts.values())
    for k in sorted(raw, key=lambda k: (raw[k] - counts[k], str(k)), reverse=True)[:left]:
        counts[k] += 1
    return counts


def stratified_sample(labels: Sequence[int | None], n: int, seed: int = 0) -> list[int]:
    """Indices of ``n`` items drawn without replacement, in proportion to each label's share.

    Returned in the original order so a subset reads like the data it came from.
    """
    if n >= len(labels):
        return list(range(len(labels)))
    rng = _rng(seed)
    groups = _groups(labels)
    counts = _largest_remainder({k: len(v) / len(labels) for k, v in groups.items()}, n)
    chosen: list[int] = []
    for key in sorted(groups, key=str):
        members = groups[key]
        take = min(counts[key], len(members))
        chosen.extend(int(i) for i in rng.permutation(members)[:take])
    return sorted(chosen)


def stratified_split(
    labels: Sequence[int | None],
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[list[int], list[int], list[int]]:
    """Deterministic, disjoint train / validation / test indices, stratified by label.

    Each class is shuffled with a generator seeded by ``seed`` and cut by the fractions, so every
    class appears in every split in the same proportion (as far as its size allows) and the same
    seed gives the same split on every machine. A class too small to fill all three keeps its
    examples in train first, so no class is missing from training.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataError(
            f"split fractions must be in [0, 1) and sum to less than 1, got validation={val_fraction}, "
            f"test={test_fraction}"
        )
    rng = _rng(seed)
    train: list[int] = []
    val: list[int] = []
    test: list[int] = []
    groups = _groups(labels)
    for key in sorted(groups, key=str):
        members = [int(i) for i in rng.permutation(groups[key])]
        n = len(members)
        n_test = round(n * test_fraction)
        n_val = round(n * val_fraction)
        # Keep at least one example of the class for training.
        while n_test + n_val >= n and (n_test or n_val):
            if n_test >= n_val and n_test:
                n_test -= 1
            else:
                n_val -= 1
        test.extend(members[:n_test])
        val.extend(members[n_test : n_test + n_val])
        train.extend(members[n_test + n_val :])
    return sorted(train), sorted(val), sorted(test)
