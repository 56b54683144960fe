"""Folder sources: one subfolder per class (text files or images), optionally under split folders.

This is the layout people get from unpacking an image dataset or a corpus of articles
(``data/<class>/<file>``, or ``data/train/<class>/<file>``), so it needs no manifest.
"""

from __future__ import annotations

from pathlib import Path

from steelyard.data.assemble import RawData, RawSplit
from steelyard.data.images import IMAGE_SUFFIXES, read_image_file
from steelyard.data.text_io import read_text_file
from steelyard.errors import DataError

#: File suffixes read as text in class folders ("" covers corpora such as 20 Newsgroups).
TEXT_SUFFIXES: frozenset[str] = frozenset({".txt", ".text", ".md", ""})


def _visible(path: Path | str) -> bool:
    name = path.name if isinstance(path, Path) else path
    return not name.startswith((".", "_"))


def subfolders(path: Path) -> list[Path]:
    """Visible subfolders, sorted by name so class ids are stable."""
    return sorted((p for p in path.iterdir() if p.is_dir() and _visible(p)), key=lambda p: p.name)


def _files(folder: Path) -> list[Path]:
    files = [p for p in folder.rglob("*") if p.is_file() and all(_visible(q) for q in p.relative_to(folder).parts)]
    return sorted(files)


def _kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in TEXT_SUFFIXES:
        return "text"
    return None


def detect_modality(class_dirs: list[Path], origin: str) -> str:
    """``"image"`` or ``"text"`` from the files found; mixed or unrecognised folders are errors."""
    counts = {"image": 0, "text": 0}
    for folder in class_dirs:
        for f in _files(folder):
            kind = _kind(f)
            if kind:
                counts[kind] += 1
    if counts["image"] and counts["text"]:
        raise DataError(
            f"{origin}: class folders mix {counts['image']} image and {counts['text']} text files; "
            "pass --task to choose which to read"
        )
    if counts["image"]:
        return "image"
    if counts["text"]:
        return "text"
    raise DataError(
        f"{origin}: the dataset is empty (no .txt or image files in its class folders)"
    )


def read_class_folders(
    split_dirs: dict[str | None, Path],
    modality: str,
    origin: str,
    *,
    fallback_encoding: str | None = None,
) -> RawData:
    """Read ``<split dir>/<class>/<file>`` into raw splits; labels are the class folder names.

    Files of the other modality or with unknown extensions are skipped and counted in a note.
    """
    splits: dict[str | None, RawSplit] = {}
    names: set[str] = set()
    skipped = 0
    for key, root in split_dirs.items():
        inputs: list[object] = []
        labels: list[str] = []
        where: list[str] = []
        for class_dir in subfolders(root):
            for f in _files(class_dir):
                if _kind(f) != modality:
                    skipped += 1
                    continue
                if modality == "image":
                    inputs.append(read_image_file(f))
                else:
                    inputs.append(read_text_file(f, fallback_encoding).strip())
                labels.append(class_dir.name)
                where.append(str(f))
                names.add(class_dir.name)
        splits[key] = RawSplit(inputs=inputs, labels=labels, where=where)
    notes = [f"skipped {skipped} file(s) that are not {modality} files"] if skipped else []
    return RawData(splits=splits, modality=modality, label_names=sort_class_names(names), notes=notes)


def sort_class_names(names: set[str] | list[str]) -> list[str]:
    """Sorted class names; all-digit names sort numerically so folder ``10`` gets id 10, not 2."""
    if names and all(n.isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)
