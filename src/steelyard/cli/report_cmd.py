"""``steelyard report``: one self-contained HTML file (and/or Markdown) for one or more stored runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from steelyard.cli.common import console, writable_file
from steelyard.cli.state import OPTIONS
from steelyard.reporting.markup import escape


def report_command(
    run_ids: Annotated[list[int], typer.Argument(help="run id(s) from `steelyard runs list`; one part per run")],
    html: Annotated[Path | None, typer.Option(help="write the HTML report here (opens offline)",
                                                          callback=writable_file)] = None,
    markdown: Annotated[Path | None, typer.Option(help="write a Markdown report here", callback=writable_file)] = None,
    title: Annotated[str | None, typer.Option(help="report title")] = None,
) -> None:
    """Write a report of stored runs: tables, interactive charts, environment and the commands to reproduce."""
    from steelyard.errors import ConfigError
    from steelyard.reporting.html import document_for_runs, write_report
    from steelyard.store import open_store

    if html is None and markdown is None:
        raise ConfigError("say where to write the report: --html report.html and/or --markdown report.md")
    store = open_store(OPTIONS.store_url, read_only=True)
    records = [store.get_run(i) for i in run_ids]
    doc = document_for_runs(records, title)
    for path in write_report(doc, html=html, markdown=markdown):
        console.print(f"wrote {escape(path)} ({path.stat().st_size / 2**20:.1f} MiB)")
