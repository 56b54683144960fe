"""CLI basics: --version, -h everywhere, plain help in a pipe, shell completion, consistent option
names, dtype aliases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from cli_helpers import one_line_error, steelyard
from steelyard import __version__
from steelyard.cli.main import app
from steelyard.comparison.config import CompareConfig
from steelyard.models.loading import LoadConfig

SRC = str(Path(__file__).parents[2] / "src")
BOX = set("╭╮╰╯│─┏┓┗┛┃━")


def _commands() -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []

    def walk(cmd, path):
        out.append(path)
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return out


def _options(path: tuple[str, ...]):
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return [p for p in cmd.params if p.param_type_name == "option"]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m steelyard ARGS`` with stdout a pipe (not a terminal) and no COLUMNS."""
    base = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    base["PYTHONPATH"] = SRC + os.pathsep + base.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "steelyard", *args], capture_output=True, text=True,
                          env={**base, **(env or {})}, timeout=120)


def test_version(capsys):
    assert steelyard("--version") == 0
    assert capsys.readouterr().out.strip() == f"steelyard {__version__}"
    assert steelyard("-V") == 0


@pytest.mark.parametrize("path", _commands(), ids=lambda p: " ".join(p) or "steelyard")
def test_dash_h_is_help_on_every_command(path, capsys):
    assert steelyard(*path, "-h") == 0
    out = capsys.readouterr().out
    assert out.lstrip().startswith("Usage: steelyard"), out[:200]


def test_help_in_a_pipe_is_plain_and_fits_80_columns():
    done = _cli("profile", "--help")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Usage: steelyard profile")
    assert not BOX & set(done.stdout), "box drawing in piped help"
    assert max(len(line) for line in lines) <= 80
    assert "--compute-efficiency" in done.stdout  # not cut to "--compute-efficien…"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish", "powershell"])
def test_completion_scripts(shell, capsys):
    assert steelyard("completion", shell) == 0
    script = capsys.readouterr().out
    assert "_STEELYARD_COMPLETE" in script and "steelyard" in script


def test_completion_of_an_unknown_shell_is_a_usage_error(capsys):
    assert steelyard("completion", "tcsh") == 2
    one_line_error(capsys, "tcsh", "bash, zsh, fish")


def test_the_completion_script_gets_commands_and_options():
    done = _cli(env={"_STEELYARD_COMPLETE": "complete_bash", "COMP_WORDS": "steelyard pro", "COMP_CWORD": "1"})
    assert done.returncode == 0 and done.stdout.split() == ["profile"], done
    done = _cli(env={"_STEELYARD_COMPLETE": "complete_bash", "COMP_WORDS": "steelyard profile --batch",
                     "COMP_CWORD": "2"})
    assert "--batch-size" in done.stdout.split(), done


def test_a_metric_list_is_always_metrics():
    offenders = [(" ".join(path), opt) for path in _commands() for p in _options(path) for opt in p.opts
                 if opt == "--metric"]
    assert offenders == []
    assert any("--metrics" in p.opts for p in _options(("compare",)))
    assert any("--metrics" in p.opts for p in _options(("evaluate",)))


#: One-way switches that are actions, not settings: an "off" form would mean "do not do it", the default.
ACTIONS = {"--overwrite", "--json", "--all", "--front", "--version", "--help", "--quiet", "--yes"}


def test_boolean_options_come_in_on_off_pairs():
    single = sorted({opt for path in _commands() for p in _options(path)
                     if getattr(p, "is_flag", False) and not p.secondary_opts
                     for opt in p.opts if opt.startswith("--")} - ACTIONS)
    # data-report's --clean shows what cleaning drops (a view, not the data setting); -V is --version
    assert single in ([], ["--clean"]), single
    distill = {o for p in _options(("distill",)) for o in (*p.opts, *p.secondary_opts)}
    assert {"--cache", "--no-cache", "--hidden-states", "--no-hidden-states", "--clean", "--no-clean"} <= distill


@pytest.mark.parametrize(("alias", "name"), [("fp16", "float16"), ("half", "float16"), ("FP16", "float16"),
                                             ("bf16", "bfloat16"), ("fp32", "float32"), ("float", "float32"),
                                             ("torch.float16", "float16"), ("float16", "float16")])
def test_dtype_aliases(alias, name):
    assert LoadConfig(dtype=alias).dtype == name
    assert CompareConfig(dtype=alias).dtype == name


def test_dtype_alias_on_the_command_line_and_a_bad_one(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert steelyard("profile", "gpt2", "--config-only", "--dtype", "fp16", "--hardware", "t4", "--no-save",
                     "--json", out) == 0
    assert json.loads(out.read_text())["dtype"] == "float16"
    capsys.readouterr()
    assert steelyard("profile", "gpt2", "--config-only", "--dtype", "fp8", "--no-save") == 2
    one_line_error(capsys, "unknown dtype 'fp8'", "float16", "fp16")
