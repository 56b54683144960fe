"""The zoo of published architectures (tests/zoo/entries.py) weighed config-only, beside what peers say.

For each entry, in a fresh Python subprocess (imports included, as a user pays them): steelyard's
``load_model(config.json, LoadConfig(config_only=True, task=..., inputs=InputSpec(1, SEQ)))`` then
``profile`` (the whole card) — parameters, active parameters (MoE), MACs, KV cache per token, wall
seconds and the child's own peak RSS (``os.wait4``). On the same meta build with the same inputs:
torch's ``FlopCounterMode`` (MACs = FLOPs / 2), fvcore and calflops when installed, and accelerate's
``estimate-memory`` for the weights when installed; a peer that is missing is reported as such,
never installed by this script.

    .venv/bin/python benchmarks/zoo.py [--seq-len 128] [--only NAME ...]

Prints a markdown table and writes benchmarks/results/zoo.json. The machine may be shared: run it
when the cores are quiet (``wait_for_quiet`` waits up to 30 s before each entry).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from _common import ROOT, SRC, environment, markdown_table, package_version, wait_for_quiet, write_json

sys.path.insert(0, str(ROOT / "tests"))
from zoo.entries import ZOO, ZooEntry

PEERS = ("fvcore", "calflops", "accelerate")

SNIPPET = textwrap.dedent(
    """
    import json, sys, time, io, contextlib, warnings
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    import steelyard, torch
    from steelyard import InputSpec, LoadConfig, ProfileConfig
    path, task, seq, extra = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
    handle = steelyard.load_model(path, LoadConfig(config_only=True, task=task, inputs=InputSpec(1, seq, **extra)))
    report = steelyard.profile(handle, ProfileConfig(hardware=(), measure=False))
    t1 = time.perf_counter()
    out = {"seconds": t1 - t0, "dtype": report.dtype, "params": report.parameters.total,
           "active": report.parameters.active, "macs": float(report.compute.macs),
           "kv_per_token": float(report.memory.kv_cache_per_token or 0) or None,
           "state": float(report.memory.recurrent_state_per_sequence or 0) or None,
           "uncounted": report.compute.uncounted_ops}
    peers = {}
    from torch.utils.flop_counter import FlopCounterMode
    t2 = time.perf_counter()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            handle.forward()
        peers["FlopCounterMode"] = {"macs": counter.get_total_flops() / 2, "seconds": time.perf_counter() - t2}
    except Exception as exc:
        peers["FlopCounterMode"] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:150]}"}
    if "fvcore" in sys.argv[5:]:
        try:
            from fvcore.nn import FlopCountAnalysis
            inputs = tuple(handle.inputs.values())
            keys = list(handle.inputs)

            class Wrapper(torch.nn.Module):
                def __init__(self, model):
                    super().__init__()
                    self.model = model

                def forward(self, *args):
                    return self.model(**dict(zip(keys, args)))

            with contextlib.redirect_stderr(io.StringIO()):
                analysis = FlopCountAnalysis(Wrapper(handle.module), inputs)
                analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
                peers["fvcore"] = {"macs": float(analysis.total())}
        except Exception as exc:
            peers["fvcore"] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:150]}"}
    if "calflops" in sys.argv[5:]:
        try:
            from calflops import calculate_flops
            with contextlib.redirect_stdout(io.StringIO()):
                _f, macs, _p = calculate_flops(handle.module, kwargs=dict(handle.inputs), print_results=False,
                                               print_detailed=False, output_as_string=False)
            peers["calflops"] = {"macs": float(macs)}
        except Exception as exc:
            peers["calflops"] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:150]}"}
    out["peers"] = peers
    print("RESULT " + json.dumps(out))
    """
)


def run_entry(entry: ZooEntry, seq: int, peers: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        path.write_text(json.dumps(entry.config))
        env = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-c", SNIPPET, str(path), entry.task, str(seq), json.dumps(entry.inputs), *peers],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        _pid, status, usage = os.wait4(proc.pid, 0)
        stdout, stderr = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    if status != 0 or not lines:
        return {"name": entry.name, "error": (stderr.strip().splitlines() or ["failed"])[-1][:200]}
    result = json.loads(lines[-1].removeprefix("RESULT "))
    result.update(name=entry.name, rss_bytes=usage.ru_maxrss * 1024)
    if "accelerate" in peers:
        result["peers"]["accelerate"] = accelerate_estimate(entry)
    return result


def accelerate_estimate(entry: ZooEntry) -> dict[str, Any]:
    """accelerate's ``estimate-memory`` needs a hub id (it fetches the config): offline it is refused."""
    proc = subprocess.run(["accelerate", "estimate-memory", entry.hub_id, "--library_name", "transformers"],
                          capture_output=True, text=True, timeout=120)
    text = (proc.stdout or proc.stderr).strip().splitlines()
    return {"output": text[-1][:200] if text else "", "returncode": proc.returncode}


def _count(n: float | None) -> str:
    if not n:
        return "—"
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    peers = [p for p in PEERS if package_version(p) is not None]
    missing = [p for p in PEERS if p not in peers]
    results = []
    for entry in ZOO:
        if args.only and entry.name not in args.only:
            continue
        wait_for_quiet()
        results.append(run_entry(entry, args.seq_len, peers))
        print(results[-1].get("name"), results[-1].get("seconds", results[-1].get("error")), flush=True)
    rows = []
    for r in results:
        if "error" in r:
            rows.append([r["name"], "error: " + r["error"], *[""] * 7])
            continue
        flop_counter = r["peers"].get("FlopCounterMode", {})
        fcm = _count(flop_counter.get("macs")) if "macs" in flop_counter else "fails"
        rows.append([r["name"], r["dtype"], _count(r["params"]), _count(r["active"]), _count(r["macs"]), fcm,
                     _count(r["kv_per_token"]) + ("B" if r["kv_per_token"] else "")
                     if not r["state"] else f"state {_count(r['state'])}B",
                     f"{r['seconds']:.1f}", f"{r['rss_bytes'] / 2**20:.0f} MiB"])
    headers = ["model", "dtype", "params", "active", f"MACs (seq {args.seq_len})", "FlopCounterMode MACs",
               "KV / token", "seconds", "peak RSS"]
    print(markdown_table(headers, rows))
    if missing:
        print(f"\nnot installed (not run): {', '.join(missing)}")
    write_json("zoo", {"environment": environment(), "seq_len": args.seq_len, "peers_missing": missing,
                       "results": results})


if __name__ == "__main__":
    main()
