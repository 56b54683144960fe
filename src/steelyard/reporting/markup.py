"""User strings on a rich console: escape them, and never let one crash a report.

Model names, folder names, CSV labels and notes come from the user; rich reads ``[...]`` in any
printed string as markup, so ``model[v2]`` loses its ``[v2]`` and a label holding ``[/]`` raises
``MarkupError``. Renderers wrap every user string in :func:`escape` (``rich.markup.escape``)
before putting it into a string that carries markup. :class:`SafeConsole` is the net under that
rule: a string whose markup does not parse is printed as plain text instead of ending the command
with an internal error.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.errors import MarkupError
from rich.markup import escape as _escape


def escape(value: object) -> str:
    """``str(value)`` with rich markup escaped (``[`` cannot open a tag)."""
    return _escape(str(value))


class SafeConsole(Console):
    """A console that prints a string with broken markup literally rather than raising."""

    def render_str(self, text: str, **kwargs: Any) -> Any:
        try:
            return super().render_str(text, **kwargs)
        except MarkupError:
            return super().render_str(text, **{**kwargs, "markup": False})


__all__ = ["SafeConsole", "escape"]
