"""Helpers shared by the benchmark scripts: paths, the environment record, markdown tables."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
SRC = ROOT / "src"

if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))


def isa_flags() -> list[str]:
    """The vector-ISA flags of this CPU, read by steelyard itself (one reader: ``steelyard.backends.cpu``)."""
    from steelyard.backends.cpu import isa_flags as read

    return read()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment() -> dict[str, Any]:
    """What every number in these benchmarks was measured on."""
    env: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        import torch

        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    try:
        import transformers

        env["transformers"] = transformers.__version__
    except ImportError:
        pass
    return env


def package_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def short_error(exc: BaseException, limit: int = 160) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_clean(run: Any, max_other_work: float, attempts: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Call ``run()`` until other processes used at most ``max_other_work`` of the machine during it.

    Returns the kept result (the last attempt when none was clean; ``clean`` says which) and the
    discarded noisy attempts, so both can be reported.
    """
    discarded: list[dict[str, Any]] = []
    for attempt in range(1, attempts + 1):
        result = run()
        result["attempt"] = attempt
        result["clean"] = result.get("other_work_during", 0.0) <= max_other_work
        if result["clean"] or attempt == attempts:
            return result, discarded
        discarded.append(result)
    raise AssertionError("unreachable")


def cpu_busy(interval: float = 1.0) -> float:
    """Share of all cores busy over ``interval`` seconds (from /proc/stat; 0.0 where unreadable)."""
    import time

    def snapshot() -> tuple[int, int] | None:
        try:
            fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        except (OSError, ValueError, IndexError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return idle, sum(fields)

    before = snapshot()
    time.sleep(interval)
    after = snapshot()
    if before is None or after is None or after[1] == before[1]:
        return 0.0
    return 1.0 - (after[0] - before[0]) / (after[1] - before[1])


def wait_for_quiet(threshold: float = 0.25, max_wait: float = 30.0) -> dict[str, float]:
    """On a shared machine, wait (at most ``max_wait`` s) until other work leaves the cores idle.

    Returns the busy share seen last and the seconds waited, to be recorded beside the number.
    """
    import time

    t0 = time.perf_counter()
    busy = cpu_busy()
    while busy > threshold and time.perf_counter() - t0 < max_wait:
        busy = cpu_busy()
    return {"busy_before": round(busy, 3), "waited_s": round(time.perf_counter() - t0, 1)}


def _proc_stat() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields) - idle) / tick, sum(fields) / tick


class OtherWork:
    """Share of the machine's CPU used by *other* processes while the block ran.

    Machine busy time (/proc/stat) minus the CPU time of this process and of the children it
    waited for (getrusage), over wall time × cores. 0 means the benchmark had the machine alone.
    """

    def __enter__(self) -> OtherWork:
        import resource

        self._stat = _proc_stat()
        self._own = sum(
            getattr(resource.getrusage(who), f)
            for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
            for f in ("ru_utime", "ru_stime")
        )
        self.share = 0.0
        return self

    def __exit__(self, *exc: Any) -> None:
        import resource

        stat = _proc_stat()
        own = sum(
            getattr(resource.getrusage(who), f)
            for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
            for f in ("ru_utime", "ru_stime")
        )
        if self._stat is None or stat is None or stat[1] <= self._stat[1]:
            return
        busy = stat[0] - self._stat[0]
        self.share = max(0.0, min(1.0, (busy - (own - self._own)) / (stat[1] - self._stat[1])))
