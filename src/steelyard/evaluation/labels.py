"""Check that a model's classification head fits a dataset's labels, and map between them.

A head with K outputs can only be scored on data with K classes. When both sides name their
labels and the names are the same set in another order, dataset ids are mapped onto the model's
ids by name; generic names (``LABEL_0``) carry no meaning, so only the count is checked then.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from steelyard.errors import DataError

_GENERIC = re.compile(r"^(LABEL_)?\d+$")


def model_label_names(config: Any, num_labels: int) -> list[str] | None:
    """The head's label names from ``config.id2label``, None when they are the generic defaults."""
    id2label = getattr(config, "id2label", None) or {}
    if len(id2label) != num_labels:
        return None
    names = [str(id2label.get(i, id2label.get(str(i), i))) for i in range(num_labels)]
    if all(_GENERIC.match(n) for n in names):
        return None
    return names


@dataclass(frozen=True)
class LabelMap:
    """``to_model[i]`` is the model's class id for dataset class ``i``; ``names`` in model order."""

    to_model: list[int]
    names: list[str]
    note: str | None = None


def match_labels(model_name: str, num_outputs: int, config: Any, dataset_names: list[str]) -> LabelMap:
    """How dataset labels line up with a head of ``num_outputs`` classes, or a DataError."""
    k = len(dataset_names)
    if num_outputs != k:
        raise DataError(
            f"labels do not match the model's head: {model_name!r} predicts {num_outputs} classes but the data "
            f"has {k} ({', '.join(dataset_names[:8])}{', ...' if k > 8 else ''}); fine-tune it on this data first "
            "(steelyard finetune)"
        )
    names = model_label_names(config, num_outputs)
    if names is None or names == list(dataset_names):
        return LabelMap(list(range(k)), list(dataset_names))
    if sorted(names) == sorted(dataset_names):
        index = {n: i for i, n in enumerate(names)}
        return LabelMap([index[n] for n in dataset_names], names, "dataset labels mapped onto the model's by name")
    return LabelMap(
        list(range(k)),
        list(dataset_names),
        f"the model's label names ({', '.join(names[:5])}) differ from the data's; matched by position",
    )
