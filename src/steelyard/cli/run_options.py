"""What every command that records a run shares: ``--name``, ``--tag`` and the command that reruns it.

:func:`records_run` appends the two options (generated from
:class:`~steelyard.store.runs.RunLabels`) to a command; what they say is checked while the options
are parsed (before any work) and handed to the ``record_*`` call through ``OPTIONS.labels``. It
also rebuilds the invocation from what click parsed (:func:`invocation`: every option that differs
from its default, local paths made absolute, output files and labels left out) into
``OPTIONS.command``, which the run stores as its reproduce command. ``cli/main.py`` applies it to
each recording command where the command is registered.
"""

from __future__ import annotations

import functools
import inspect
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
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
#: Parameters a reproduce command leaves out: where reports were written, whether to record, the labels.
NOT_REPRODUCED = frozenset({"json_out", "csv_out", "html", "markdown", "save", "overwrite", *PARAMS})


def invocation(ctx: Any, values: Mapping[str, Any], program: str = "steelyard") -> str:
    """The command line that gives ``values`` again: ``program``, the subcommand, then each argument and
    each option that differs from its default (a relative path that exists here is written absolute)."""
    names: list[str] = []
    here = ctx
    while here is not None and here.parent is not None:  # the root's own name is how python was started
        names.insert(0, here.info_name)
        here = here.parent
    args = [program, *names]
    options: list[str] = []
    for param in ctx.command.params:
        if param.name in NOT_REPRODUCED or param.name not in values:
            continue
        value = values[param.name]
        if getattr(param, "param_type_name", "") == "argument":
            items = value if isinstance(value, (list, tuple)) else [value]
            args += [_text(v) for v in items if v is not None]
            continue
        if value is None or _same(value, param.default) or value == [] or value == ():
            continue
        if getattr(param, "is_flag", False) and isinstance(value, bool):
            flags = param.opts if value else list(getattr(param, "secondary_opts", []) or [])
            if flags:
                options.append(_longest(flags))
            continue
        flag = _longest(param.opts)
        for item in (value if getattr(param, "multiple", False) else [value]):
            options += [flag, _text(item)]
    return shlex.join(args + options)


def current_context() -> Any:
    """The click context of the command being run (typer vendors its own copy of click; try both)."""
    import importlib

    for name in ("typer._click.globals", "click"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        ctx = module.get_current_context(silent=True)
        if ctx is not None:
            return ctx
    return None


def _same(value: Any, default: Any) -> bool:
    if callable(default):
        return False
    try:
        return bool(value == default) or (isinstance(default, (str, Path)) and str(value) == str(default))
    except Exception:
        return False


def _longest(flags: list[str]) -> str:
    long = [f for f in flags if f.startswith("--")]
    return long[0] if long else flags[0]


def _text(value: Any) -> str:
    """A value as the command line takes it; a relative path to something that exists, made absolute."""
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    if isinstance(value, (str, Path)) and text and not text.startswith("-"):
        path = Path(text).expanduser()
        try:
            if not path.is_absolute() and path.exists():
                return str(path.resolve())
        except OSError:
            pass
    return text


def records_run(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` with ``--name`` and ``--tag``; while it runs, ``OPTIONS.labels`` holds what they said."""
    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
           for p in inspect.signature(func, eval_str=True).parameters.values()]
    clash = sorted({p.name for p in own} & set(PARAMS))
    if clash:
        raise TypeError(f"{func.__name__} already has a parameter {', '.join(clash)}")

    @functools.wraps(func)
    def command(**kwargs: Any) -> Any:
        ctx = current_context()
        line = invocation(ctx, kwargs) if ctx is not None else None
        labels = RUN.build({name: kwargs.pop(name) for name in PARAMS})
        before = OPTIONS.labels, OPTIONS.command
        OPTIONS.labels, OPTIONS.command = labels, line
        try:
            return func(**kwargs)
        finally:
            OPTIONS.labels, OPTIONS.command = before

    params = own + RUN.parameters()
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command
