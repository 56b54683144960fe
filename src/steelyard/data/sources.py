"""``load_dataset``: one entry point that turns any supported data source into a TaskDataset.

The source string is resolved in this order: a built-in demo set name (``bbc-news``, ``digits``),
an existing file or folder, then a Hugging Face hub name. A string that looks like a path but
does not exist is reported as a missing file rather than sent to the hub.
"""

from __future__ import annotations

from pathlib import Path

from steelyard.data.assemble import LoadOptions, RawData, RawSplit, assemble
from steelyard.data.builtin import BUILTINS
from steelyard.data.dataset import TaskDataset, canonical_split, check_task, modality_of
from steelyard.data.folders import detect_modality, read_class_folders, subfolders
from steelyard.data.hub import is_saved_dataset, load_hub, load_saved
from steelyard.data.images import IMAGE_SUFFIXES
from steelyard.data.tables import (
    TABLE_SUFFIXES,
    Frame,
    frames_to_raw,
    infer_table_task,
    read_table,
    split_by_column,
)
from steelyard.data.text_io import decode_utf8
from steelyard.errors import DataError

#: Suffixes of plain text files read line by line for causal language modelling.
LM_TEXT_SUFFIXES: frozenset[str] = frozenset({".txt", ".text", ".md"})


def builtin_datasets() -> list[str]:
    """Names of the offline demo datasets."""
    return sorted(BUILTINS)


def load_dataset(
    source: str | Path,
    task: str | None = None,
    *,
    text_column: str = "text",
    label_column: str = "label",
    image_column: str = "image",
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> TaskDataset:
    """Load a data source as a :class:`TaskDataset` with train / validation / test splits.

    ``source`` is a built-in name (``bbc-news``, ``digits``), a ``.csv`` / ``.tsv`` / ``.jsonl``
    / ``.json`` / ``.parquet`` file (a ``split`` column is honoured), a ``.txt`` file (one
    causal-LM example per non-empty line), a folder with one subfolder per class (text files or
    images, optionally under ``train/`` ``test/`` folders), a folder of ``train.*`` /
    ``validation.*`` / ``test.*`` files, a folder written by datasets' ``save_to_disk``, or a
    Hugging Face hub name (``ag_news``; ``glue:sst2`` selects a config; ``hf:`` forces the hub).
    ``task`` is inferred when None. Sources without a split get a stratified split from ``seed``;
    a missing validation or test split is carved out of train the same way.

    Raises :class:`~steelyard.errors.DataError` with a one-line message for anything unusable.
    """
    if task is not None:
        check_task(task)
    opts = LoadOptions(text_column, label_column, image_column, seed, val_fraction, test_fraction)
    text = str(source).strip()
    if not text:
        raise DataError("no data source given")
    if text.lower().startswith("hf:"):
        return _from_hub(text[3:], task, opts)
    path = Path(text).expanduser()
    if text.lower() in BUILTINS and not path.exists():
        return BUILTINS[text.lower()](task, opts)
    if path.is_dir():
        return _from_folder(path, task, opts)
    if path.exists():
        return _from_file(path, task, opts)
    if _looks_like_path(text):
        raise DataError(f"data file not found: {text}")
    return _from_hub(text, task, opts)


def _looks_like_path(text: str) -> bool:
    """True when the string reads as a local path rather than a hub id such as ``org/name``."""
    suffix = Path(text).suffix.lower()
    known = TABLE_SUFFIXES | LM_TEXT_SUFFIXES | IMAGE_SUFFIXES
    return (
        text.startswith(("/", "./", "../", "~", "\\"))
        or "\\" in text
        or suffix in known
        or text.count("/") > 1
    )


def _from_hub(name: str, task: str | None, opts: LoadOptions) -> TaskDataset:
    try:
        frames, class_names, notes = load_hub(name, opts)
    except DataError as exc:
        if "pip install datasets" in str(exc):
            raise DataError(
                f"unknown data source {name!r}: not an existing file or folder, nor a built-in dataset "
                f"({', '.join(builtin_datasets())}); to load it from the Hugging Face hub: pip install datasets"
            ) from exc
        raise
    short = name.split(":")[0].split("/")[-1]
    return _from_frames(frames, task, opts, name=short, source=f"hf:{name}", origin=f"hf:{name}",
                        class_names=class_names, notes=notes)


def _from_frames(
    frames: dict[str | None, Frame],
    task: str | None,
    opts: LoadOptions,
    *,
    name: str,
    source: str,
    origin: str,
    class_names: dict[str, list[str]] | None = None,
    notes: list[str] | None = None,
) -> TaskDataset:
    if not frames:
        raise DataError(f"{origin}: the dataset is empty (no usable split)")
    if all(len(f.df) == 0 for f in frames.values()):
        raise DataError(f"{origin}: the dataset is empty (no rows)")
    frames = split_by_column(frames, opts)
    if task is None:
        first = next(iter(frames.values()))
        task = infer_table_task([str(c) for c in first.df.columns], opts, first.origin)
    label_names = (class_names or {}).get(opts.label_column)
    raw = frames_to_raw(frames, task, opts, label_names=label_names)
    raw.notes.extend(notes or [])
    return assemble(raw, name=name, source=source, task=task, opts=opts, origin=origin)


def _from_file(path: Path, task: str | None, opts: LoadOptions) -> TaskDataset:
    suffix = path.suffix.lower()
    source = str(path.resolve())
    if suffix in LM_TEXT_SUFFIXES:
        return _from_text_files({None: path}, task, opts, name=path.stem, source=source, origin=str(path))
    if suffix in TABLE_SUFFIXES:
        return _from_frames(read_table(path), task, opts, name=path.stem, source=source, origin=str(path))
    raise DataError(
        f"{path}: unsupported file type {suffix or '(no extension)'!r}; use .csv, .tsv, .jsonl, .json, "
        ".parquet, .txt, a folder, a built-in dataset or a Hugging Face dataset name"
    )


def _from_text_files(
    files: dict[str | None, Path], task: str | None, opts: LoadOptions, *, name: str, source: str, origin: str
) -> TaskDataset:
    """Plain text for causal LM: each non-empty line is one example (packing is the trainer's job)."""
    if task not in (None, "causal-lm"):
        raise DataError(
            f"{origin}: a plain text file has no labels, so it only serves task 'causal-lm', not {task!r}; "
            "use a CSV/JSONL with text and label columns or one folder per class"
        )
    splits: dict[str | None, RawSplit] = {}
    for key, path in files.items():
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
        lines = decode_utf8(data, str(path)).splitlines()
        kept = [(i, line) for i, line in enumerate(lines, start=1) if line.strip()]
        splits[key] = RawSplit(
            inputs=[line for _, line in kept], labels=None, where=[f"{path} line {i}" for i, _ in kept]
        )
    raw = RawData(splits=splits, modality="text")
    return assemble(raw, name=name, source=source, task="causal-lm", opts=opts, origin=origin)


def _split_files(path: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for f in sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")):
        key = canonical_split(f.stem)
        if key is None or f.suffix.lower() not in TABLE_SUFFIXES | LM_TEXT_SUFFIXES:
            continue
        if key in found:
            raise DataError(f"{path}: two files for the {key} split: {found[key].name} and {f.name}")
        found[key] = f
    return found


def _from_folder(path: Path, task: str | None, opts: LoadOptions) -> TaskDataset:
    origin = str(path)
    source = str(path.resolve())
    if is_saved_dataset(path):
        frames, class_names, notes = load_saved(path, opts)
        return _from_frames(frames, task, opts, name=path.name, source=source, origin=origin,
                            class_names=class_names, notes=notes)
    dirs = subfolders(path)
    split_dirs = {canonical_split(d.name): d for d in dirs}
    if dirs and None not in split_dirs:
        # data/train/<class>/..., data/test/<class>/...
        return _from_class_folders(dict(split_dirs), task, opts, path)
    files = _split_files(path)
    if files:
        suffixes = {f.suffix.lower() for f in files.values()}
        if suffixes <= LM_TEXT_SUFFIXES:
            return _from_text_files(dict(files), task, opts, name=path.name, source=source, origin=origin)
        frames: dict[str | None, Frame] = {}
        for key, f in files.items():
            if f.suffix.lower() in LM_TEXT_SUFFIXES:
                raise DataError(f"{path}: split files mix plain text ({f.name}) with tables; use one kind")
            table = read_table(f)
            if set(table) != {None}:
                raise DataError(f"{f}: a split file must hold a single split")
            frames[key] = table[None]
        return _from_frames(frames, task, opts, name=path.name, source=source, origin=origin)
    if dirs:
        return _from_class_folders({None: path}, task, opts, path)
    raise DataError(
        f"{path}: no data found; expected one subfolder per class, train/validation/test files "
        "(.csv, .jsonl, .json, .parquet, .txt) or a dataset saved with datasets' save_to_disk"
    )


def _from_class_folders(
    split_roots: dict[str | None, Path], task: str | None, opts: LoadOptions, path: Path
) -> TaskDataset:
    origin = str(path)
    class_dirs = [d for root in split_roots.values() for d in subfolders(root)]
    if not class_dirs:
        raise DataError(f"{origin}: the dataset is empty (no class subfolders)")
    if task is None:
        modality = detect_modality(class_dirs, origin)
        task = "image-classification" if modality == "image" else "text-classification"
    else:
        modality = modality_of(task)
    raw: RawData = read_class_folders(split_roots, modality, origin)
    if not any(s.inputs for s in raw.splits.values()):
        kind = "image" if modality == "image" else "text (.txt)"
        raise DataError(f"{origin}: the dataset is empty (no {kind} files in its class folders for task {task!r})")
    return assemble(raw, name=path.name, source=str(path.resolve()), task=task, opts=opts, origin=origin)


__all__ = ["builtin_datasets", "load_dataset"]
