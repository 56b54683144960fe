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


def refused(code: int, capsys, *words: str) -> str:
    """A usage error as promised: exit 2, one ``error: ...`` line on stderr holding every word, no traceback
    on either stream. Returns the line."""
    out, err = capsys.readouterr()
    assert code == 2, (code, err[-2000:])
    line = err.strip()
    assert line.startswith("error: ") and "\n" not in line, err[-2000:]
    assert "Traceback" not in out + err and "internal error" not in err
    for word in words:
        assert word in line, line
    return line
