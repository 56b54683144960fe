"""``steelyard report``: one self-contained HTML file (and/or Markdown) for one or more stored runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from steelyard.cli.common import console, writable_file
from steelyard.cli.state import OPTIONS
from steelyard.reporting.markup import escape

#: Where ``steelyard report`` writes when given neither --html nor --markdown (the current folder).
DEFAULT_HTML = Path("report.html")


def report_command(
    run_ids: Annotated[list[int], typer.Argument(help="run id(s) from `steelyard runs list`; one part per run")],
    html: Annotated[Path | None, typer.Option(help=f"write the HTML report here (opens offline; default: "
                                                   f"{DEFAULT_HTML} when neither --html nor --markdown is given)",
                                              callback=writable_file)] = None,
    markdown: Annotated[Path | None, typer.Option(help="write a Markdown report here", callback=writable_file)] = None,
    title: Annotated[str | None, typer.Option(help="report title")] = None,
) -> None:
    """Write a report of stored runs: tables, interactive charts, environment and the commands to reproduce."""
    from steelyard.outputs import check_output_file
    from steelyard.reporting.formatting import fmt_bytes
    from steelyard.reporting.html import document_for_runs, write_report
    from steelyard.store import open_store

    if html is None and markdown is None:
        html = check_output_file(DEFAULT_HTML, what="--html")  # absolute, so the line below says where
    store = open_store(OPTIONS.store_url, read_only=True)
    records = [store.get_run(i) for i in run_ids]
    doc = document_for_runs(records, title)
    for path in write_report(doc, html=html, markdown=markdown):
        console.print(f"wrote {escape(path)} ({fmt_bytes(path.stat().st_size)})")
