"""Output for scripts: ``--json -`` puts the one JSON document on stdout and every table on stderr,
``--quiet`` drops the tables, every command that writes JSON takes the same ``--json PATH|-``, every
document names its schema, and ``runs diff`` lines up the same metric across run kinds."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import typer

from cli_helpers import one_line_error, steelyard
from steelyard.cli.main import app
from steelyard.serialize import SCHEMA_VERSION
from text_toys import tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_bert(tmp_path_factory.mktemp("script-output") / "model", layers=2)


def _document(out: str) -> dict:
    data = json.loads(out)
    assert data["schema_version"] == SCHEMA_VERSION
    return data


def test_profile_json_to_stdout_and_the_tables_to_stderr(tiny, capsys):
    assert steelyard("profile", tiny, "--seq-len", "16", "--runs", "2", "--warmup", "1", "--hardware", "local",
                     "--json", "-") == 0
    captured = capsys.readouterr()
    data = _document(captured.out)
    assert data["task"] == "text-classification" and data["measured"]["latency"]["runs"] == 2
    assert "Parameters and storage" in captured.err and "saved as run" in captured.err


def test_quiet_leaves_only_the_document(tiny, capsys):
    assert steelyard("profile", tiny, "--seq-len", "16", "--no-measure", "--hardware", "local", "--no-save",
                     "--json", "-", "--quiet") == 0
    captured = capsys.readouterr()
    assert _document(captured.out)["measured"] is None
    assert "Parameters and storage" not in captured.err


def test_estimate_config_only_json_and_csv_to_stdout(capsys):
    args = ["estimate", "gpt2", "--tokens", "1M", "--seq-len", "32", "--hardware", "t4", "--no-save"]
    assert steelyard(*args, "--json", "-") == 0
    captured = capsys.readouterr()
    data = _document(captured.out)
    assert data["model"] == "gpt2" and data["rows"][0]["hardware"] == "t4"
    assert "t4" in captured.err  # the table, on stderr
    assert steelyard(*args, "--csv", "-", "--quiet") == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["metric", "value"] and rows[1] == ["schema_version", SCHEMA_VERSION]
    assert dict(rows[1:])["model"] == "gpt2"


def test_runs_list_show_diff_json_to_stdout(capsys):
    for _ in range(2):
        assert steelyard("profile", "gpt2", "--config-only", "--seq-len", "16", "--hardware", "t4") == 0
    capsys.readouterr()
    assert steelyard("runs", "list", "--json", "-") == 0
    captured = capsys.readouterr()
    runs = _document(captured.out)["runs"]
    assert [r["id"] for r in runs] == [2, 1] and "Runs in" in captured.err
    assert runs[0]["created_at"].endswith("+00:00")
    assert steelyard("runs", "show", "1", "--json", "-", "--quiet") == 0
    assert _document(capsys.readouterr().out)["payload"]["parameters"]["total"] == 124_439_808
    assert steelyard("runs", "diff", "1", "2", "--json", "-") == 0
    captured = capsys.readouterr()
    assert _document(captured.out)["config"] == [] and "identical" in captured.err
    assert steelyard("runs", "export", "--format", "json", "--output", "-") == 0
    assert [r["id"] for r in _document(capsys.readouterr().out)["runs"]] == [1, 2]


def test_the_json_and_csv_files_name_their_schema(tmp_path, capsys):
    js, cs = tmp_path / "e.json", tmp_path / "e.csv"
    assert steelyard("estimate", "gpt2", "--tokens", "1M", "--seq-len", "32", "--hardware", "t4", "--no-save",
                     "--json", js, "--csv", cs) == 0
    assert _document(js.read_text())["model"] == "gpt2"
    assert cs.read_text().splitlines()[1] == f"schema_version,{SCHEMA_VERSION}"
    assert f"wrote {js}" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "words"), [
    (["estimate", "gpt2", "--tokens", "1M", "--json", "-", "--csv", "-"], ["--json and --csv", "stdout"]),
    (["estimate", "gpt2", "--tokens", "1M", "--json", "--quiet"], ["--json takes a file name or -", "--quiet"]),
])
def test_one_stdout_report_and_no_flag_taken_for_a_path(args, words, capsys):
    assert steelyard(*args) == 2
    one_line_error(capsys, *words)


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    out = []
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):  # a sub-app (typer's own click copy: no isinstance)
            out += _commands(cmd, (*prefix, name))
        else:
            out.append((" ".join((*prefix, name)), cmd))
    return out


def test_every_command_that_writes_json_takes_json_path_or_dash_and_quiet():
    """The audit: one flag style on every command (no ``--json`` switch left), each with ``--quiet``."""
    writers = {}
    for name, cmd in _commands(typer.main.get_command(app)):
        for param in cmd.params:
            if "--json" in getattr(param, "opts", ()):
                writers[name] = (param, {o for p in cmd.params for o in getattr(p, "opts", ())})
    expected = {"profile", "estimate", "evaluate", "compress", "compare", "optimize", "search", "runtimes",
                "finetune", "distill", "compare-optimizers", "data-report", "data-needs", "runs list", "runs show",
                "runs diff", "study show", "hardware list"}
    assert expected <= set(writers)
    for name, (param, options) in writers.items():
        assert not param.is_flag and param.metavar == "PATH|-", name
        assert "to stdout with -" in param.help, name
        assert "--quiet" in options, name


def test_runs_diff_lines_up_latency_of_a_profile_and_a_compression(tiny, tmp_path, capsys):
    assert steelyard("profile", tiny, "--batch-size", "4", "--seq-len", "16", "--runs", "2", "--warmup", "1",
                     "--hardware", "local") == 0
    assert steelyard("compress", tiny, "--recipe", "quantize:int8-dynamic", "--output", tmp_path / "q",
                     "--batch-size", "4", "--max-length", "16", "--rounds", "2") == 0
    capsys.readouterr()
    assert steelyard("runs", "diff", "1", "2", "--all", "--json", "-", "--quiet") == 0
    rows = {r["metric"]: r for r in _document(capsys.readouterr().out)["metrics"]}
    for shared in ("latency_median_s", "latency_p90_s", "parameters", "weights_bytes", "flops"):
        assert rows[shared]["a"] is not None and rows[shared]["b"] is not None, shared
    assert rows["latency_median_s"]["unit"] == "s" and rows["before.latency_median_s"]["b"] > 0
    assert rows["weights_bytes"]["b"] < rows["weights_bytes"]["a"]  # int8 weights are smaller
