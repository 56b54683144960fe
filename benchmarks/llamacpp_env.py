"""Set up the llama.cpp side environment of ``llm_peers.py``: a plain venv with the prebuilt llama-cpp-py-sync wheel.

llama-cpp-python ships an sdist only (its source build did not finish on this machine's 2 shared cores);
llama-cpp-py-sync ships llama.cpp's own shared libraries (CPU build, AVX2 code) behind CFFI ABI-mode
bindings of ``llama.h``. Its 0.11739 wheel is tagged manylinux2014 but its libraries were linked on a
glibc >= 2.38 system: they import ``__isoc23_strtol`` / ``__isoc23_strtoul`` / ``__isoc23_strtoull`` /
``__isoc23_sscanf`` at version ``GLIBC_2.38``, so on an older glibc (Debian 12: 2.36) ``dlopen`` fails with
"version `GLIBC_2.38' not found". Those are C23 spellings of ``strtol`` & co. that differ only in also
accepting ``0b`` binary literals, which llama.cpp never parses, so this script retargets each such
import to the plain function of the same signature (the symbol's name offset moves past the
``__isoc23_`` prefix within the same string, its version becomes unversioned) and marks the then unused
``GLIBC_2.38`` requirement weak. Nothing else in the libraries changes; a library needing no patch is left
as it is.

    python benchmarks/llamacpp_env.py /work/wt/llamacpp-venv [--wheel PATH.whl]

Stdlib only: runs under any Python 3.11+.
"""

from __future__ import annotations

import argparse
import os
import platform
import struct
import subprocess
import sys
from pathlib import Path

PACKAGE = "llama-cpp-py-sync==0.11739"
SHT_DYNSYM, SHT_VERNEED, SHT_VERSYM = 11, 0x6FFFFFFE, 0x6FFFFFFF
VER_FLG_WEAK = 2
PREFIX = b"__isoc23_"


def glibc_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def _sections(data: bytes) -> list[tuple[int, int, int, int, int]]:
    """(type, offset, size, link, entsize) of every section of a little-endian ELF64 file."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a little-endian ELF64 file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    out = []
    for i in range(shnum):
        _, typ, _, _, off, size, link, _, _, entsize = struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
        out.append((typ, off, size, link, entsize))
    return out


def _cstr(data: bytes | bytearray, off: int) -> bytes:
    return bytes(data[off : data.index(b"\0", off)])


def patch_library(path: Path, host: tuple[int, ...]) -> list[str]:
    """Retarget ``__isoc23_*@GLIBC_x`` imports (x newer than ``host``) to the plain functions; returns what changed.

    Raises ``ValueError`` when the library needs a newer glibc for anything other than those imports:
    that cannot be patched away and the wheel does not fit this machine.
    """
    data = bytearray(path.read_bytes())
    secs = _sections(data)
    dynsym = next(s for s in secs if s[0] == SHT_DYNSYM)
    dynstr = secs[dynsym[3]][1]
    versym = next((s for s in secs if s[0] == SHT_VERSYM), None)
    verneed = next((s for s in secs if s[0] == SHT_VERNEED), None)
    if versym is None or verneed is None:
        return []
    too_new: dict[int, tuple[int, bytes]] = {}  # version index -> (offset of its Vernaux, name)
    off = verneed[1]
    while True:
        _, cnt, _, aux, nxt = struct.unpack_from("<HHIII", data, off)
        a = off + aux
        for _ in range(cnt):
            _, flags, other, name, anext = struct.unpack_from("<IHHII", data, a)
            vname = _cstr(data, dynstr + name)
            weak = flags & VER_FLG_WEAK  # already patched (or optional from the start)
            if not weak and vname.startswith(b"GLIBC_2.") and glibc_tuple(vname[6:].decode()) > host:
                too_new[other] = (a, vname)
            a += anext
        if not nxt:
            break
        off += nxt
    if not too_new:
        return []
    changed = []
    for i in range(dynsym[2] // dynsym[4]):
        sym = dynsym[1] + i * dynsym[4]
        ndx_off = versym[1] + 2 * i
        ndx, = struct.unpack_from("<H", data, ndx_off)
        if ndx & 0x7FFF not in too_new:
            continue
        name_off, = struct.unpack_from("<I", data, sym)
        name = _cstr(data, dynstr + name_off)
        if not name.startswith(PREFIX):
            raise ValueError(f"{path.name} needs {name.decode()}@{too_new[ndx & 0x7FFF][1].decode()}, newer than "
                             f"this glibc {'.'.join(map(str, host))}: not a C23 alias, cannot be patched")
        struct.pack_into("<I", data, sym, name_off + len(PREFIX))
        struct.pack_into("<H", data, ndx_off, 1)  # VER_NDX_GLOBAL: bind to the default version
        changed.append(f"{name.decode()} -> {name[len(PREFIX):].decode()}")
    for a, vname in too_new.values():
        flags, = struct.unpack_from("<H", data, a + 4)
        struct.pack_into("<H", data, a + 4, flags | VER_FLG_WEAK)
        changed.append(f"{vname.decode()} requirement weak")
    path.write_bytes(bytes(data))
    return changed


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess:
    """``cmd``, or one line naming what failed (pip's own output above it says why) and exit 1."""
    try:
        return subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.exit(f"error: {' '.join(cmd[:4])} ... failed: {exc}")


def site_packages(venv: Path) -> Path:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    out = run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True)
    return Path(out.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("venv", type=Path, help="plain venv to create or reuse (not --system-site-packages)")
    ap.add_argument("--wheel", help=f"a downloaded wheel to install instead of {PACKAGE} from PyPI")
    args = ap.parse_args()
    if args.wheel and not Path(args.wheel).is_file():
        ap.error(f"no wheel at {args.wheel}")
    python = args.venv / "bin" / "python"
    if not python.exists():
        run([sys.executable, "-m", "venv", str(args.venv)])
    run([str(python), "-m", "pip", "install", "-q", args.wheel or PACKAGE])
    libc, version = platform.libc_ver()
    if libc != "glibc":
        sys.exit(f"error: this script patches for glibc only (found {libc or 'no libc'})")
    pkg = site_packages(args.venv) / "llama_cpp_py_sync"
    for lib in sorted(pkg.glob("lib*.so*")):
        try:
            changed = patch_library(lib, glibc_tuple(version))
        except ValueError as exc:
            sys.exit(f"error: {exc}")
        if changed:
            print(f"patched {lib.name}: {', '.join(changed)}")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    check = ("from llama_cpp_py_sync._cffi_bindings import get_ffi, get_lib; import llama_cpp_py_sync as m; "
             "lib = get_lib(); lib.llama_backend_init(); "
             "print(m.__version__, m.__llama_cpp_commit__, get_ffi().string(lib.llama_print_system_info()).decode())")
    run([str(python), "-c", check], env=env)


if __name__ == "__main__":
    main()
