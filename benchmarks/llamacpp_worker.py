"""llama.cpp side of ``benchmarks/llm_peers.py``: quantize a GGUF, time greedy decode, score held-out tokens.

Runs under the Python of a separate environment that has llama-cpp-python (built from source here),
so it imports nothing from steelyard, torch or transformers: a JSON request comes on stdin, a JSON
result goes to stdout. The request names an F32 GGUF (from ``gguf_convert.py``), the quantization
types to make from it with llama.cpp's own ``llama_model_quantize``, and the token ids to use, so
the numbers are on exactly the ids the Hugging Face variants see.

Decode: a 16-token prompt, then exactly ``new_tokens`` greedy tokens (the prompt's eval gives the
first, ``new_tokens - 1`` one-token evals give the rest; no end-of-text stop), as the Hugging Face
``generate(min_new_tokens=N, max_new_tokens=N)`` does. Every round times each GGUF once, in the
same order (A B C ...); llama.cpp's own perf counters split prompt eval from decode.
Perplexity: each document in blocks of ``block`` tokens, a fresh KV cache per block, logits of
every position (``logits_all``), NLL of each next token, as ``llm_compression.doc_nll``.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np

FTYPES = {"F16": llama_cpp.LLAMA_FTYPE_MOSTLY_F16, "Q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
          "Q4_K_M": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M}  # fmt: skip


def quantize(src: Path, out: Path, kind: str, threads: int) -> float:
    """``llama_model_quantize(src -> out)`` to ``kind``; returns the seconds it took."""
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[kind]
    params.nthread = threads
    t0 = time.perf_counter()
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(out).encode(), params)
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize({kind}) returned {rc}")
    return time.perf_counter() - t0


def load(path: Path, threads: int, n_ctx: int, logits_all: bool) -> llama_cpp.Llama:
    return llama_cpp.Llama(model_path=str(path), n_threads=threads, n_threads_batch=threads, n_ctx=n_ctx,
                           n_batch=n_ctx, logits_all=logits_all, verbose=False)  # fmt: skip


def greedy(llm: llama_cpp.Llama, prompt: list[int], new: int) -> list[int]:
    """Exactly ``new`` greedy tokens after ``prompt`` (argmax of the last logits, no stop token)."""
    n_vocab = llm.n_vocab()
    llm.reset()
    llm.eval(prompt)
    out: list[int] = []
    while True:
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(n_vocab,))
        out.append(int(np.argmax(logits)))
        if len(out) == new:
            return out
        llm.eval([out[-1]])


def perf(llm: llama_cpp.Llama) -> dict[str, float]:
    data = llama_cpp.llama_perf_context(llm.ctx)
    return {"prompt_eval_ms": data.t_p_eval_ms, "prompt_tokens": data.n_p_eval, "decode_ms": data.t_eval_ms,
            "decode_tokens": data.n_eval}  # fmt: skip


def decode_speed(models: dict[str, llama_cpp.Llama], prompt: list[int], new: int, rounds: int,
                 warmup: int) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Round-robin timing of one greedy call per model per round; llama.cpp's counters from the last round."""
    samples: dict[str, list[float]] = {name: [] for name in models}
    counters: dict[str, list[dict[str, float]]] = {name: [] for name in models}
    for r in range(warmup + rounds):
        for name, llm in models.items():
            llama_cpp.llama_perf_context_reset(llm.ctx)
            t0 = time.perf_counter()
            tokens = greedy(llm, prompt, new)
            dt = time.perf_counter() - t0
            assert len(tokens) == new
            if r >= warmup:
                samples[name].append(dt)
                counters[name].append(perf(llm))
    out = {}
    for name, s in samples.items():
        med = statistics.median(s)
        decode = statistics.median(c["decode_ms"] / max(c["decode_tokens"], 1) for c in counters[name])
        prefill = statistics.median(c["prompt_eval_ms"] for c in counters[name])
        out[name] = {"tokens_per_s": new / med, "median_s": med, "samples_s": s, "tpot_ms": decode,
                     "prefill_ms": prefill, "decode_steps": counters[name][-1]["decode_tokens"],
                     "prompt_tokens": counters[name][-1]["prompt_tokens"]}  # fmt: skip
    return out


def doc_nll(llm: llama_cpp.Llama, docs: list[list[int]], block: int) -> tuple[list[float], list[int]]:
    nll, count = [], []
    for ids in docs:
        total, n = 0.0, 0
        for i in range(0, len(ids) - 1, block):
            x = ids[i : i + block]
            if len(x) < 2:
                continue
            llm.reset()
            llm.eval(x)
            logits = llm.scores[: len(x) - 1].astype(np.float64)
            top = logits.max(1, keepdims=True)
            lse = (top[:, 0] + np.log(np.exp(logits - top).sum(1)))
            total += float((lse - logits[np.arange(len(x) - 1), x[1:]]).sum())
            n += len(x) - 1
        nll.append(total)
        count.append(n)
    return nll, count


def main() -> None:
    req = json.loads(sys.stdin.read())
    threads, new = req["threads"], req["new_tokens"]
    f32 = Path(req["f32"])
    files = {"F32": f32}
    result: dict[str, Any] = {"llama_cpp_python": llama_cpp.__version__, "system_info":
                              llama_cpp.llama_print_system_info().decode(errors="replace").strip(), "quantize_s": {}}
    for kind in req["quantize"]:
        out = f32.with_name(f"{f32.stem.removesuffix('-f32')}-{kind}.gguf")
        result["quantize_s"][kind] = round(quantize(f32, out, kind, threads), 2)
        files[kind] = out
    result["files"] = {k: str(v) for k, v in files.items()}
    result["file_MiB"] = {k: v.stat().st_size / 2**20 for k, v in files.items()}
    prompt = req["prompt"]
    models = {k: load(v, threads, len(prompt) + new + 8, False) for k, v in files.items()}
    result["decode_batch1"] = decode_speed(models, prompt, new, req["rounds"], req["warmup"])
    result["greedy"] = {k: [greedy(llm, p, new) for p in req.get("agreement_prompts", [])] for k, llm in models.items()}
    del models
    if req.get("documents"):
        result["nll"] = {}
        for k, v in files.items():
            llm = load(v, threads, req["block"], True)
            nll, count = doc_nll(llm, req["documents"], req["block"])
            result["nll"][k] = {"nll": nll, "count": count}
            del llm
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
