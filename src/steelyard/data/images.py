"""Decoding image files and image cells into numpy arrays, with errors that name the bad file.

Pillow is imported only here and only when an image is actually read, so text-only work never
pays for it.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from steelyard.errors import DataError

#: File suffixes read as images in class folders.
IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})

# Modes kept as they are; single-channel exotic modes become L, everything else RGB, so every
# array is (H, W) uint8 or (H, W, 3) uint8.
_GRAY_MODES = {"1", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DataError("reading images needs Pillow: pip install pillow (or steelyard[data])") from exc
    return Image


def pil_to_array(img: Any) -> np.ndarray:
    """A PIL image as a uint8 array, (H, W) for grayscale and (H, W, 3) for colour."""
    if img.mode in _GRAY_MODES:
        img = img.convert("L")
    elif img.mode not in ("L", "RGB"):
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8).copy()


def decode_image_bytes(data: bytes, where: str) -> np.ndarray:
    """Decode encoded image bytes (PNG, JPEG, ...); ``where`` names the file or row in the error."""
    image_mod = _pil()
    try:
        with image_mod.open(io.BytesIO(data)) as img:
            img.load()
            return pil_to_array(img)
    except Exception as exc:  # PIL raises UnidentifiedImageError, OSError, SyntaxError, ValueError ...
        reason = "not a recognised image format" if type(exc).__name__ == "UnidentifiedImageError" else _first_line(exc)
        raise DataError(f"cannot decode image {where}: {reason}") from exc


def read_image_file(path: Path) -> np.ndarray:
    """Read and decode one image file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read image file {path}: {exc.strerror or exc}") from exc
    return decode_image_bytes(data, str(path))


def image_from_value(value: Any, where: str, base_dir: Path | None = None) -> np.ndarray:
    """Turn one cell of an image column into an array.

    Accepts what tables and Hugging Face datasets hold: a path (relative to the data file's
    folder), encoded bytes, a ``{"bytes": ..., "path": ...}`` dict (datasets' Image feature as
    pandas), a PIL image, a nested list or an array.
    """
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "getbands"):  # a PIL image
        return pil_to_array(value)
    if isinstance(value, dict):
        data = value.get("bytes")
        if data:
            return decode_image_bytes(bytes(data), where)
        path = value.get("path")
        if path:
            return image_from_value(str(path), where, base_dir)
        raise DataError(f"image cell at {where} has neither bytes nor a path")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return decode_image_bytes(bytes(value), where)
    if isinstance(value, str):
        path = Path(value).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise DataError(f"image file {path} named at {where} does not exist")
        return read_image_file(path)
    if isinstance(value, (list, tuple)):
        return np.asarray(value)
    raise DataError(f"image cell at {where} is a {type(value).__name__}, not a path, bytes or an array")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
