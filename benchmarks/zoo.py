"""The zoo of published architectures (tests/zoo/entries.py) weighed config-only, beside what peers say.

For each entry, in a fresh Python subprocess (imports included, as a user pays them): steelyard's
``load_model(config.json, LoadConfig(config_only=True, task=..., inputs=InputSpec(1, SEQ)))`` then
``profile`` (the whole card) — parameters, active parameters (MoE), MACs, KV cache per token, wall
seconds and the child's peak RSS when the profile is done (before any peer runs). On the same meta
build with the same inputs:
torch's ``FlopCounterMode`` (MACs = FLOPs / 2), fvcore and calflops when installed, and accelerate's
``estimate-memory`` for the weights when installed; a peer that is missing is reported as such,
never installed by this script. ``accelerate estimate-memory <hub id>`` fetches the config from the hub
and then runs ``calculate_maximum_sizes`` on an empty build; offline, that same function is given the
same meta build. Each peer gets at most ``--peer-limit`` seconds per entry (SIGALRM in the child) and
each entry ``--entry-limit`` seconds in all, so the run stays bounded; what a peer cannot do is recorded
with its reason. Peers can live outside the environment: put their folder on ``PYTHONPATH`` after src.

    .venv/bin/python benchmarks/zoo.py [--seq-len 128] [--only NAME ...] [--peer-limit 60]

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

from _common import ROOT, SRC, environment, isa_flags, markdown_table, package_version, wait_for_quiet, write_json

sys.path.insert(0, str(ROOT / "tests"))
from zoo.entries import ZOO, ZooEntry

PEERS = ("fvcore", "calflops", "accelerate")

SNIPPET = textwrap.dedent(
    """
    import json, os, signal, sys, time, io, contextlib, warnings
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    PEER_LIMIT = int(os.environ.get("ZOO_PEER_LIMIT", "60"))

    class PeerTimeout(Exception):
        pass

    def _alarm(*_):
        raise PeerTimeout(f"over {PEER_LIMIT} s")

    signal.signal(signal.SIGALRM, _alarm)

    def _top(counts, n=6):
        return dict(sorted(((str(k), float(v)) for k, v in counts.items()), key=lambda kv: -kv[1])[:n])
    import steelyard, torch
    from steelyard import InputSpec, LoadConfig, ProfileConfig
    path, task, seq, extra = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
    handle = steelyard.load_model(path, LoadConfig(config_only=True, task=task, inputs=InputSpec(1, seq, **extra)))
    report = steelyard.profile(handle, ProfileConfig(hardware=(), measure=False))
    t1 = time.perf_counter()
    import resource
    out = {"seconds": t1 - t0, "rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
           "dtype": report.dtype, "params": report.parameters.total,
           "active": report.parameters.active, "macs": float(report.compute.macs),
           "kv_per_token": float(report.memory.kv_cache_per_token or 0) or None,
           "state": float(report.memory.recurrent_state_per_sequence or 0) or None,
           "uncounted": report.compute.uncounted_ops, "weights_bytes": float(report.memory.weights),
           "macs_by_category": {k: float(v) for k, v in report.compute.macs_by_category.items()},
           "loadavg_before": os.getloadavg()}
    peers = {}
    from torch.utils.flop_counter import FlopCounterMode
    t2 = time.perf_counter()
    try:
        signal.alarm(PEER_LIMIT)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            handle.forward()
        signal.alarm(0)
        by_op = {str(k): v / 2 for k, v in counter.get_flop_counts().get("Global", {}).items()}
        peers["FlopCounterMode"] = {"macs": counter.get_total_flops() / 2, "seconds": time.perf_counter() - t2,
                                    "macs_by_op": _top(by_op)}
    except BaseException as exc:
        signal.alarm(0)
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

                def forward(self, *args):  # jit traces tensors only: drop the cache and other non-tensors
                    out = self.model(**dict(zip(keys, args)))
                    values = out.values() if isinstance(out, dict) else out
                    return tuple(v for v in values if isinstance(v, torch.Tensor))

            t3 = time.perf_counter()
            signal.alarm(PEER_LIMIT)
            with contextlib.redirect_stderr(io.StringIO()):
                analysis = FlopCountAnalysis(Wrapper(handle.module), inputs)
                analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
                total = float(analysis.total())
            signal.alarm(0)
            peers["fvcore"] = {"macs": total, "seconds": time.perf_counter() - t3,
                               "macs_by_op": _top(analysis.by_operator()),
                               "unsupported": _top(analysis.unsupported_ops(), 8)}
        except BaseException as exc:
            signal.alarm(0)
            peers["fvcore"] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:150]}"}
    if "calflops" in sys.argv[5:]:
        try:
            from calflops import calculate_flops
            t4 = time.perf_counter()
            signal.alarm(PEER_LIMIT)
            with contextlib.redirect_stdout(io.StringIO()):
                _f, macs, params = calculate_flops(handle.module, kwargs=dict(handle.inputs), print_results=False,
                                                   print_detailed=False, output_as_string=False)
            signal.alarm(0)
            peers["calflops"] = {"macs": float(macs), "params": float(params), "seconds": time.perf_counter() - t4}
        except BaseException as exc:
            signal.alarm(0)
            peers["calflops"] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:150]}"}
    if "accelerate" in sys.argv[5:]:
        try:
            from accelerate.utils import calculate_maximum_sizes
            total, largest = calculate_maximum_sizes(handle.module)  # estimate-memory's own computation
            peers["accelerate"] = {"weights_bytes": float(total), "largest_layer_bytes": float(largest[0])}
        except BaseException as exc:
            peers["accelerate"] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:150]}"}
    out["peers"] = peers
    print("RESULT " + json.dumps(out))
    """
)


def run_entry(entry: ZooEntry, seq: int, peers: list[str], peer_limit: int, entry_limit: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        path.write_text(json.dumps(entry.config))
        extra = os.environ.get("PYTHONPATH", "")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(SRC), extra) if p),
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ZOO_PEER_LIMIT": str(peer_limit)}
        proc = subprocess.Popen(
            [sys.executable, "-c", SNIPPET, str(path), entry.task, str(seq), json.dumps(entry.inputs), *peers],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        try:
            stdout, stderr = proc.communicate(timeout=entry_limit)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return {"name": entry.name, "error": f"over {entry_limit} s in all"}
        status = proc.returncode
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    if status != 0 or not lines:
        return {"name": entry.name, "error": (stderr.strip().splitlines() or ["failed"])[-1][:200]}
    result = json.loads(lines[-1].removeprefix("RESULT "))
    result.update(name=entry.name)
    return result


def _count(n: float | None) -> str:
    if not n:
        return "—"
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:g}"


def _peer_cell(peer: dict[str, Any], key: str = "macs") -> str:
    if key in peer:
        return _count(peer[key]) + ("B" if key.endswith("bytes") else "")
    if "error" in peer:
        return "fails: " + peer["error"].split(":")[0]
    return "not run"




def _rows(results: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for r in results:
        if "error" in r:
            rows.append([r["name"], "error: " + r["error"], *[""] * 12])
            continue
        p = r["peers"]
        kv = (_count(r["kv_per_token"]) + "B" if r["kv_per_token"] else "—") if not r["state"] \
            else f"state {_count(r['state'])}B"
        rows.append([r["name"], r["dtype"], _count(r["params"]), _count(r["active"]), _count(r["macs"]),
                     _peer_cell(p.get("FlopCounterMode", {})), _peer_cell(p.get("fvcore", {})),
                     _peer_cell(p.get("calflops", {})), kv, _count(r["weights_bytes"]) + "B",
                     _peer_cell(p.get("accelerate", {}), "weights_bytes"), f"{r['seconds']:.1f}",
                     f"{r['rss_bytes'] / 2**20:.0f} MiB", f"{r['loadavg_before'][0]:.1f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--peer-limit", type=int, default=60, help="seconds each peer may take per entry")
    parser.add_argument("--entry-limit", type=int, default=300, help="seconds one entry may take in all")
    parser.add_argument("--out", default="zoo", help="name of the results file in benchmarks/results/")
    parser.add_argument("--skip", type=int, default=0, help="start at this zoo index (to split a run)")
    parser.add_argument("--quiet-wait", type=float, default=30.0, help="seconds to wait for idle cores per entry")
    args = parser.parse_args()
    peers = [p for p in PEERS if package_version(p) is not None]
    missing = [p for p in PEERS if p not in peers]
    env = {**environment(), "isa_flags": isa_flags(), "loadavg_start": os.getloadavg(),
           "peers": {p: package_version(p) for p in peers}}
    results = []
    for entry in ZOO[args.skip:]:
        if args.only and entry.name not in args.only:
            continue
        quiet = wait_for_quiet(max_wait=args.quiet_wait)
        results.append({**run_entry(entry, args.seq_len, peers, args.peer_limit, args.entry_limit), "quiet": quiet})
        print(results[-1].get("name"), results[-1].get("seconds", results[-1].get("error")), flush=True)
        write_json(args.out, {"environment": env, "seq_len": args.seq_len, "peers_missing": missing,
                           "results": results})  # after each entry: a cut-short run keeps what it measured
    headers = ["model", "dtype", "params", "active", f"MACs (seq {args.seq_len})", "FlopCounterMode", "fvcore",
               "calflops", "KV / token", "weights", "accelerate weights", "seconds", "peak RSS", "load"]
    print(markdown_table(headers, _rows(results)))
    if missing:
        print(f"\nnot installed (not run): {', '.join(missing)}")
    env["loadavg_end"] = os.getloadavg()
    write_json(args.out, {"environment": env, "seq_len": args.seq_len, "peers_missing": missing, "results": results})


if __name__ == "__main__":
    main()
