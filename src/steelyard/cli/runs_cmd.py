"""``steelyard runs``: list, show, diff, export and delete the runs in the results store.

Every command here but ``delete`` only reads: it opens the store read-only, so it creates no
folder, file or table, and a store that does not exist is one line and exit 2 (``runs list`` on the
default store before any run says there are none yet).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from steelyard.cli.common import QuietOpt, console, json_option, save_outputs
from steelyard.cli.state import OPTIONS
from steelyard.reporting.formatting import fmt_number
from steelyard.reporting.markup import escape
from steelyard.serialize import iso_utc, utc

JsonOut = json_option("the runs")
RunJsonOut = json_option("the whole run (config, environment, payload)")
DiffJsonOut = json_option("the differences")

runs_app = typer.Typer(help="The results store: every profile, estimate, evaluation and comparison.",
                       no_args_is_help=True)

#: ``--tag`` of the commands that select runs (a run must carry every tag given).
TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="only runs with this tag (repeat: with every one)")]

#: Headline metrics shown by `runs list`, in order of preference.
HEADLINE = ("parameters", "flops", "latency_median_s", "total_flops", "accuracy")


def _store(read_only: bool = True) -> Any:
    """The store named by ``--store`` / ``$STEELYARD_STORE`` / the default; read-only unless asked."""
    from steelyard.store import open_store

    return open_store(OPTIONS.store_url, read_only=read_only)


def _default_store_missing() -> str | None:
    """The path of the default SQLite store when no store was named and none exists yet, else None."""
    import os

    from steelyard.store.runs import ENV_VAR, default_store_url, sqlite_path

    if OPTIONS.store_url or os.environ.get(ENV_VAR):
        return None
    path = sqlite_path(default_store_url())
    return str(path) if path is not None and not path.exists() else None


def _tags(tags: list[str] | None) -> tuple[str, ...]:
    from steelyard.store.runs import check_tag

    return tuple(check_tag(t) for t in tags or ())


def _value(value: float | None, unit: str | None) -> str:
    from steelyard.reporting.formatting import fmt_unit

    return fmt_unit(value, unit)


def _headline(record: Any) -> str:
    from steelyard.reporting.views import headline

    words = headline(record)
    if words is not None:
        return words
    bits = []
    for name in HEADLINE:
        if name in record.metrics:
            value, unit = record.metrics[name]
            bits.append(f"{name.removesuffix('_s').replace('_', ' ')} {_value(value, unit)}")
    return " · ".join(bits[:3])


@runs_app.command("list")
def list_command(
    kind: Annotated[
        str | None, typer.Option(help="only runs of this kind (profile, estimate, comparison, ...)")
    ] = None,
    model: Annotated[str | None, typer.Option(help="only runs whose model contains this text")] = None,
    tag: TagOpt = None,
    limit: Annotated[int, typer.Option(help="newest N runs")] = 50,
    json_out: JsonOut = None,
    quiet: QuietOpt = False,
) -> None:
    """List runs, newest first: id, name, kind, model, tags, when, status and the headline numbers."""
    from steelyard.reporting.console import _table
    from steelyard.reporting.names import model_label

    tags = _tags(tag)
    missing = _default_store_missing()
    if missing is not None:
        save_outputs({"runs": []}, json_out)
        console.print(f"no runs yet: no results store at {escape(missing)} (a command that records a run "
                      "creates it)")
        return
    store = _store()
    records = store.find_runs(kind=kind, model=model, limit=limit, tags=tags)
    save_outputs({"runs": [_summary(r) for r in records]}, json_out)
    if not records:
        kinds = store.kinds()
        hint = f" (kinds in the store: {', '.join(f'{k} {n}' for k, n in kinds.items())})" if kinds else ""
        what = (f" of kind {escape(kind)}" if kind else "") + (f" tagged {escape(', '.join(tags))}" if tags else "")
        console.print(f"no runs{what} in {escape(store.url)}{hint}")
        return
    table = _table(f"Runs in {store.url}", "id", "name", "kind", "model", "tags", "created (UTC)", "status",
                   "headline", right=[0])
    for r in records:
        table.add_row(str(r.id), escape(r.name or "—"), escape(r.kind), escape(model_label(r.model)),
                      escape(", ".join(r.tags) or "—"), f"{utc(r.created_at):%Y-%m-%d %H:%M:%S}", escape(r.status),
                      escape(_headline(r)))
    console.print(table)


def _summary(record: Any) -> dict[str, Any]:
    from steelyard.reporting.names import model_label

    return {
        "id": record.id,
        "name": record.name,
        "tags": list(record.tags),
        "kind": record.kind,
        "model": record.model,
        "model_label": model_label(record.model),
        "created_at": iso_utc(record.created_at),
        "status": record.status,
        "metrics": {k: {"value": v, "unit": u} for k, (v, u) in record.metrics.items()},
    }


def _full(record: Any) -> dict[str, Any]:
    from steelyard.reporting.commands import reproduce_command

    return {**_summary(record), "config": record.config, "environment": record.environment,
            "provenance": record.provenance, "reproduce": reproduce_command(record), "payload": record.payload}


@runs_app.command("show")
def show_command(
    run_id: Annotated[int, typer.Argument(help="run id (see `steelyard runs list`)")],
    json_out: RunJsonOut = None,
    quiet: QuietOpt = False,
    brief: Annotated[bool, typer.Option(help="headline numbers and config only, without the full report")] = False,
) -> None:
    """Show one run: its name and tags, provenance, config, headline numbers, the command that reproduces it
    and, for profiles and comparisons, the full report."""
    from steelyard.reporting.commands import reproduce_command
    from steelyard.reporting.console import _table
    from steelyard.reporting.provenance_view import render_provenance
    from steelyard.reporting.views import render_console
    from steelyard.serialize import flatten

    record = _store().get_run(run_id)
    save_outputs(_full(record), json_out)
    named = f" [bold]{escape(record.name)}[/bold] ·" if record.name else ""
    tags = f" · tags {escape(', '.join(record.tags))}" if record.tags else ""
    console.print(f"[bold]run {record.id}[/bold] ·{named} {escape(record.kind)} · {escape(record.model)} · "
                  f"{utc(record.created_at):%Y-%m-%d %H:%M:%S} UTC · {record.status}{tags}")
    command = reproduce_command(record)
    console.print(f"reproduce: {escape(command)}" if command else "reproduce: no command recorded for this run",
                  highlight=False, soft_wrap=True)
    render_provenance(record.provenance, console)
    table = _table("Headline numbers", "metric", "value", right=[1])
    for name, (value, unit) in sorted(record.metrics.items()):
        table.add_row(escape(name), escape(_value(value, unit)))
    console.print(table)
    table = _table("Config", "key", "value")
    for key, value in flatten(record.config).items():
        table.add_row(escape(key), escape(json.dumps(value) if not isinstance(value, str) else value))
    console.print(table)
    if brief:
        return
    render_console(record, console)


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


@runs_app.command("diff")
def diff_command(
    a: Annotated[int, typer.Argument(help="first run id (the baseline)")],
    b: Annotated[int, typer.Argument(help="second run id")],
    all_metrics: Annotated[bool, typer.Option("--all", help="also list metrics that are equal")] = False,
    json_out: DiffJsonOut = None,
    quiet: QuietOpt = False,
) -> None:
    """Differences between two runs: headline numbers (with change and ratio), config and environment."""
    from steelyard.reporting.console import _table
    from steelyard.serialize import flatten

    store = _store()
    ra, rb = store.get_run(a), store.get_run(b)
    names = sorted(set(ra.metrics) | set(rb.metrics))
    metric_rows = []
    for name in names:
        va, ua = ra.metrics.get(name, (None, None))
        vb, ub = rb.metrics.get(name, (None, None))
        if va == vb and not all_metrics:
            continue
        delta = None if va is None or vb is None else vb - va
        ratio = None if va in (None, 0) or vb is None else vb / va
        metric_rows.append({"metric": name, "a": va, "b": vb, "unit": ua or ub, "delta": delta, "ratio": ratio})
    config_rows = _dict_diff(flatten(ra.config), flatten(rb.config))
    env_rows = _dict_diff(flatten(ra.environment), flatten(rb.environment))
    save_outputs({"a": _summary(ra) | {"metrics": None}, "b": _summary(rb) | {"metrics": None},
                  "metrics": metric_rows, "config": config_rows, "environment": env_rows}, json_out)
    from steelyard.reporting.names import run_title

    console.print(f"[bold]run {a}[/bold] ({escape(run_title(ra, kind=True))}) → "
                  f"[bold]run {b}[/bold] ({escape(run_title(rb, kind=True))})")
    if ra.kind != rb.kind:
        console.print(f"  [yellow]note: different kinds ({escape(ra.kind)} vs {escape(rb.kind)}); few numbers will "
                      "line up[/yellow]")
    table = _table("Headline numbers" + ("" if all_metrics else " that differ"), "metric", f"run {a}", f"run {b}",
                   "change", "ratio", right=[1, 2, 3, 4])
    for row in metric_rows:
        unit = row["unit"]
        change = "—" if row["delta"] is None else ("+" if row["delta"] > 0 else "") + _value(row["delta"], unit)
        ratio = "—" if row["ratio"] is None else f"{fmt_number(row['ratio'])}×"
        table.add_row(escape(row["metric"]), _value(row["a"], unit), _value(row["b"], unit), change, ratio)
    if metric_rows:
        console.print(table)
    else:
        console.print("  headline numbers: identical")
    for title, rows in (("Config", config_rows), ("Environment", env_rows)):
        if not rows:
            console.print(f"  {title.lower()}: identical")
            continue
        table = _table(f"{title} that differs", "key", f"run {a}", f"run {b}")
        for row in rows:
            table.add_row(escape(row["key"]), escape(_show(row["a"])), escape(_show(row["b"])))
        console.print(table)


def _show(value: Any) -> str:
    return "—" if value is None else (value if isinstance(value, str) else json.dumps(value))


def _dict_diff(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "a": a.get(k), "b": b.get(k)} for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


@runs_app.command("export")
def export_command(
    format: Annotated[str, typer.Option("--format", help="csv | json | mlflow | tensorboard")] = "csv",
    output: Annotated[Path | None, typer.Option(help="file (csv, json; - or none: stdout), folder (tensorboard) "
                                                     "or tracking URI (mlflow)")] = None,
    kind: Annotated[str | None, typer.Option(help="only runs of this kind")] = None,
    model: Annotated[str | None, typer.Option(help="only runs whose model contains this text")] = None,
    ids: Annotated[str | None, typer.Option(help="only these run ids, comma-separated")] = None,
    tag: TagOpt = None,
    limit: Annotated[int | None, typer.Option(help="newest N runs")] = None,
    payload: Annotated[bool, typer.Option(help="json: include each run's full payload")] = True,
) -> None:
    """Export runs: CSV (one row per run, one column per metric), JSON, MLflow or TensorBoard."""
    from steelyard.errors import ConfigError
    from steelyard.reporting.files import atomic_write_text

    fmt_name = format.lower()
    if fmt_name not in ("csv", "json", "mlflow", "tensorboard"):
        raise ConfigError(f"unknown export format '{format}'; choose csv, json, mlflow or tensorboard")
    if output is not None and fmt_name in ("csv", "json") and str(output) != "-":
        from steelyard.outputs import check_output_file

        check_output_file(output, "--output")
    wanted = _parse_ids(ids)
    records = _store().find_runs(kind=kind, model=model, limit=limit, ids=wanted, oldest_first=True, tags=_tags(tag))
    if fmt_name in ("mlflow", "tensorboard"):
        from steelyard.store import export as exporters

        if fmt_name == "mlflow":
            where = exporters.export_mlflow(records, str(output) if output else None)
        else:
            where = exporters.export_tensorboard(records, output or Path("runs-tensorboard"))
        print(f"exported {len(records)} run(s) to {fmt_name} at {where}", file=sys.stderr)
        return
    from steelyard.store.export import runs_to_csv, runs_to_json

    text = runs_to_csv(records) if fmt_name == "csv" else runs_to_json(records, payload=payload)
    where = atomic_write_text(output or Path("-"), text)
    if where != "stdout":
        print(f"wrote {len(records)} run(s) to {output}", file=sys.stderr)


def _parse_ids(text: str | None) -> list[int] | None:
    from steelyard.errors import ConfigError

    if not text:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--ids must be comma-separated run ids such as 3,7,12, got '{text}'") from None


@runs_app.command("delete")
def delete_command(
    run_ids: Annotated[list[int] | None, typer.Argument(help="run ids to delete (see `steelyard runs list`)")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="also delete every run with this tag (repeat: runs "
                                                                "with every one)")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="delete without asking (needed without a terminal)")] = False,
) -> None:
    """Delete runs (their numbers and tags with them) by id and/or by tag, after a confirmation."""
    from steelyard.errors import ConfigError
    from steelyard.reporting.names import run_title

    tags = _tags(tag)
    if not run_ids and not tags:
        raise ConfigError("say which runs to delete: run ids (steelyard runs delete 3 7) and/or --tag TAG")
    store = _store()  # read-only until the user agreed: a refusal changes nothing
    ids = set(store.find_ids(ids=list(run_ids)) if run_ids else [])
    if tags:
        ids |= set(store.find_ids(tags=tags))
    if not ids:
        console.print(f"no runs tagged {escape(', '.join(tags))} in {escape(store.url)}; nothing deleted")
        return
    records = [store.get_run(i) for i in sorted(ids)]
    if not yes:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise ConfigError(f"refusing to delete {len(records)} run(s) without a confirmation: pass --yes "
                              "(no terminal to ask on)")
        for r in records:
            console.print(f"  run {r.id}: {escape(run_title(r, kind=True))} ({r.created_at:%Y-%m-%d %H:%M})")
        if not typer.confirm(f"delete these {len(records)} run(s) from {store.url}?", default=False):
            console.print("nothing deleted")
            raise typer.Exit(1)
    gone = _store(read_only=False).delete_runs(r.id for r in records)
    console.print(f"deleted {gone} run(s) ({', '.join(str(r.id) for r in records)}) from {escape(store.url)}")
