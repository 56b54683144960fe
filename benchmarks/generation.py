"""Measured vs projected `local` TTFT / TPOT of real ``generate()`` on ~100M random-weight Llama and GPT-2.

Issue 13's CPU acceptance: TTFT grows with the prompt, TPOT with the context and the batch, tokens/s
equals new tokens / decode time, and the roofline projection for this machine (`local`, its measured
peak FLOP/s and bandwidth at the default 60% / 70% efficiencies) is printed beside each measurement
with their ratio. Random weights are fine for timing: greedy decoding of exactly ``new_tokens``
tokens with the model's own cache runs the same kernels whatever the values.

The machine is shared and noisy, so the grid is run **round-robin**: each round times one
``generate()`` of every configuration (steelyard's own ``generate_once`` / ``summarize``, the code
behind ``steelyard profile --new-tokens``), and the statistics pool the rounds. Load that comes and
goes then hits every configuration alike, and the orderings the acceptance asks about are read from
one run.

Grid: Llama (8 layers, hidden 768, 32k vocabulary, ~106M parameters) and GPT-2 small (124M), fp32,
prompt 32 and 512, batch 1 and 4, 32 new tokens, 1 warm-up + 5 rounds. A second round-robin (Llama,
batch 1 and 4, prompt 16, 384 new tokens, 3 rounds) shows TPOT growing with the context: the median
of the first quarter of decode steps vs the last quarter, beside the counted bytes of those steps.

    .venv/bin/python benchmarks/generation.py

Prints markdown tables and writes benchmarks/results/generation.json.
"""

from __future__ import annotations

import itertools
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import environment, isa_flags, markdown_table, write_json

PROMPTS, BATCHES, NEW_TOKENS, ROUNDS = (32, 512), (1, 4), 32, 5
GROWTH = {"prompt_len": 16, "new_tokens": 384, "batches": (1, 4), "rounds": 3}


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


def round_robin(cases: list[dict[str, Any]], rounds: int) -> None:
    """Time one ``generate()`` of every case per round (after one warm-up each); stamps kept per case."""
    from steelyard.profiling.generation_measure import StepClock, generate_once

    for case in cases:
        case["clock"] = StepClock(case["handle"].device)
        generate_once(case["handle"], case["inputs"], max(1, case["new_tokens"] // 2), case["clock"])
        case["runs"] = []
    for r in range(rounds):
        for case in cases:
            case["runs"].append(generate_once(case["handle"], case["inputs"], case["new_tokens"], case["clock"]))
        print(f"round {r + 1}/{rounds} done", flush=True)


def projection(handle: Any, prompt: int, new_tokens: int, batch: int, local: Any) -> Any:
    from steelyard.profiling.generation import profile_generation
    from steelyard.profiling.generation_config import GenerationWorkload

    report = profile_generation(handle, GenerationWorkload(prompt_len=prompt, new_tokens=new_tokens,
                                                           batch_sizes=(batch,)), [local], measure=False)
    return report, report.on(local.name).batches[0]


def main() -> None:
    import torch

    from steelyard.hardware.local import detect_local
    from steelyard.models.loading import LoadConfig, load_model
    from steelyard.profiling.generation_measure import prompt as make_prompt
    from steelyard.profiling.generation_measure import summarize

    started = time.perf_counter()
    load_before = uptime()
    local = detect_local(measure=True)
    with tempfile.TemporaryDirectory() as tmp:
        paths = build(Path(tmp))
        handles = {name: load_model(str(path), LoadConfig(task="causal-lm")) for name, path in paths.items()}
        for handle in handles.values():
            handle.module.eval()
        cases = [{"model": name, "handle": handle, "prompt_len": p, "batch": b, "new_tokens": NEW_TOKENS,
                  "inputs": make_prompt(handle, b, p)}
                 for name, handle in handles.items() for p in PROMPTS for b in BATCHES]
        round_robin(cases, ROUNDS)
        rows = []
        for c in cases:
            m = summarize(c["batch"], NEW_TOKENS, c["runs"], "perf_counter", 0.0, 0.0, "n/a")
            _, proj = projection(c["handle"], c["prompt_len"], NEW_TOKENS, c["batch"], local)
            gaps = [b - a for run in c["runs"] for a, b in itertools.pairwise(run[:NEW_TOKENS])]
            rows.append({
                "model": c["model"], "prompt_len": c["prompt_len"], "batch": c["batch"], "new_tokens": NEW_TOKENS,
                "rounds": ROUNDS, "ttft_ms": 1e3 * float(m.ttft_median), "tpot_ms": 1e3 * float(m.tpot_median),
                "tpot_mean_ms": 1e3 * statistics.fmean(gaps), "tpot_p90_ms": 1e3 * float(m.tpot_p90),
                "e2e_ms": 1e3 * float(m.e2e_median), "decode_ms": 1e3 * float(m.decode_median),
                "tokens_per_second": m.tokens_per_second,
                # decode throughput two ways: the decode steps over the decode time, and the batch over the mean gap
                "decode_tokens_per_second": c["batch"] * (NEW_TOKENS - 1) / float(m.decode_median),
                "batch_over_mean_tpot": c["batch"] / statistics.fmean(gaps),
                "batch_over_median_tpot": c["batch"] / float(m.tpot_median),
                "ttft_cv": statistics.pstdev([r[0] for r in c["runs"]]) / statistics.fmean([r[0] for r in c["runs"]]),
                "projected_ttft_ms": 1e3 * float(proj.ttft), "projected_tpot_ms": 1e3 * float(proj.tpot),
                "ttft_ratio": float(m.ttft_median) / float(proj.ttft),
                "tpot_ratio": float(m.tpot_median) / float(proj.tpot),
            })
        growth_cases = [{"model": "llama-106m", "handle": handles["llama-106m"], "batch": b,
                         "prompt_len": GROWTH["prompt_len"], "new_tokens": GROWTH["new_tokens"],
                         "inputs": make_prompt(handles["llama-106m"], b, GROWTH["prompt_len"])}
                        for b in GROWTH["batches"]]
        round_robin(growth_cases, GROWTH["rounds"])
        growth = []
        for c in growth_cases:
            m = summarize(c["batch"], GROWTH["new_tokens"], c["runs"], "perf_counter", 0.0, 0.0, "n/a")
            report, proj = projection(c["handle"], GROWTH["prompt_len"], GROWTH["new_tokens"], c["batch"], local)
            growth.append({"batch": c["batch"], "prompt_len": GROWTH["prompt_len"], "new_tokens": GROWTH["new_tokens"],
                           "rounds": GROWTH["rounds"], "tpot_early_ms": 1e3 * float(m.tpot_early),
                           "tpot_late_ms": 1e3 * float(m.tpot_late),
                           "late_over_early": float(m.tpot_late) / float(m.tpot_early),
                           "projected_tpot_first_ms": 1e3 * float(proj.tpot_first),
                           "projected_tpot_last_ms": 1e3 * float(proj.tpot_last),
                           "counted_bytes_first_step_mib": float(report.count.decode[0].cost.bytes_moved) / 2**20,
                           "counted_bytes_last_step_mib": float(report.count.decode[-1].cost.bytes_moved) / 2**20})
    payload = {"date": time.strftime("%Y-%m-%d"), "environment": {**environment(), "isa_flags": isa_flags(),
                                                                 "torch_threads": torch.get_num_threads()},
               "load_before": load_before, "load_after": uptime(),
               "local_projection": {"hardware": local.name, "peak_flops": float(local.peak_flops.get("float32", 0)),
                                    "memory_bandwidth": float(local.memory_bandwidth),
                                    "compute_efficiency": 0.6, "memory_efficiency": 0.7},
               "rows": rows, "context_growth": growth, "seconds": time.perf_counter() - started}
    path = write_json("generation", payload)
    print(markdown_table(
        ["model", "prompt", "batch", "TTFT ms", "projected", "ratio", "TPOT ms", "projected", "ratio",
         "tok/s (B·N / e2e)", "decode tok/s", "B / median TPOT"],
        [[r["model"], r["prompt_len"], r["batch"], f"{r['ttft_ms']:.1f}", f"{r['projected_ttft_ms']:.1f}",
          f"{r['ttft_ratio']:.1f}×", f"{r['tpot_ms']:.1f}", f"{r['projected_tpot_ms']:.1f}", f"{r['tpot_ratio']:.1f}×",
          f"{r['tokens_per_second']:.1f}", f"{r['decode_tokens_per_second']:.1f}",
          f"{r['batch'] / (r['tpot_ms'] / 1e3):.1f}"] for r in rows]))
    print(markdown_table(
        ["batch", "TPOT first quarter ms", "last quarter ms", "late / early", "projected first / last ms",
         "counted bytes first / last step MiB"],
        [[g["batch"], f"{g['tpot_early_ms']:.1f}", f"{g['tpot_late_ms']:.1f}", f"{g['late_over_early']:.2f}",
          f"{g['projected_tpot_first_ms']:.1f} / {g['projected_tpot_last_ms']:.1f}",
          f"{g['counted_bytes_first_step_mib']:.0f} / {g['counted_bytes_last_step_mib']:.0f}"] for g in growth]))
    print(f"local: {payload['local_projection']}")
    print(f"load before: {load_before}\nload after: {payload['load_after']}")
    print(f"wrote {path} in {payload['seconds']:.0f} s")


if __name__ == "__main__":
    main()
