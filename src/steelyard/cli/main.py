"""Entry point: the typer app and the one place where errors become exit codes.

A :class:`SteelyardError` (bad input, missing model, unknown hardware, ...) prints one line
``error: ...`` and exits 2. Anything else is a bug: one line and exit 1, the traceback only
with ``--debug`` (or ``STEELYARD_DEBUG=1``).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import click
import typer

from steelyard.cli.compare_cmd import compare_command
from steelyard.cli.compare_optimizers_cmd import compare_optimizers_command
from steelyard.cli.compress_cmd import compress_command, methods_command
from steelyard.cli.data_cmd import data_needs_command, data_report_command
from steelyard.cli.distill_cmd import distill_command
from steelyard.cli.estimate_cmd import estimate_command
from steelyard.cli.evaluate_cmd import evaluate_command
from steelyard.cli.finetune_cmd import finetune_command
from steelyard.cli.hardware_cmd import hardware_app
from steelyard.cli.optimize_cmd import optimize_command
from steelyard.cli.profile_cmd import profile_command
from steelyard.cli.report_cmd import report_command
from steelyard.cli.run_options import records_run
from steelyard.cli.runs_cmd import runs_app
from steelyard.cli.runtimes_cmd import runtimes_command
from steelyard.cli.search_cmd import search_command, study_app
from steelyard.cli.state import OPTIONS

#: The program name in usage lines and completion scripts (also under ``python -m steelyard``).
PROG = "steelyard"
#: The environment variable a completion script sets to ask for completions.
COMPLETE_VAR = "_STEELYARD_COMPLETE"
SHELLS = ("bash", "zsh", "fish", "powershell")


def _markup_mode() -> Any:
    """Rich help (boxes, colours) in a terminal; click's plain help, wrapped at 80 columns, in a pipe."""
    return "rich" if sys.stdout.isatty() else None


app = typer.Typer(
    name=PROG,
    help="Weigh what a deep-learning model costs, measure what it is worth, make it lighter.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,  # `steelyard completion SHELL` prints the script instead
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every command
    rich_markup_mode=_markup_mode(),
)


def _print_version(value: bool) -> None:
    if value:
        from steelyard import __version__

        print(f"{PROG} {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: Annotated[bool, typer.Option(help="show tracebacks")] = False,
    store: Annotated[
        str | None,
        typer.Option(help="results store URL (default $STEELYARD_STORE or ~/.local/share/steelyard/steelyard.db)"),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", "-V", help="print the version and exit", is_eager=True,
                           callback=_print_version),
    ] = False,
) -> None:
    from steelyard.evaluation.progress import set_progress_display
    from steelyard.hardware import configure
    from steelyard.reporting.progress import progress_display

    OPTIONS.debug = debug or OPTIONS.debug
    OPTIONS.store_url = store
    configure()  # each command starts from the catalogs as they are; its --catalog / --pue ... apply next
    set_progress_display(progress_display())


app.command("profile")(records_run(profile_command))
app.command("estimate")(records_run(estimate_command))
app.add_typer(hardware_app, name="hardware")
app.command("evaluate")(records_run(evaluate_command))
app.command("finetune")(records_run(finetune_command))
app.command("distill")(records_run(distill_command))
app.command("compare-optimizers")(records_run(compare_optimizers_command))
app.command("data-report")(data_report_command)
app.command("data-needs")(records_run(data_needs_command))
app.command("compare")(records_run(compare_command))
app.add_typer(runs_app, name="runs")
app.command("report")(report_command)
app.command("compress")(records_run(compress_command))
app.command("runtimes")(runtimes_command)
app.command("methods")(methods_command)
app.command("optimize")(records_run(optimize_command))
app.command("search")(records_run(search_command))
app.add_typer(study_app, name="study")


@app.command("completion")
def completion_command(
    shell: Annotated[str, typer.Argument(help=f"{' | '.join(SHELLS)}")],
) -> None:
    """Print the shell completion script for bash, zsh, fish or powershell.

    Add `eval "$(steelyard completion bash)"` to ~/.bashrc (zsh: the same with zsh in ~/.zshrc;
    fish: `steelyard completion fish | source` in ~/.config/fish/config.fish).
    """
    from typer._completion_shared import get_completion_script

    from steelyard.errors import ConfigError

    if shell not in SHELLS:
        raise ConfigError(f"unknown shell '{shell}'; choose one of: {', '.join(SHELLS)}")
    print(get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell))


def _completion_requested() -> bool:
    """A completion script is asking for candidates: register typer's shell classes first."""
    if not os.environ.get(COMPLETE_VAR):
        return False
    from typer._completion_classes import completion_init

    completion_init()
    return True


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def _click_exceptions() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
    """(Exit, usage error, Abort) classes from click and from typer, which vendors its own copy."""
    exits: list[type] = [click.exceptions.Exit, typer.Exit]
    usage: list[type] = [click.ClickException]
    aborts: list[type] = [click.exceptions.Abort, typer.Abort]
    try:
        from typer._click.exceptions import ClickException as VendoredClickException

        usage.append(VendoredClickException)
    except ImportError:
        pass
    return tuple(exits), tuple(usage), tuple(aborts)


def run(argv: list[str] | None = None) -> int:
    from steelyard.errors import Interrupted, SteelyardError

    OPTIONS.debug = os.environ.get("STEELYARD_DEBUG") == "1" or "--debug" in (argv or sys.argv[1:])
    _quiet_libraries()
    exit_types, usage_types, abort_types = _click_exceptions()
    app.rich_markup_mode = _markup_mode()
    _completion_requested()
    code = 0
    try:
        result = app(args=argv, prog_name=PROG, complete_var=COMPLETE_VAR, standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except SteelyardError as exc:
        if OPTIONS.debug:
            raise
        print(str(exc) if isinstance(exc, Interrupted) else f"error: {exc}", file=sys.stderr)
        code = exc.exit_code
    except exit_types as exc:
        code = exc.exit_code
    except usage_types as exc:
        exc.show()
        code = exc.exit_code
    except (*abort_types, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        code = 130
    except Exception as exc:
        if OPTIONS.debug:
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"internal error: {type(exc).__name__}: {first} (run with --debug for the traceback, and please "
              "report it)", file=sys.stderr)
        code = 1
    if argv is None:
        sys.exit(code)
    from steelyard.hardware import configure

    configure()  # in process (tests, notebooks): --catalog / --pue / --price end with the command
    return code
