"""Where a command may write, checked before any work, and how a folder is written so nothing is lost.

Every command that writes a model folder (``finetune``, ``distill``, ``compress``, ``optimize``)
and every report file (``--json``, ``--csv``, ``report --html``, ``runs export --output``) goes
through this module, so one set of rules holds everywhere:

- an output that is, contains or sits inside one of the command's inputs (the model, the teacher,
  the data) is refused before any work: the user's original is never replaced;
- an existing output is replaced only with ``overwrite`` (CLI ``--overwrite``), and even then only
  when it holds a model (a folder with other files is never deleted);
- an output whose parent is a file, whose folder is read-only (``os.access``; root may still be
  refused by the kernel later, which :func:`os_error` turns into the same one-line error) or whose
  name is too long for the file system is a one-line :class:`ConfigError`, not a traceback;
- a folder is written beside its destination under ``.<name>.tmp-<pid>-<random>`` and swapped in
  by one rename (``renameat2(RENAME_EXCHANGE)`` on Linux, so the destination always holds a
  complete model, the old or the new); the old copy is deleted afterwards. A writer killed with
  ``kill -9`` can strand that temporary folder; the next check of the same output deletes what a
  dead process left (and puts back an old copy that a two-rename swap had moved aside).

A report option given ``-`` (``--json -``, ``--csv -``) writes to standard output instead of a
file: :func:`reserve_stdout` then points ``sys.stdout`` at standard error for the rest of the
command, so tables, notes and progress go there and the one document a script reads (written by
:func:`write_report`) is all that reaches standard output.

``STEELYARD_TEST_PAUSE_AT=<point>`` makes :func:`pause_point` announce ``steelyard: paused at
<point>`` on stderr and sleep, so the durability tests can ``kill -9`` a writer at a known point
(``write-start``, ``write-done``, ``swap``, ``store-commit``, ``trial-start``, ``train-step``). It is for
tests only.
"""

from __future__ import annotations

import ctypes
import errno
import glob
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

from steelyard.errors import ConfigError

#: Files whose presence marks a folder as a model that ``overwrite`` may replace.
MODEL_MARKERS = ("config.json", "steelyard_model.json", "steelyard_compression.json", "model.safetensors")
#: Tags of the hidden siblings a writer makes: a folder being written, an old copy being replaced.
TMP_TAG, OLD_TAG = "tmp", "old"
PAUSE_ENV = "STEELYARD_TEST_PAUSE_AT"
#: OSErrors met while writing that are about the disk or permissions, said in one line.
DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENAMETOOLONG)


#: What a report option takes to mean standard output.
STDOUT = "-"
#: The real standard output while a command has reserved it (:func:`reserve_stdout`).
_reserved: list[TextIO] = []


def is_stdout(path: str | Path | None) -> bool:
    """Whether a report option's value means standard output (``-``)."""
    return path is not None and str(path) == STDOUT


def reserve_stdout() -> Callable[[], None]:
    """Keep standard output for one report: ``sys.stdout`` points at stderr until the returned call undoes it."""
    real = sys.stdout
    _reserved.append(real)
    sys.stdout = sys.stderr

    def release() -> None:
        if real in _reserved:
            _reserved.remove(real)
            sys.stdout = real

    return release


def report_stream() -> TextIO:
    """Where a report meant for standard output goes: the reserved stream, else the current stdout."""
    return _reserved[-1] if _reserved else sys.stdout


def write_report(path: str | Path, text: str, what: str = "output file") -> str:
    """Write one report's text to ``path`` (beside it first, then renamed over it, so a failure never
    leaves half a file), or to standard output for ``-``; returns where it went.

    A path that cannot be written (inside a file, a read-only folder, a name too long) is a
    one-line ConfigError, never an OSError traceback.
    """
    if is_stdout(path):
        stream = report_stream()
        stream.write(text)
        stream.flush()
        return "stdout"
    target = check_output_file(path, what=what)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error(exc, what, target) from exc
    tmp = sibling(target, "partial")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise os_error(exc, what, target) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return str(target)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def pause_point(name: str) -> None:
    """Test hook: sleep at ``name`` when ``$STEELYARD_TEST_PAUSE_AT`` names it (see the module doc)."""
    if os.environ.get(PAUSE_ENV) == name:
        print(f"steelyard: paused at {name}", file=sys.stderr, flush=True)
        time.sleep(3600)


def _inside(a: Path, b: Path) -> bool:
    return a == b or b in a.parents


def check_not_input(target: Path, inputs: Iterable[str | Path | None], what: str = "--output") -> None:
    """ConfigError when ``target`` is, contains or sits inside an existing input path."""
    for source in inputs:
        if source is None:
            continue
        try:
            src = Path(source).expanduser()
            if not src.exists():
                continue
            src = src.resolve()
        except (OSError, ValueError):  # a hub id or a name too long to be a path is no folder of ours
            continue
        if _inside(target, src) or _inside(src, target):
            raise ConfigError(f"{what} {target} would overwrite or contain the input {source}; choose another path")


def check_writable_place(target: Path, what: str = "--output") -> None:
    """ConfigError when ``target`` cannot be created: a too-long name, a parent that is a file, a read-only folder."""
    if any(len(os.fsencode(part)) > 255 for part in target.parts):
        raise ConfigError(f"{what}: a name in {str(target)[:80]}... is longer than the file system's 255 bytes")
    parent = target.parent
    while not parent.exists():
        if parent.is_symlink() or parent == parent.parent:
            break
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise ConfigError(f"{what} {target}: {parent} is a file, not a folder")
    if parent.is_dir() and not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {target}: cannot write in {parent} (read-only or not yours)")


def _owner_alive(name: str) -> bool:
    """Whether the writer whose pid is in a sibling's name (``.x.tmp-<pid>-<rand>``) still runs."""
    try:
        pid = int(name.rsplit("-", 2)[-2])
    except (ValueError, IndexError):
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def clean_stranded(target: Path) -> list[Path]:
    """Delete what killed writers of ``target`` left beside it; returns what was removed or restored.

    An old copy moved aside by a two-rename swap that never finished is moved back when
    ``target`` is missing (so the user's previous model is loadable again), otherwise deleted.
    """
    parent = target.parent
    if not parent.is_dir():
        return []
    touched: list[Path] = []
    for tag in (OLD_TAG, TMP_TAG, "partial"):
        for sibling in sorted(parent.glob(f".{glob.escape(target.name)}.{tag}-*")):
            if _owner_alive(sibling.name):
                continue
            if tag == OLD_TAG and not target.exists() and not target.is_symlink():
                os.rename(sibling, target)
            else:
                _remove(sibling)
            touched.append(sibling)
    return touched


def holds_model(path: Path) -> bool:
    """Whether ``path`` is a model ``overwrite`` may replace: an ``.onnx`` file or a folder with a marker file."""
    if path.is_file():
        return path.suffix == ".onnx"
    return any((path / m).is_file() for m in MODEL_MARKERS)


def check_output(output: str | Path, inputs: Iterable[str | Path | None] = (), *, overwrite: bool = False,
                 what: str = "--output") -> Path:
    """The resolved output path, or a one-line ConfigError saying why it must not be written.

    Call it before any work. It also cleans what an earlier killed run left beside the output.
    """
    target = Path(output).expanduser()
    check_writable_place(target.absolute(), what)
    try:
        target = target.resolve()
    except OSError as exc:
        raise os_error(exc, what, target) from exc
    check_not_input(target, inputs, what)
    clean_stranded(target)
    if not target.exists():
        return target
    if target.is_dir() and not any(target.iterdir()):
        return target
    if not overwrite:
        raise ConfigError(f"{what} {output} already exists; choose another path or pass --overwrite to replace it")
    if not holds_model(target):
        raise ConfigError(f"{what} {output} holds no model (no config.json): --overwrite replaces only a "
                          "model; choose a new or empty folder")
    return target


def check_output_file(output: str | Path, what: str = "--json") -> Path:
    """A report file we can write: not a folder, in a folder that exists or can be made and is writable."""
    target = Path(output).expanduser().absolute()
    check_writable_place(target, what)
    if target.is_dir():
        raise ConfigError(f"{what} {output} is a folder; give a file name")
    return target


def os_error(exc: OSError, what: str, path: str | Path) -> ConfigError:
    """The one-line error for an OSError met while writing ``path``."""
    reason = {errno.ENAMETOOLONG: "a name is too long for the file system", errno.ENOTDIR: "a parent is a file",
              errno.EACCES: "permission denied", errno.EROFS: "read-only file system",
              errno.ENOSPC: "no space left on the device", errno.EISDIR: "it is a folder",
              errno.EPERM: "permission denied"}.get(exc.errno or 0, exc.strerror or type(exc).__name__)
    return ConfigError(f"cannot write {what} {str(path)[:200]}: {reason}")


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2``); False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(a))


def sibling(target: Path, tag: str) -> Path:
    """A hidden name beside ``target`` that :func:`clean_stranded` recognises (``.name.tag-pid-rand``)."""
    return target.with_name(f".{target.name}.{tag}-{os.getpid()}-{secrets.token_hex(4)}")


def swap_into_place(new: Path, target: Path) -> None:
    """Put the complete ``new`` at ``target``; an existing ``target`` is deleted only once ``new`` is there."""
    if not target.exists():
        os.rename(new, target)
        return
    pause_point("swap")
    if _exchange(new, target):  # target now holds the new model, ``new`` the old one
        _remove(new)
        return
    old = sibling(target, OLD_TAG)
    os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(old, target)
        raise
    _remove(old)


def write_atomically(output: str | Path, write: Callable[[Path], None], *, overwrite: bool = False,
                     inputs: Iterable[str | Path | None] = (), folder: bool = True, what: str = "--output") -> Path:
    """Call ``write(tmp)`` on a fresh hidden path beside ``output``, then swap it into place.

    ``folder``: ``tmp`` is a new empty folder; otherwise a file path ``write`` creates. The checks
    of :func:`check_output` run again here (the output may have appeared since the command
    started). Any failure, Ctrl-C included, deletes ``tmp`` and leaves ``output`` as it was.
    """
    target = check_output(output, inputs, overwrite=overwrite, what=what)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = sibling(target, TMP_TAG)
        if folder:
            tmp.mkdir()
    except OSError as exc:
        raise os_error(exc, what, target) from exc
    try:
        pause_point("write-start")
        write(tmp)
        pause_point("write-done")
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        swap_into_place(tmp, target)
    except OSError as exc:
        _remove(tmp)
        if exc.errno in DISK_ERRORS:  # the machine's fault, not a bug: one line
            raise os_error(exc, what, target) from exc
        raise
    except BaseException:
        _remove(tmp)
        raise
    return target
