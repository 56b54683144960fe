"""Hugging Face datasets: by hub name (``ag_news``, ``glue:sst2`` for a config) or saved to disk.

``datasets`` is optional and imported only here, so users who never load from the hub do not
need it, and those who do get a one-line instruction instead of an ImportError traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from steelyard.data.assemble import LoadOptions, is_missing
from steelyard.data.dataset import canonical_split
from steelyard.data.tables import Frame
from steelyard.errors import DataError

#: Files that mark a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``.
SAVED_MARKERS: tuple[str, ...] = ("dataset_dict.json", "state.json", "dataset_info.json")


def is_saved_dataset(path: Path) -> bool:
    """True for a folder written by datasets' ``save_to_disk``."""
    return any((path / marker).is_file() for marker in SAVED_MARKERS)


def _datasets(what: str) -> Any:
    try:
        import datasets
    except ImportError as exc:
        raise DataError(f"{what} needs the Hugging Face datasets package: pip install datasets") from exc
    return datasets


def load_hub(name: str, opts: LoadOptions) -> tuple[dict[str | None, Frame], dict[str, list[str]], list[str]]:
    """Load a hub dataset; ``name:config`` picks a configuration (``glue:sst2``)."""
    datasets = _datasets(f"loading {name!r} from the Hugging Face hub")
    path, _, config = name.partition(":")
    try:
        obj = datasets.load_dataset(path, config or None)
    except Exception as exc:
        raise DataError(f"could not load dataset {name!r} from the Hugging Face hub: {_first_line(exc)}") from exc
    return to_frames(obj, f"hf:{name}", opts)


def load_saved(path: Path, opts: LoadOptions) -> tuple[dict[str | None, Frame], dict[str, list[str]], list[str]]:
    """Load a folder written by ``save_to_disk``."""
    datasets = _datasets(f"reading the saved dataset {path}")
    try:
        obj = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise DataError(f"could not read the saved dataset {path}: {_first_line(exc)}") from exc
    return to_frames(obj, str(path), opts)


def to_frames(
    obj: Any, origin: str, opts: LoadOptions
) -> tuple[dict[str | None, Frame], dict[str, list[str]], list[str]]:
    """Frames per split, class names of ClassLabel columns, and notes about skipped splits.

    A ``DatasetDict`` gives one frame per recognised split; splits such as ``unsupervised`` are
    skipped, and so is a split whose labels are all missing (GLUE's test sets are labelled -1).
    """
    items = list(obj.items()) if hasattr(obj, "keys") and hasattr(obj, "items") else [(None, obj)]
    frames: dict[str | None, Frame] = {}
    class_names: dict[str, list[str]] = {}
    notes: list[str] = []
    for split, ds in items:
        key = canonical_split(split) if split is not None else None
        if split is not None and key is None:
            notes.append(f"skipped split {split!r} (not train, validation or test)")
            continue
        if key in frames:
            notes.append(f"skipped split {split!r} (a {key} split was already read)")
            continue
        for column, feature in (getattr(ds, "features", None) or {}).items():
            names = getattr(feature, "names", None)
            if type(feature).__name__ == "ClassLabel" and names:
                class_names[str(column)] = [str(n) for n in names]
        df = ds.to_pandas()
        if opts.label_column in df.columns and len(df) and _unlabelled(df[opts.label_column].tolist()):
            notes.append(f"skipped split {split!r}: it has no labels")
            continue
        frames[key] = Frame(df, f"{origin} [{split}]" if split is not None else origin)
    return frames, class_names, notes


def _unlabelled(values: list[Any]) -> bool:
    return all(is_missing(v) or v == -1 for v in values)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
