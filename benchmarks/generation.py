"""Measured vs projected `local` TTFT / TPOT of real ``generate()`` on ~100M random-weight Llama and GPT-2.

Issue 13's CPU acceptance: TTFT grows with the prompt, TPOT with the context and the batch, tokens/s
equals new tokens / e2e, and the roofline projection for this machine (`local`, its measured peak
FLOP/s and bandwidth at the default 60% / 70% efficiencies) is printed beside each measurement with
their ratio. Random weights are fine for timing: greedy decoding of exactly ``--new-tokens`` tokens
with the model's own cache runs the same kernels whatever the values.

Grid: Llama (8 layers, hidden 768, 32k vocabulary, ~106M parameters) and GPT-2 small (124M), fp32,
batch 1 and 4, prompt 128 and 512, 32 new tokens, 1 warm-up + 2 timed runs each. A final run
(Llama, batch 4, prompt 16, 384 new tokens) shows how TPOT grows with the context (the median of the
first quarter of decode steps vs the last quarter).

    .venv/bin/python benchmarks/generation.py

Prints markdown tables and writes benchmarks/results/generation.json (under 6 minutes on 2 cores).
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import environment, isa_flags, markdown_table, write_json

PROMPTS, BATCHES, NEW_TOKENS = (128, 512), (1, 4), 32
GROWTH = {"prompt_len": 16, "new_tokens": 384, "batch": 4}




def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def build(root: Path) -> dict[str, Path]:
    import torch
    import transformers

    torch.manual_seed(0)
    llama = transformers.LlamaConfig(hidden_size=768, intermediate_size=2048, num_hidden_layers=8,
                                     num_attention_heads=12, num_key_value_heads=12, vocab_size=32000,
                                     max_position_embeddings=2048)
    transformers.LlamaForCausalLM(llama).save_pretrained(root / "llama-106m")
    transformers.GPT2LMHeadModel(transformers.GPT2Config()).save_pretrained(root / "gpt2-124m")
    return {"llama-106m": root / "llama-106m", "gpt2-124m": root / "gpt2-124m"}


def _row(model: str, prompt: int, m: Any) -> dict[str, Any]:
    return {
        "model": model, "prompt_len": prompt, "batch": m.batch, "new_tokens": NEW_TOKENS,
        "ttft_ms": 1e3 * float(m.ttft_median), "tpot_ms": 1e3 * float(m.tpot_median),
        "tpot_p90_ms": 1e3 * float(m.tpot_p90), "tpot_early_ms": 1e3 * float(m.tpot_early),
        "tpot_late_ms": 1e3 * float(m.tpot_late), "e2e_ms": 1e3 * float(m.e2e_median),
        "tokens_per_second": m.tokens_per_second,
        # decode throughput two ways: the decode steps over the decode time, and the batch over the median gap
        "decode_tokens_per_second": m.batch * (NEW_TOKENS - 1) / float(m.decode_median),
        "batch_over_tpot": m.batch / float(m.tpot_median),
        "projected_ttft_ms": 1e3 * float(m.projected_ttft or 0),
        "projected_tpot_ms": 1e3 * float(m.projected_tpot or 0),
        "ttft_ratio": m.ttft_ratio, "tpot_ratio": m.tpot_ratio, "peak_memory_mib": float(m.peak_memory) / 2**20,
    }


def main() -> None:
    import torch

    from steelyard.models.loading import LoadConfig, load_model
    from steelyard.profiling.generation import profile_generation
    from steelyard.profiling.generation_config import GenerationWorkload

    started = time.perf_counter()
    load_before = uptime()
    rows: list[dict[str, Any]] = []
    local: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = build(Path(tmp))
        handles = {name: load_model(str(path), LoadConfig(task="causal-lm")) for name, path in paths.items()}
        for name, handle in handles.items():
            for prompt in PROMPTS:
                report = profile_generation(handle, GenerationWorkload(prompt_len=prompt, new_tokens=NEW_TOKENS,
                                                                       batch_sizes=BATCHES, runs=2, warmup=1),
                                            [], measure=True)
                rows += [_row(name, prompt, m) for m in report.measured]
                if report.local_projection is not None and not local:
                    lp = report.local_projection
                    local = {"hardware": lp.hardware, "compute_efficiency": lp.compute_efficiency,
                             "memory_efficiency": lp.memory_efficiency}
                print(f"{name} prompt {prompt}: done at {time.perf_counter() - started:.0f} s", flush=True)
                write_json("generation", {"date": "2026-12-01", "partial": True, "load_before": load_before,
                                          "rows": rows, "seconds": time.perf_counter() - started})
        growth_report = profile_generation(
            handles["llama-106m"], GenerationWorkload(prompt_len=GROWTH["prompt_len"], new_tokens=GROWTH["new_tokens"],
                                                      batch_sizes=(GROWTH["batch"],), runs=2, warmup=0), [],
            measure=True)
        g = growth_report.measured[0]
        growth = {**GROWTH, "tpot_early_ms": 1e3 * float(g.tpot_early), "tpot_late_ms": 1e3 * float(g.tpot_late),
                  "tpot_median_ms": 1e3 * float(g.tpot_median),
                  "late_over_early": float(g.tpot_late) / float(g.tpot_early) if float(g.tpot_early) else None,
                  "counted_bytes_first_step_mib": float(growth_report.count.decode[0].cost.bytes_moved) / 2**20,
                  "counted_bytes_last_step_mib": float(growth_report.count.decode[-1].cost.bytes_moved) / 2**20,
                  "peak_memory_half_mib": float(g.peak_memory_half) / 2**20,
                  "peak_memory_mib": float(g.peak_memory) / 2**20}
    payload = {"date": "2026-12-01", "environment": {**environment(), "isa_flags": isa_flags(),
                                                     "torch_threads": torch.get_num_threads()},
               "load_before": load_before, "load_after": uptime(), "local_projection": local,
               "rows": rows, "context_growth": growth, "seconds": time.perf_counter() - started}
    path = write_json("generation", payload)
    print(markdown_table(
        ["model", "prompt", "batch", "TTFT ms", "projected", "ratio", "TPOT ms", "projected", "ratio",
         "TPOT early / late ms", "tok/s (B·N / e2e)", "decode tok/s", "B / TPOT"],
        [[r["model"], r["prompt_len"], r["batch"], f"{r['ttft_ms']:.1f}", f"{r['projected_ttft_ms']:.2f}",
          f"{r['ttft_ratio']:.1f}×", f"{r['tpot_ms']:.1f}", f"{r['projected_tpot_ms']:.2f}", f"{r['tpot_ratio']:.1f}×",
          f"{r['tpot_early_ms']:.1f} / {r['tpot_late_ms']:.1f}", f"{r['tokens_per_second']:.1f}",
          f"{r['decode_tokens_per_second']:.1f}", f"{r['batch_over_tpot']:.1f}"] for r in rows]))
    print(f"context growth: {growth}")
    print(f"load before: {load_before}\nload after: {payload['load_after']}")
    print(f"wrote {path} in {payload['seconds']:.0f} s")


if __name__ == "__main__":
    main()
