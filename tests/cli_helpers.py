"""Running the CLI in-process and checking the one-line errors it promises for bad input."""

from __future__ import annotations

from steelyard.cli.main import run


def steelyard(*args: object) -> int:
    """Exit code of ``steelyard ARGS`` run in this process (paths may be given as Path)."""
    return run([str(a) for a in args])


def one_line_error(capsys, *words: str) -> str:
    """The command's stderr: one ``error: ...`` line that contains every word."""
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    for word in words:
        assert word in err, err
    return err
