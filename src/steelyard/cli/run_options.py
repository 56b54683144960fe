"""``--name`` and ``--tag``: declared once, for every command that records a run in the store.

:func:`records_run` appends the two options (generated from
:class:`~steelyard.store.runs.RunLabels`) to a command; what they say is checked while the options
are parsed (before any work) and handed to the ``record_*`` call through ``OPTIONS.labels``.
``cli/main.py`` applies it to each recording command where the command is registered.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from steelyard.cli.options import Group, Opt
from steelyard.cli.state import OPTIONS
from steelyard.store.runs import RunLabels

RUN = Group.of(
    RunLabels,
    "name",
    Opt("tags", param="tag", flags=("--tag",), annotation=list[str] | None, default=None,
        parse=lambda tags: tuple(tags or ())),
)
#: The parameters :func:`records_run` adds (a command's own parameters must not use these names).
PARAMS = tuple(o.name for o in RUN.opts)


def records_run(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` with ``--name`` and ``--tag``; while it runs, ``OPTIONS.labels`` holds what they said."""
    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
           for p in inspect.signature(func, eval_str=True).parameters.values()]
    clash = sorted({p.name for p in own} & set(PARAMS))
    if clash:
        raise TypeError(f"{func.__name__} already has a parameter {', '.join(clash)}")

    @functools.wraps(func)
    def command(**kwargs: Any) -> Any:
        labels = RUN.build({name: kwargs.pop(name) for name in PARAMS})
        before, OPTIONS.labels = OPTIONS.labels, labels
        try:
            return func(**kwargs)
        finally:
            OPTIONS.labels = before

    params = own + RUN.parameters()
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command
