"""Command-line options generated from the config dataclasses, so each option is declared once.

A config field gives its option the type (its annotation), the default and the help text
(``field(metadata={"help": ...})``). An :class:`Opt` says only what the command line does
differently: another flag name (``--target-metric`` for ``target``), an on/off pair, text that is
parsed into the field (``--timeout 30m``), or another name for a switch (``--cache/--no-cache``
for ``cache_teacher``). A boolean field shows as an on/off pair (``--clean/--no-clean``). A
:class:`Group` is the options one config contributes to a command, and :func:`with_options`
appends groups to a command's own parameters; the command then receives what was parsed as one
mapping and builds its configs with :meth:`Group.build`.

``tests/cli/test_cli_options.py`` walks every command and its configs and fails when a field
has no option or an option no field, unless it is listed there as deliberate.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import typer

#: A field default that the command line does not take over (the option is then required).
REQUIRED: Any = inspect.Parameter.empty
_UNSET: Any = object()


@dataclass(frozen=True)
class Opt:
    """How one config field shows on the command line, where it differs from the field itself."""

    field: str
    #: The command's parameter (and so the ``--flag``) when it is not the field's name.
    param: str | None = None
    #: typer's flag declarations, e.g. ``("--final/--no-final",)`` (booleans come in on/off pairs).
    flags: tuple[str, ...] = ()
    help: str | None = None
    default: Any = _UNSET
    #: The command-line type when it is not the field's (text parsed by ``parse``).
    annotation: Any = None
    #: Command-line value → field value (e.g. "30m" → 1800.0; True → False for an inverted switch).
    parse: Callable[[Any], Any] | None = None

    @property
    def name(self) -> str:
        return self.param or self.field

    def value(self, given: Any) -> Any:
        return self.parse(given) if self.parse is not None else given


@dataclass(frozen=True)
class Group:
    """The options that one config class contributes to a command."""

    config: type
    opts: tuple[Opt, ...]

    @classmethod
    def of(cls, config: type, *fields: str | Opt, exclude: tuple[str, ...] = ()) -> Group:
        """Options for ``fields`` of ``config`` (default: every field with help metadata), minus ``exclude``."""
        known = {f.name: f for f in dataclasses.fields(config)}
        if not fields:
            fields = tuple(name for name, f in known.items() if "help" in f.metadata)
        opts = tuple(f if isinstance(f, Opt) else Opt(f) for f in fields)
        opts = tuple(o for o in opts if o.field not in exclude)
        unknown = [o.field for o in opts if o.field not in known]
        if unknown:
            raise TypeError(f"{config.__name__} has no field {', '.join(unknown)}")
        return cls(config, opts)

    def with_opts(self, *changes: Opt) -> Group:
        """The same group with some fields shown differently (another default, help or flag)."""
        by_field = {o.field: o for o in changes}
        missing = set(by_field) - {o.field for o in self.opts}
        if missing:
            raise TypeError(f"not in the group of {self.config.__name__}: {', '.join(sorted(missing))}")
        return Group(self.config, tuple(by_field.get(o.field, o) for o in self.opts))

    def only(self, *fields: str) -> Group:
        return Group(self.config, tuple(o for o in self.opts if o.field in fields))

    def without(self, *fields: str) -> Group:
        return Group(self.config, tuple(o for o in self.opts if o.field not in fields))

    def opt(self, field: str) -> Opt:
        return next(o for o in self.opts if o.field == field)

    def _field(self, name: str) -> dataclasses.Field[Any]:
        return next(f for f in dataclasses.fields(self.config) if f.name == name)

    def default(self, opt: Opt) -> Any:
        """The option's default: its own, else the field's (a field without one makes it required)."""
        if opt.default is not _UNSET:
            return opt.default
        f = self._field(opt.field)
        if f.default is not dataclasses.MISSING:
            return f.default
        if f.default_factory is not dataclasses.MISSING:
            return f.default_factory()
        return REQUIRED

    def annotated(self, field: str) -> Any:
        """``Annotated[type, typer.Option(...)]`` for one field (to declare a parameter by hand)."""
        return self._annotation(self.opt(field))

    def _annotation(self, opt: Opt) -> Any:
        kind = opt.annotation or typing.get_type_hints(self.config)[opt.field]
        text = opt.help or self._field(opt.field).metadata.get("help")
        if text is None:
            raise TypeError(f"{self.config.__name__}.{opt.field} has no help text (field metadata 'help')")
        return Annotated[kind, typer.Option(*opt.flags, help=text)]

    def parameters(self) -> list[inspect.Parameter]:
        return [inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=self.default(o),
                                  annotation=self._annotation(o)) for o in self.opts]

    def values(self, parsed: Mapping[str, Any]) -> dict[str, Any]:
        """Field → value, from what the command line parsed (by parameter name)."""
        return {o.field: o.value(parsed[o.name]) for o in self.opts}

    def build(self, parsed: Mapping[str, Any], **fields: Any) -> Any:
        """The config, from the parsed options and ``fields`` given by the command itself."""
        return self.config(**{**self.values(parsed), **fields})


def with_options(*groups: Group) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Append ``groups``' options to a command's own parameters.

    The command declares a keyword-only parameter ``opts``: it receives every option (generated or
    its own), by parameter name, in one dict. An option two groups share (``seed``, ``max_length``) is declared
    once, by the first group, and read by both.
    """
    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
               for p in inspect.signature(func, eval_str=True).parameters.values() if p.name != "opts"]
        taken = {p.name for p in own}
        generated: list[inspect.Parameter] = []
        for group in groups:
            for param in group.parameters():
                if param.name not in taken:
                    taken.add(param.name)
                    generated.append(param)
        names = [p.name for p in generated]

        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            opts = dict(kwargs)  # the command's own parameters too: a group may read one (``max_length``)
            for name in names:
                del kwargs[name]
            return func(**kwargs, opts=opts)

        # --help lists the command's required parameters, then the configs' options, then its other options.
        required = [p for p in own if p.default is inspect.Parameter.empty]
        params = required + generated + [p for p in own if p not in required]
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return wrap
