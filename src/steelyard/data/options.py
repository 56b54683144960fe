"""How a command's data is chosen and prepared, as one picklable value.

Stored with every run that uses data, and sent to search trial processes, which load the very
same splits from it (same source, columns, seed, cleaning and subsets).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from steelyard.data.dataset import TaskDataset
from steelyard.errors import ConfigError


@dataclass(frozen=True)
class DataOptions:
    """Where the data comes from and how it is prepared.

    ``clean`` None means: clean the built-in sets (their splits share inputs: 30 BBC News articles
    are in both train and test, which makes test scores optimistic), keep other data as it is and
    let the commands warn about any overlap. The value is resolved on construction, so a stored run
    says what was done.
    """

    source: str
    task: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    image_column: str = "image"
    seed: int = 0
    clean: bool | None = None
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    #: Share of the examples that make the validation split when the source has none (carved from
    #: train; the test split does not move). Model selection (``optimize``, early stopping) reads
    #: this split, so its size sets how small an accuracy change the selection can resolve: 218
    #: BBC News examples at the default 0.1 put one point at two examples.
    val_fraction: float = 0.1

    def __post_init__(self) -> None:
        if not (isinstance(self.val_fraction, (int, float)) and 0 < self.val_fraction < 0.8):
            raise ConfigError(f"--val-fraction must be between 0 and 0.8 (a share of the examples), "
                              f"got {self.val_fraction}")
        if self.clean is None:
            from steelyard.data.builtin import is_builtin

            object.__setattr__(self, "clean", is_builtin(self.source))

    def load(self) -> TaskDataset:
        """Load as every task command does: columns, seeded split, ``clean``, stratified subsets."""
        from steelyard.data import clean as clean_dataset
        from steelyard.data import load_dataset

        ds = load_dataset(self.source, self.task, text_column=self.text_column, label_column=self.label_column,
                          image_column=self.image_column, seed=self.seed, val_fraction=self.val_fraction)
        if self.clean:
            ds = clean_dataset(ds)
        sizes: dict[str, int] = {}
        for flag, value, splits in (("--max-train-examples", self.max_train_examples, ("train",)),
                                    ("--max-eval-examples", self.max_eval_examples, ("validation", "test"))):
            if value is not None:
                if value < 1:
                    raise ConfigError(f"{flag} must be at least 1, got {value}")
                sizes.update(dict.fromkeys(splits, value))
        return ds.subset(sizes, seed=self.seed) if sizes else ds


def data_task_for(handle: Any, task: str | None) -> str | None:
    """The dataset task: the one asked for, else the model's when it names one (None: infer from data)."""
    if task is not None:
        return task
    if handle.source_kind != "factory" and handle.task in ("text-classification", "image-classification", "causal-lm"):
        return handle.task
    return None
