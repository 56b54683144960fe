"""Reading text as UTF-8 with errors that say which file and which line is not UTF-8."""

from __future__ import annotations

from pathlib import Path

from steelyard.errors import DataError


def utf8_error(where: str, exc: UnicodeDecodeError) -> DataError:
    """The one-line error for bytes that are not UTF-8, with the offending byte and a fix."""
    bad = exc.object[exc.start : exc.start + 1].hex()
    return DataError(
        f"{where} is not UTF-8 text (byte 0x{bad} at offset {exc.start}); re-save it as UTF-8"
    )


def first_bad_line(data: bytes) -> int | None:
    """1-based number of the first line that is not valid UTF-8, or None if all are."""
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return number
    return None


def decode_utf8(data: bytes, where: str, *, by_line: bool = True) -> str:
    """Decode bytes as UTF-8 (a leading BOM is dropped), naming the first bad line on failure."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = first_bad_line(data) if by_line else None
        place = f"{where} line {line}" if line else where
        raise utf8_error(place, exc) from exc


def read_text_file(path: Path, fallback_encoding: str | None = None) -> str:
    """A text file's content as a string.

    ``fallback_encoding`` is for bundled data known to hold a few legacy-encoded files (one BBC
    News article is Windows-1252); user data gets a clear error instead of silent mojibake.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if fallback_encoding is not None:
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return data.decode(fallback_encoding, errors="replace")
    return decode_utf8(data, str(path))
