"""A report as data (parts of sections of tables, figures and text), rendered to HTML or Markdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Figure:
    title: str
    #: A plotly figure as a plain dict: {"data": [...], "layout": {...}}.
    spec: dict[str, Any]
    note: str = ""


@dataclass
class Finding:
    """One conclusion of the report's summary: what to do, and where in the report the evidence is."""

    text: str
    #: The id of the part or section that backs it (``#anchor`` in HTML); "" for none.
    anchor: str = ""
    #: The link's words ("evidence: compression run 5").
    label: str = ""
    #: "good" (a recommendation) | "bad" (nothing qualifies) | "" (a plain note).
    tone: str = ""


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    #: Shell commands shown verbatim (reproduce).
    commands: list[str] = field(default_factory=list)
    #: Preformatted text (JSON, config).
    code: str = ""
    #: "good" | "bad" | "" — colours the first paragraph as a verdict.
    tone: str = ""
    #: Conclusions with links to their evidence (the summary at the top of a report).
    findings: list[Finding] = field(default_factory=list)
    #: The section's id; "" lets the renderer number it within its part.
    anchor: str = ""
    #: Reference material (environment): shown folded in HTML, a click away.
    folded: bool = False


@dataclass
class Part:
    """Everything about one run (a profile, a comparison, a compression...)."""

    title: str
    subtitle: str
    sections: list[Section]
    anchor: str = ""


@dataclass
class ReportDocument:
    title: str
    generated_at: str
    parts: list[Part]
    #: How many runs the report covers (its parts also hold the summary and the per-model tables); 0: one per part.
    runs: int = 0

    @property
    def figure_count(self) -> int:
        return sum(len(s.figures) for p in self.parts for s in p.sections)
