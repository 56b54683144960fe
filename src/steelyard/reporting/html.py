"""Self-contained HTML reports (jinja2 + plotly, the plotly.js library inlined) and Markdown exports.

The HTML file needs no network to open: the styles, the plotly.js library and every figure's data
are inside it. After drawing, the page sets ``data-plots-rendered`` on ``<body>`` to the number
of charts drawn and ``data-js-errors`` to the number of script errors, which the browser test reads.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Sequence
from html import escape as html_escape
from pathlib import Path
from typing import Any

from steelyard.errors import ConfigError
from steelyard.reporting.document import Part, ReportDocument, Section, Table

TEMPLATE = "report.html.j2"


def report_document(items: Sequence[tuple[str, Any, int | None]], title: str | None = None) -> ReportDocument:
    """A document from in-memory results: ``(kind, object, run_id)`` per part (kind "profile", "comparison")."""
    from steelyard.reporting.views import part_for

    parts = [part_for(kind, obj, run_id) for kind, obj, run_id in items]
    return ReportDocument(title or _title(parts), _now(), parts)


def document_for_runs(records: Iterable[Any], title: str | None = None) -> ReportDocument:
    """A report of stored runs (:class:`steelyard.store.RunRecord`) that concludes.

    It opens with a summary of what to do, each conclusion linked to its evidence
    (:mod:`steelyard.reporting.report_summary`); then, per model, its runs side by side
    (:mod:`steelyard.reporting.model_groups`) followed by each run's own part. Parts are titled with
    the run's name, else the model's short name, never a temporary folder's path.
    """
    from steelyard.reporting.model_groups import ReportRun, group_key, group_part
    from steelyard.reporting.report_summary import summary_part
    from steelyard.reporting.views import load, part_for_record, view

    runs = []
    for record in records:
        part = part_for_record(record)
        _retitle(part, record)
        obj = load(record) if view(record.kind).part is not None else record.payload
        runs.append(ReportRun(record, obj, part))
    _unique_anchors([r.part for r in runs])
    groups: dict[Any, list[ReportRun]] = {}
    for i, run in enumerate(runs):
        groups.setdefault(group_key(run) or ("alone", i), []).append(run)
    parts: list[Part] = [summary_part(runs)]
    for g_index, (key, members) in enumerate(groups.items()):
        if isinstance(key, str) and len(members) > 1:
            parts.append(group_part(key, members, anchor=f"model-{g_index + 1}"))
        parts += [r.part for r in members]
    return ReportDocument(title or _title([r.part for r in runs]), _now(), parts, runs=len(runs))


def _retitle(part: Part, record: Any) -> None:
    """``Compression: /tmp/x/minilm`` → ``Compression: minilm`` (or the run's name); the full source stays in the
    subtitle."""
    from steelyard.reporting.names import model_label, run_name

    kind, sep, rest = part.title.partition(": ")
    if not sep:
        return
    short = run_name(record) or model_label(rest)
    recipe = record.payload.get("recipe") if isinstance(record.payload, dict) else None
    if record.kind == "compression" and recipe and not run_name(record):  # three compressions of one model differ
        short = f"{short} · {recipe}"
    if short != rest:
        part.title = f"{kind}: {short}"
        if str(record.model) not in part.subtitle:
            part.subtitle = f"{part.subtitle} · {record.model}"


def _unique_anchors(parts: list[Part]) -> None:
    seen: set[str] = {"summary"}
    for i, part in enumerate(parts):
        anchor = re.sub(r"[^A-Za-z0-9_-]+", "-", part.anchor or f"part-{i}")
        while anchor in seen:
            anchor += "-2"
        part.anchor = anchor
        seen.add(anchor)


def _title(parts: list[Part]) -> str:
    if len(parts) == 1:
        return f"steelyard — {parts[0].title}"
    return f"steelyard report — {len(parts)} runs"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _script_json(data: Any) -> str:
    """JSON safe to place inside a <script> element (no closing tag, no HTML comment openers)."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def render_html(doc: ReportDocument) -> str:
    """The whole report as one HTML string (several MB: plotly.js is inlined)."""
    try:
        import jinja2
        import plotly.offline
    except ImportError as exc:
        raise ConfigError(f"HTML reports need jinja2 and plotly: pip install 'steelyard[report]' ({exc})") from exc
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("steelyard.reporting", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    figures = []
    counter = 0
    parts = []
    for p_index, part in enumerate(doc.parts):
        sections = []
        for s_index, section in enumerate(part.sections):
            figs = []
            for fig in section.figures:
                counter += 1
                fig_id = f"fig-{counter}"
                figures.append({"id": fig_id, "json": _script_json(titled(fig.spec, fig.title))})
                figs.append({"id": fig_id, "title": fig.title, "note": fig.note})
            sections.append({"s": section, "figures": figs, "anchor": section.anchor or f"p{p_index}-s{s_index}"})
        parts.append({"p": part, "sections": sections, "anchor": part.anchor or f"part-{p_index}"})
    return env.get_template(TEMPLATE).render(
        doc=doc, parts=parts, figures=figures, plotlyjs=plotly.offline.get_plotlyjs(),
        plotly_version=_plotly_version(),
    )


def titled(spec: dict[str, Any], title: str) -> dict[str, Any]:
    """The figure with a visible title: its own layout title, else the report's name for it."""
    layout = dict(spec.get("layout") or {})
    current = layout.get("title")
    if not (current.get("text") if isinstance(current, dict) else current):
        layout["title"] = {"text": title}
    return {**spec, "layout": layout}


def _plotly_version() -> str:
    try:
        from importlib.metadata import version

        return version("plotly")
    except Exception:
        return "?"


def md_text(text: Any) -> str:
    """User text made inert in Markdown: HTML escaped (a ``<script>`` or ``<img onerror>`` in a model
    name or label stays text in any CommonMark viewer), and ``](`` broken so no inline link or
    auto-loading image ``![x](url)`` can be formed (autolinks need ``<``, escaped already)."""
    return html_escape(str(text), quote=False).replace("](", "]\\(")


def _md_cell(text: Any) -> str:
    return md_text(text).replace("|", "\\|").replace("\n", " ")


def _fence(body: str, info: str) -> list[str]:
    """A fenced block longer than any run of backticks inside it, so the text cannot close it."""
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{info}", body, fence, ""]


def _md_table(table: Table) -> list[str]:
    lines = []
    if table.title:
        lines += [f"*{md_text(table.title)}*", ""]
    cols = [c or " " for c in table.columns]
    lines.append("| " + " | ".join(_md_cell(c) for c in cols) + " |")
    lines.append("|" + "|".join("---" for _ in cols) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
    if table.note:
        lines += ["", md_text(table.note)]
    return [*lines, ""]


def _md_section(section: Section) -> list[str]:
    lines = [f"### {md_text(section.title)}", ""]
    for f in section.findings:
        link = f" ([{md_text(f.label or 'evidence')}](#{f.anchor}))" if f.anchor else ""
        lines.append(f"- {'**' if f.tone == 'good' else ''}{md_text(f.text)}{'**' if f.tone == 'good' else ''}{link}")
    if section.findings:
        lines.append("")
    for text in section.paragraphs:
        lines += [md_text(text), ""]
    for table in section.tables:
        lines += _md_table(table)
    for fig in section.figures:
        lines += [f"*Chart: {md_text(fig.title)} (interactive in the HTML report).*", ""]
    if section.code:
        lines += _fence(section.code, "json")
    if section.commands:
        lines += _fence("\n".join(section.commands), "sh")
    return lines


def render_markdown(doc: ReportDocument) -> str:
    """The document as Markdown; every name, label and number from the runs goes through :func:`md_text`."""
    lines = [f"# {md_text(doc.title)}", "", f"Generated {md_text(doc.generated_at)} by steelyard.", ""]
    for part in doc.parts:
        anchor = [f'<a id="{part.anchor}"></a>', ""] if re.fullmatch(r"[A-Za-z0-9_-]+", part.anchor or "") else []
        lines += [*anchor, f"## {md_text(part.title)}", "", f"_{md_text(part.subtitle)}_", ""]
        for section in part.sections:
            lines += _md_section(section)
    return "\n".join(lines).rstrip() + "\n"


def write_report(doc: ReportDocument, html: Path | None = None, markdown: Path | None = None) -> list[Path]:
    """Write the HTML and/or Markdown files atomically; returns the paths written."""
    from steelyard.reporting.files import atomic_write_text

    if html is None and markdown is None:
        raise ConfigError("say where to write the report: --html report.html and/or --markdown report.md")
    written = []
    if html is not None:
        atomic_write_text(Path(html), render_html(doc))
        written.append(Path(html))
    if markdown is not None:
        atomic_write_text(Path(markdown), render_markdown(doc))
        written.append(Path(markdown))
    return written
