"""Tabular sources: CSV, TSV, JSON Lines, JSON and Parquet files, and frames from other readers.

A table names its input and label columns; a ``split`` column, when present, says which rows are
train / validation / test. pandas is imported inside the readers so importing steelyard stays fast.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steelyard.data.assemble import LoadOptions, RawData, RawSplit, is_missing, missing_column_error
from steelyard.data.dataset import SPLIT_ALIASES, canonical_split, modality_of
from steelyard.data.images import image_from_value
from steelyard.data.text_io import decode_utf8, utf8_error
from steelyard.errors import DataError

TABLE_SUFFIXES: frozenset[str] = frozenset({".csv", ".tsv", ".jsonl", ".ndjson", ".json", ".parquet", ".pq"})


@dataclass
class Frame:
    """A pandas DataFrame with how to name its rows in errors (CSV line 2 is the first data row)."""

    df: Any
    origin: str
    row_word: str = "row"
    row_offset: int = 0
    base_dir: Path | None = None

    def where(self, index: Any) -> str:
        try:
            return f"{self.origin} {self.row_word} {int(index) + self.row_offset}"
        except (TypeError, ValueError):
            return f"{self.origin} row {index}"


def _pd() -> Any:
    import pandas as pd

    return pd


def read_table(path: Path) -> dict[str | None, Frame]:
    """Read one table file into frames keyed by split (None when the file itself has no split).

    A JSON file may hold ``{"train": [...], "test": [...]}``, which gives one frame per split.
    """
    suffix = path.suffix.lower()
    origin = str(path)
    if suffix in (".csv", ".tsv"):
        return {None: _read_csv(path, sep="\t" if suffix == ".tsv" else ",")}
    if suffix in (".jsonl", ".ndjson"):
        return {None: _read_jsonl(path)}
    if suffix == ".json":
        return _read_json(path)
    if suffix in (".parquet", ".pq"):
        pd = _pd()
        try:
            df = pd.read_parquet(path)
        except Exception as exc:
            raise DataError(f"cannot read Parquet file {origin}: {_first_line(exc)}") from exc
        return {None: Frame(df, origin, base_dir=path.parent)}
    raise DataError(f"{origin}: unsupported file type {suffix!r}; use .csv, .tsv, .jsonl, .json, .parquet or .txt")


def _read_csv(path: Path, sep: str) -> Frame:
    pd = _pd()
    origin = str(path)
    try:
        df = pd.read_csv(path, sep=sep, encoding="utf-8")
    except UnicodeDecodeError as exc:
        # Re-run the decode line by line so the message can say where the bad byte is.
        decode_utf8(path.read_bytes(), origin)
        raise utf8_error(origin, exc) from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{origin}: the dataset is empty (the file has no header and no rows)") from exc
    except pd.errors.ParserError as exc:
        raise DataError(f"{origin}: malformed CSV: {_first_line(exc)}") from exc
    return Frame(df, origin, row_word="line", row_offset=2, base_dir=path.parent)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _read_jsonl(path: Path) -> Frame:
    pd = _pd()
    origin = str(path)
    records: list[dict[str, Any]] = []
    index: list[int] = []
    for number, line in enumerate(_read_bytes(path).split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise utf8_error(f"{origin} line {number}", exc) from exc
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{origin} line {number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise DataError(f"{origin} line {number}: expected a JSON object per line, got {type(record).__name__}")
        records.append(record)
        index.append(number - 1)
    return Frame(pd.DataFrame.from_records(records, index=index), origin, "line", 1, path.parent)


def _read_json(path: Path) -> dict[str | None, Frame]:
    pd = _pd()
    origin = str(path)
    text = decode_utf8(_read_bytes(path), origin)
    try:
        data = json.loads(text) if text.strip() else []
    except json.JSONDecodeError as exc:
        raise DataError(f"{origin} line {exc.lineno}: not valid JSON ({exc.msg})") from exc
    if isinstance(data, list):
        return {None: Frame(pd.DataFrame.from_records(data), origin, base_dir=path.parent)}
    if isinstance(data, dict):
        if data and all(k.lower() in SPLIT_ALIASES and isinstance(v, list) for k, v in data.items()):
            return {
                canonical_split(k): Frame(pd.DataFrame.from_records(v), f"{origin} [{k}]", base_dir=path.parent)
                for k, v in data.items()
            }
        for key in ("data", "rows", "examples", "records"):
            if isinstance(data.get(key), list):
                return {None: Frame(pd.DataFrame.from_records(data[key]), origin, base_dir=path.parent)}
        if data and all(isinstance(v, list) for v in data.values()):
            try:
                return {None: Frame(pd.DataFrame(data), origin, base_dir=path.parent)}
            except ValueError as exc:
                raise DataError(f"{origin}: columns of different lengths ({_first_line(exc)})") from exc
    raise DataError(
        f"{origin}: expected a list of records, {{'train': [...], 'test': [...]}} or a dict of columns"
    )


def split_by_column(frames: dict[str | None, Frame], opts: LoadOptions) -> dict[str | None, Frame]:
    """Use a ``split`` column, if the unsplit frame has one, to divide its rows."""
    if set(frames) != {None}:
        return frames
    frame = frames[None]
    df = frame.df
    chosen = {opts.text_column, opts.label_column, opts.image_column}
    if "split" not in df.columns or "split" in chosen:
        return frames
    values = df["split"].tolist()
    canon = [None if is_missing(v) else canonical_split(str(v)) for v in values]
    bad = sorted({str(v) for v, c in zip(values, canon, strict=True) if c is None})
    if bad:
        raise DataError(
            f"{frame.origin}: column 'split' has values {bad}; expected train, validation (val, dev) or test"
        )
    out: dict[str | None, Frame] = {}
    for key in ("train", "validation", "test"):
        mask = [c == key for c in canon]
        if any(mask):
            out[key] = Frame(df[mask], frame.origin, frame.row_word, frame.row_offset, frame.base_dir)
    return out


def infer_table_task(columns: list[str], opts: LoadOptions, origin: str) -> str:
    """Guess the task from the columns: an image column without a text column means images."""
    if opts.text_column in columns:
        return "text-classification"
    if opts.image_column in columns:
        return "image-classification"
    flag = "--text-column (or --image-column for images)"
    raise missing_column_error(origin, opts.text_column, columns, "text", flag)


def frames_to_raw(
    frames: dict[str | None, Frame],
    task: str,
    opts: LoadOptions,
    label_names: list[str] | None = None,
) -> RawData:
    """Pull the input and label columns out of each frame, checking that they exist."""
    modality = modality_of(task)
    column = opts.image_column if modality == "image" else opts.text_column
    role, flag = ("image", "--image-column") if modality == "image" else ("text", "--text-column")
    labelled = task != "causal-lm"
    splits: dict[str | None, RawSplit] = {}
    for key, frame in frames.items():
        cols = [str(c) for c in frame.df.columns]
        if column not in cols:
            raise missing_column_error(frame.origin, column, cols, role, flag)
        if labelled and opts.label_column not in cols:
            raise missing_column_error(frame.origin, opts.label_column, cols, "label", "--label-column")
        where = [frame.where(i) for i in frame.df.index]
        values = frame.df[column].tolist()
        if modality == "image":
            inputs = []
            for value, place in zip(values, where, strict=True):
                if is_missing(value):
                    raise DataError(f"{place}: no image in column {column!r}")
                inputs.append(image_from_value(value, place, frame.base_dir))
        else:
            inputs = [_text_cell(v, place) for v, place in zip(values, where, strict=True)]
        labels = frame.df[opts.label_column].tolist() if labelled else None
        splits[key] = RawSplit(inputs=inputs, labels=labels, where=where)
    return RawData(splits=splits, modality=modality, label_names=label_names)


def _text_cell(value: Any, where: str) -> str:
    if is_missing(value):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise utf8_error(where, exc) from exc
    return str(value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
