"""Projected generation on catalog GPUs vs public figures (issue 13): deterministic counts, no timing.

Counts Llama-2-7B (catalog config, fp16, meta device) phase by phase with ``steelyard.profile_generation``
and projects TTFT, TPOT and end-to-end latency on the A100-80GB and H100-SXM rooflines at the default
efficiencies, for NVIDIA NeMo's published "chatbot" configuration (128 prompt tokens, 20 output tokens,
batch 1 and 8, TensorRT-LLM, TP 1). Also projects Mixtral-8x7B (published config; MoE, 2 of 8 experts
per token) at batch 1 / 8 / 64 to show the expert weights read per step growing with the batch.

    .venv/bin/python benchmarks/generation_projection.py

Writes benchmarks/results/generation_projection.json (seconds, no model weights needed).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from _common import environment, markdown_table, write_json

#: NeMo Framework performance page, "Llama-2 Results — Inference Performance", configuration 1: average latency.
NEMO_MS = {("a100-80gb", 1): 234.0, ("a100-80gb", 8): 329.5, ("h100-sxm", 1): 153.8, ("h100-sxm", 8): 199.2}
MIXTRAL = {"model_type": "mixtral", "architectures": ["MixtralForCausalLM"], "hidden_size": 4096,
           "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
           "num_local_experts": 8, "num_experts_per_tok": 2, "vocab_size": 32000, "max_position_embeddings": 32768,
           "torch_dtype": "bfloat16"}


def _meta(name: str, dtype: str) -> Any:
    from steelyard.models.loading import LoadConfig, load_model
    from steelyard.models.tasks import InputSpec

    return load_model(name, LoadConfig(config_only=True, dtype=dtype, task="causal-lm",
                                       inputs=InputSpec(batch_size=1, seq_len=8)))


def main() -> None:
    from steelyard.hardware import get_hardware
    from steelyard.profiling.generation import profile_generation
    from steelyard.profiling.generation_config import GenerationWorkload

    rows = []
    llama = _meta("llama-2-7b", "float16")
    report = profile_generation(llama, GenerationWorkload(prompt_len=128, new_tokens=20, batch_sizes=(1, 8)),
                                [get_hardware("a100-80gb"), get_hardware("h100-sxm")], measure=False)
    for hw in ("a100-80gb", "h100-sxm"):
        row = report.on(hw)
        for b in row.batches:
            published = NEMO_MS[(hw, b.batch)]
            rows.append({"model": "llama-2-7b", "hardware": hw, "batch": b.batch, "dtype": row.dtype,
                         "memory_efficiency": row.memory_efficiency, "compute_efficiency": row.compute_efficiency,
                         "ttft_ms": 1e3 * float(b.ttft), "tpot_ms": 1e3 * float(b.tpot), "e2e_ms": 1e3 * float(b.e2e),
                         "decode_bound": b.decode_bound, "nemo_latency_ms": published,
                         "projected_over_published": 1e3 * float(b.e2e) / published})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mixtral-8x7b.json"
        path.write_text(json.dumps(MIXTRAL))
        mixtral = _meta(str(path), "bfloat16")
        moe = profile_generation(mixtral, GenerationWorkload(prompt_len=128, new_tokens=20, batch_sizes=(1, 8, 64)),
                                 [get_hardware("h100-sxm")], measure=False)
    from steelyard.profiling.generation_count import at_batch

    step = moe.count.decode_at(128)
    moe_rows = [{"model": "mixtral-8x7b", "hardware": "h100-sxm", "batch": b.batch,
                 "weights_read_per_step_gb": float(at_batch(step, b.batch, moe.count).weight_bytes) / 1e9,
                 "tpot_ms": 1e3 * float(b.tpot), "tokens_per_second": b.tokens_per_second,
                 "decode_bound": b.decode_bound, "devices": moe.on("h100-sxm").devices}
                for b in moe.on("h100-sxm").batches]
    payload = {"date": "2026-12-01", "environment": environment(), "source": "NVIDIA NeMo Framework performance "
               "page, Llama-2 inference, configuration 1 (128 in, 20 out, TensorRT-LLM, TP 1)",
               "llama2_vs_nemo": rows, "mixtral_moe": moe_rows, "moe_assumptions": moe.assumptions}
    out = write_json("generation_projection", payload)
    print(markdown_table(["device", "batch", "NeMo latency", "projected e2e (TTFT, TPOT)", "projected / published"],
                         [[r["hardware"], r["batch"], f"{r['nemo_latency_ms']:.1f} ms",
                           f"{r['e2e_ms']:.0f} ms ({r['ttft_ms']:.1f}, {r['tpot_ms']:.1f})",
                           f"{r['projected_over_published']:.2f}"] for r in rows]))
    print(markdown_table(["batch", "weights read per step", "TPOT", "tokens/s", "decode bound", "devices"],
                         [[r["batch"], f"{r['weights_read_per_step_gb']:.1f} GB", f"{r['tpot_ms']:.1f} ms",
                           f"{r['tokens_per_second']:.0f}", r["decode_bound"], r["devices"]] for r in moe_rows]))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
