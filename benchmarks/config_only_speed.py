"""Time and memory to weigh 7-8B and 70B architectures from their config alone (meta device).

Each weighing runs in a fresh Python subprocess (interpreter start and every import included,
as a user running it would pay), so the wall time and peak RSS belong to that one job. Peak
RSS is the child's own ``ru_maxrss``, read through ``os.wait4`` for that child alone. The
machine is shared: before each run the script waits (at most 30 s) for idle cores, measures the
share of the machine other processes used during the run, and repeats a run (up to --attempts
times) when that share exceeded --max-other-work.

steelyard: ``load_model(name, LoadConfig(config_only=True, inputs=InputSpec(1, 2048)))`` then
``profile(handle, ProfileConfig(hardware=("a100-80gb", "h100-sxm")))`` (the whole cost card:
counts, memory, roofline and fit verdicts). Alternatives a user would try, on the same meta
model: calflops, fvcore, ptflops (aten backend) and torch's FlopCounterMode (counts only).

    .venv/bin/python benchmarks/config_only_speed.py [--repeats 3]

Prints markdown tables and writes benchmarks/results/config_only_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Any

from _common import (
    ROOT,
    SRC,
    OtherWork,
    environment,
    markdown_table,
    package_version,
    run_clean,
    wait_for_quiet,
    write_json,
)

MODELS = ["llama-2-7b", "llama-3-8b", "llama-2-70b", "llama-3-70b"]
PEER_MODELS = ["llama-2-7b", "llama-2-70b"]
PEERS = ["calflops", "fvcore", "ptflops (aten)", "FlopCounterMode"]
SEQ_LEN = 2048
TARGETS = {"7b": 15.0, "70b": 60.0, "rss_bytes": 2 * 2**30}

STEELYARD_SNIPPET = textwrap.dedent(
    """
    import json, resource, sys, time
    t0 = time.perf_counter()
    import steelyard
    from steelyard import InputSpec, LoadConfig, ProfileConfig
    t1 = time.perf_counter()
    handle = steelyard.load_model(sys.argv[1], LoadConfig(config_only=True, inputs=InputSpec(1, int(sys.argv[2]))))
    t2 = time.perf_counter()
    report = steelyard.profile(handle, ProfileConfig(hardware=("a100-80gb", "h100-sxm")))
    t3 = time.perf_counter()
    print("RESULT " + json.dumps({
        "import_s": t1 - t0, "load_s": t2 - t1, "profile_s": t3 - t2,
        "params": report.parameters.total,
        "macs": float(report.compute.macs),
        "flops": float(report.compute.flops),
        "other_flops": float(report.compute.other_flops),
        "macs_by_category": {k: float(v) for k, v in report.compute.macs_by_category.items()},
        "uncounted": report.compute.uncounted_ops,
        "kv_cache_per_token": float(report.memory.kv_cache_per_token or 0),
        "verdicts": [
            {"hardware": v.hardware, "fits_inference": v.fits_inference, "devices_for_inference":
             v.devices_for_inference, "devices_for_finetune": v.devices_for_finetune, "bound": v.bound,
             "projected_latency_s": float(v.projected_latency_per_batch)}
            for v in report.hardware
        ],
        "self_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))
    """
)

PEER_SNIPPET = textwrap.dedent(
    """
    import json, resource, sys, time, warnings, io, contextlib
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    import torch
    from steelyard.models.catalog import find_entry
    from steelyard.models.tasks import auto_class
    tool, name, seq = sys.argv[1], sys.argv[2], int(sys.argv[3])
    entry = find_entry(name)
    config = entry.build_config()
    with torch.device("meta"):
        model = auto_class(entry.task).from_config(config).eval()
    ids = torch.zeros((1, seq), dtype=torch.long, device="meta")
    t1 = time.perf_counter()
    out = {"build_s": t1 - t0}
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            if tool == "calflops":
                from calflops import calculate_flops
                _f, macs, _p = calculate_flops(model, kwargs={"input_ids": ids}, print_results=False,
                                               print_detailed=False, output_as_string=False)
            elif tool == "fvcore":
                from fvcore.nn import FlopCountAnalysis

                class Wrapper(torch.nn.Module):
                    def __init__(self, model):
                        super().__init__()
                        self.model = model

                    def forward(self, x):
                        return self.model(input_ids=x, use_cache=False).logits

                analysis = FlopCountAnalysis(Wrapper(model), (ids,))
                analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
                macs = analysis.total()
                out["skipped"] = dict(analysis.unsupported_ops())
            elif tool == "ptflops (aten)":
                from ptflops import get_model_complexity_info
                macs, _p = get_model_complexity_info(model, (1,), input_constructor=lambda _r: {"input_ids": ids},
                                                     as_strings=False, print_per_layer_stat=False, backend="aten")
                if macs is None:
                    raise RuntimeError("ptflops returned None")
            elif tool == "FlopCounterMode":
                from torch.utils.flop_counter import FlopCounterMode
                with torch.no_grad(), FlopCounterMode(display=False) as counter:
                    model(input_ids=ids)
                macs = counter.get_total_flops() / 2
            else:
                raise ValueError(tool)
        out.update(status="ok", macs=float(macs))
    except Exception as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        out.update(status="failed", error=f"{type(exc).__name__}: {text}"[:200])
    out["count_s"] = time.perf_counter() - t1
    out["self_maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("RESULT " + json.dumps(out))
    """
)


def run_child(snippet: str, args: list[str], timeout: float = 280.0) -> dict[str, Any]:
    """Run ``snippet`` in a fresh interpreter; wall time and that child's own peak RSS."""
    env = dict(os.environ, PYTHONPATH=str(SRC), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    quiet = wait_for_quiet()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryFile(mode="w+") as out, OtherWork() as other:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", snippet, *args], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    result: dict[str, Any] = {
        "load_average_before": load_before,
        **quiet,
        "other_work_during": round(other.share, 3),
        "wall_s": wall,
        "returncode": proc.returncode,
        "peak_rss_bytes": usage.ru_maxrss * 1024,
    }
    lines = [line for line in text.splitlines() if line.startswith("RESULT ")]
    if lines:
        result.update(json.loads(lines[-1].removeprefix("RESULT ")))
    else:
        result.update(status="failed", error=(text.strip().splitlines() or ["no output"])[-1][:200])
    return result


def closed_form(name: str, seq: int) -> dict[str, float]:
    """Llama forward MACs from the config: every weight matrix once per token, plus attention.

    matmul MACs = T · (per layer: d·(d + 2·kv) + d·d + 3·d·ff, times L; plus the LM head d·V);
    attention MACs = L · H · T² · 2·d_head (Q·Kᵀ and P·V over the full score matrix).
    """
    sys.path.insert(0, str(SRC))
    from steelyard.models.catalog import find_entry

    entry = find_entry(name)
    assert entry is not None
    c = entry.config
    d, ff, layers, heads = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["num_attention_heads"]
    kv = c["num_key_value_heads"] * d // heads
    vocab = c["vocab_size"]
    per_layer = d * (d + 2 * kv) + d * d + 3 * d * ff
    matmul = seq * (layers * per_layer + d * vocab)
    attention = layers * heads * seq * seq * 2 * (d // heads)
    return {
        "matmul": matmul,
        "attention": attention,
        "macs": matmul + attention,
        "reference_params": entry.reference_params,
    }


def noisy_mark(run: dict[str, Any]) -> str:
    return "" if run.get("clean", True) else " (noisy)"


def target_for(name: str) -> float:
    return TARGETS["70b"] if "70b" in name else TARGETS["7b"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh subprocesses per steelyard model")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument(
        "--max-other-work",
        type=float,
        default=0.10,
        help="repeat a run when other processes used more than this share of the machine during it",
    )
    parser.add_argument("--attempts", type=int, default=3, help="tries per run before keeping a noisy one")
    args = parser.parse_args()
    started = time.perf_counter()

    steelyard_rows: list[dict[str, Any]] = []
    discarded: list[dict[str, Any]] = []
    for name in MODELS:
        runs = []
        for _ in range(args.repeats):
            kept, noisy = run_clean(
                lambda name=name: run_child(STEELYARD_SNIPPET, [name, str(SEQ_LEN)]), args.max_other_work, args.attempts
            )
            runs.append(kept)
            discarded.extend({"model": name, **r} for r in noisy)
        for i, r in enumerate(runs):
            print(
                f"[steelyard {name} run {i + 1}: {r['wall_s']:.1f} s, {r['peak_rss_bytes'] / 2**20:.0f} MiB]",
                flush=True,
            )
        steelyard_rows.append({"model": name, "closed_form": closed_form(name, SEQ_LEN), "runs": runs})

    peer_rows: list[dict[str, Any]] = []
    if not args.skip_peers:
        for name in PEER_MODELS:
            for tool in PEERS:
                r, noisy = run_clean(
                    lambda tool=tool, name=name: run_child(PEER_SNIPPET, [tool, name, str(SEQ_LEN)]),
                    args.max_other_work,
                    args.attempts,
                )
                discarded.extend({"model": name, "tool": tool, **x} for x in noisy)
                print(f"[{tool} {name}: {r['wall_s']:.1f} s, {r.get('status')}]", flush=True)
                peer_rows.append({"model": name, "tool": tool, **r})

    # -- tables --------------------------------------------------------------------------------
    rows = []
    for rec in steelyard_rows:
        runs = [r for r in rec["runs"] if r.get("status", "ok") == "ok" and "macs" in r]
        walls = [r["wall_s"] for r in rec["runs"]]
        rss = max(r["peak_rss_bytes"] for r in rec["runs"])
        target = target_for(rec["model"])
        median = statistics.median(walls)
        ok = runs and median < target and rss < TARGETS["rss_bytes"]
        first = runs[0] if runs else {}
        params = first.get("params", 0)
        cf = rec["closed_form"]
        phases = f"{first['import_s']:.1f} / {first['load_s']:.1f} / {first['profile_s']:.1f}" if first else "failed"
        rows.append(
            [
                rec["model"],
                " / ".join(f"{w:.1f}" for w in walls) + f" (median {median:.1f})",
                phases,
                f"{rss / 2**20:.0f}",
                " / ".join(f"{r.get('other_work_during', 0) * 100:.0f}%{noisy_mark(r)}" for r in rec["runs"]),
                f"median < {target:.0f} s, RSS < 2 GiB: {'met' if ok else 'NOT met'}",
                f"{params / 1e9:.3f} ({(params / cf['reference_params'] - 1) * 100:+.3f}%)",
                f"{first.get('flops', 0) / 1e12:.2f} ({(first.get('macs', 0) / cf['macs'] - 1) * 100:+.3f}%)",
                ", ".join(
                    f"{v['hardware']}: {'fits' if v['fits_inference'] else 'needs ' + str(v['devices_for_inference'])}"
                    for v in first.get("verdicts", [])
                ),
            ]
        )
    out = [
        f"### steelyard, config only, batch 1 × {SEQ_LEN} tokens, fresh subprocess per run",
        "",
        markdown_table(
            [
                "model",
                "wall s (each run, fresh process)",
                "import / load / profile s (run 1)",
                "peak RSS MiB (max)",
                "other work on the machine (each run)",
                "target",
                "params G (vs published)",
                "forward TFLOPs (MACs vs closed form)",
                "inference fit (fp32)",
            ],
            rows,
        ),
    ]
    if peer_rows:
        rows = []
        by_model = {rec["model"]: rec for rec in steelyard_rows}
        for r in peer_rows:
            ref = by_model[r["model"]]["runs"][0].get("macs") if r["model"] in by_model else None
            if r.get("status") == "ok":
                macs = f"{r['macs'] / 1e12:.2f}" + (f" ({(r['macs'] / ref - 1) * 100:+.1f}%)" if ref else "")
            else:
                macs = "failed: " + r.get("error", "?")
            rows.append(
                [
                    r["tool"],
                    r["model"],
                    f"{r['wall_s']:.1f}",
                    f"{r.get('build_s', 0):.1f} / {r.get('count_s', 0):.1f}",
                    f"{r['peak_rss_bytes'] / 2**20:.0f}",
                    f"{r.get('other_work_during', 0) * 100:.0f}%{noisy_mark(r)}",
                    macs,
                ]
            )
        out += [
            "",
            "### Alternatives on the same meta model (counts only, no memory / roofline / verdicts)",
            "",
            markdown_table(
                [
                    "tool",
                    "model",
                    "wall s",
                    "import+build / count s",
                    "peak RSS MiB",
                    "other work",
                    "forward TMACs (vs steelyard)",
                ],
                rows,
            ),
        ]
    out.append(
        f"\n{len(discarded)} runs were repeated because other processes used more than "
        f"{args.max_other_work:.0%} of the machine during them (kept in the JSON)."
    )
    table = "\n".join(out)
    print()
    print(table)
    path = write_json(
        "config_only_speed",
        {
            "benchmark": "config_only_speed",
            "seq_len": SEQ_LEN,
            "targets": TARGETS,
            "environment": environment(),
            "versions": {p: package_version(p) for p in ("fvcore", "ptflops", "thop", "calflops")},
            "total_seconds": round(time.perf_counter() - started, 1),
            "steelyard": steelyard_rows,
            "peers": peer_rows,
            "max_other_work": args.max_other_work,
            "discarded_noisy_attempts": discarded,
        },
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
