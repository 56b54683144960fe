"""Config fields given loosely from Python: one name where a tuple of names is expected.

``ProfileConfig(hardware="t4")`` means ``hardware=("t4",)``; iterating the string would give
``("t", "4")`` and an error about a device called ``t``. Frozen configs call :func:`normalise_tuples`
in ``__post_init__`` so every field that takes several names also takes one (or a comma list, as on
the command line), and a list becomes the hashable tuple the config is declared with.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["as_tuple", "normalise_tuples"]


def as_tuple(value: Any, *, split: str | None = ",") -> Any:
    """``"t4"`` → ``("t4",)``; ``"local, t4"`` → ``("local", "t4")`` (``split=None``: kept whole);
    ``8`` → ``(8,)``; a list or other iterable → a tuple; None stays None."""
    if value is None or isinstance(value, tuple):
        return value
    if isinstance(value, str):
        parts = value.split(split) if split else [value]
        return tuple(p.strip() for p in parts if p.strip())
    if isinstance(value, int | float):
        return (value,)
    if isinstance(value, Iterable):
        return tuple(value)
    return value


def normalise_tuples(config: Any, *names: str, whole: tuple[str, ...] = ()) -> None:
    """Normalise the tuple fields ``names`` of a frozen dataclass in place (``whole``: never split on commas)."""
    for name in (*names, *whole):
        value = getattr(config, name)
        object.__setattr__(config, name, as_tuple(value, split=None if name in whole else ","))
