"""Datasets for evaluation and training: loading, quality checks, cleaning and augmentation.

Every source (local tables and folders, Hugging Face datasets, the offline demo sets) becomes a
:class:`TaskDataset`; pandas, scikit-learn, Pillow and datasets are imported only when a loader
needs them.
"""

from __future__ import annotations

from steelyard.data.augment import (
    ImageAugment,
    TextAugment,
    augment_examples,
    hflip,
    random_crop,
    rotate,
    token_dropout,
    token_swap,
)
from steelyard.data.dataset import (
    SPLITS,
    TASKS,
    Example,
    TaskDataset,
    canonical_split,
    stratified_sample,
    stratified_split,
)
from steelyard.data.quality import Conflict, DataReport, Leakage, LengthStats, clean, data_report, drop_counts, leakage
from steelyard.data.sources import builtin_datasets, load_dataset

__all__ = [
    "SPLITS",
    "TASKS",
    "Conflict",
    "DataReport",
    "Example",
    "ImageAugment",
    "Leakage",
    "LengthStats",
    "TaskDataset",
    "TextAugment",
    "augment_examples",
    "builtin_datasets",
    "canonical_split",
    "clean",
    "data_report",
    "drop_counts",
    "hflip",
    "leakage",
    "load_dataset",
    "random_crop",
    "rotate",
    "stratified_sample",
    "stratified_split",
    "token_dropout",
    "token_swap",
]
