"""One registry of how each run kind is shown: kind → loader, console renderer, report part.

``steelyard runs show`` prints a stored run with its kind's console renderer; ``steelyard report``
(``--html``, ``--markdown``) and the ``--html`` / ``--markdown`` of each command build the kind's
report part (sections of tables, figures and text, written out by :mod:`steelyard.reporting.html`).
A new kind registers once with :func:`register_view`, with functions or lazy
``"package.module:function"`` strings so that ``import steelyard`` stays fast. A kind without a
view, or without one of the three, falls back to the generic part (headline numbers, config,
environment) and prints nothing beyond the headline table on the console.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from steelyard.reporting.document import Part

#: payload dict → the typed object the renderers take.
Loader = Callable[[dict[str, Any]], Any]
#: (object, record, console) → None; ``record`` is the :class:`steelyard.store.RunRecord` (None in memory).
ConsoleRenderer = Callable[[Any, Any, Any], None]
#: (object, run_id, record) → the run's report part.
PartBuilder = Callable[[Any, "int | None", Any], Part]
#: record → the words `runs list` shows for it (None: its headline numbers).
Headline = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class RunView:
    """How one run kind is loaded from the store and shown (each entry a function or a ``"module:attr"``)."""

    load: Loader | str | None = None
    console: ConsoleRenderer | str | None = None
    part: PartBuilder | str | None = None
    headline: Headline | str | None = None


_VIEWS: dict[str, RunView] = {}


def register_view(kind: str, *, load: Loader | str | None = None, console: ConsoleRenderer | str | None = None,
                  part: PartBuilder | str | None = None, headline: Headline | str | None = None) -> None:
    """Teach `runs list|show` and `report` a run kind (without ``load`` the renderers get the payload dict)."""
    _VIEWS[kind] = RunView(load, console, part, headline)


def view(kind: str) -> RunView:
    """The kind's view; an empty one (generic part, no console renderer) for unregistered kinds."""
    return _VIEWS.get(kind, RunView())


def kinds() -> list[str]:
    return sorted(_VIEWS)


def _resolve(ref: Any) -> Any:
    if isinstance(ref, str):
        module, attr = ref.split(":")
        return getattr(importlib.import_module(module), attr)
    return ref


def load(record: Any) -> Any:
    """A stored run's payload as its kind's typed object (the dict itself without a loader)."""
    loader = view(record.kind).load
    return _resolve(loader)(record.payload) if loader else record.payload


def render_console(record: Any, console: Any) -> bool:
    """Print a stored run with its kind's console renderer; False when the kind has none."""
    renderer = view(record.kind).console
    if renderer is None:
        return False
    _resolve(renderer)(load(record), record, console)
    return True


def headline(record: Any) -> str | None:
    """The kind's one-line summary of a stored run for `runs list`, or None to show its headline numbers."""
    words = view(record.kind).headline
    return _resolve(words)(record) if words is not None else None


def part_for(kind: str, obj: Any, run_id: int | None = None, record: Any = None) -> Part:
    """The report part of an in-memory result (``obj``) or of a stored run (``record``)."""
    builder = view(kind).part
    if builder is None:
        from steelyard.reporting.report_parts import generic_part

        return generic_part(record, run_id)
    return _resolve(builder)(obj, run_id, record)


def part_for_record(record: Any) -> Part:
    """The part of a stored run (a :class:`steelyard.store.RunRecord`)."""
    if view(record.kind).part is None:
        return part_for(record.kind, None, record.id, record)
    return part_for(record.kind, load(record), record.id, record)


# -- console renderers of stored runs (the typed object, the record, a rich console) --------------
def _profile_console(report: Any, record: Any, console: Any) -> None:
    from steelyard.reporting.console import render_cost_report

    render_cost_report(report, console)


def _comparison_console(comp: Any, record: Any, console: Any) -> None:
    from steelyard.reporting.compare_console import render_comparison

    render_comparison(comp, console)


def _comparison_headline(record: Any) -> str:
    chosen = (record.payload.get("recommendation") or {}).get("chosen")
    return f"recommended: {chosen}" if chosen else "no feasible candidate"


def _load_profile(payload: dict[str, Any]) -> Any:
    from steelyard.profiling.report import CostReport

    return CostReport.from_dict(payload)


def _load_comparison(payload: dict[str, Any]) -> Any:
    from steelyard.comparison.result import Comparison

    return Comparison.from_dict(payload)


register_view("profile", load=_load_profile, console=_profile_console,
              part="steelyard.reporting.report_parts:profile_part")
register_view("comparison", load=_load_comparison, console=_comparison_console,
              part="steelyard.reporting.report_parts:comparison_part", headline=_comparison_headline)
register_view("serving", load="steelyard.reporting.generation_parts:load_recommendation",
              console="steelyard.reporting.generation_parts:serving_console",
              part="steelyard.reporting.generation_parts:serving_part")
register_view("estimate", part="steelyard.reporting.report_parts:estimate_part")
register_view("compression", console="steelyard.reporting.compress_view:compression_console",
              part="steelyard.reporting.compress_view:compress_part")
register_view("optimize", part="steelyard.reporting.study_view:study_part")
register_view("search", part="steelyard.reporting.study_view:study_part")
register_view("evaluate", load="steelyard.reporting.evaluation_view:load_evaluation",
              part="steelyard.reporting.evaluation_view:evaluation_part")
register_view("finetune", load="steelyard.reporting.training_view:load_finetune",
              part="steelyard.reporting.training_view:finetune_part")
