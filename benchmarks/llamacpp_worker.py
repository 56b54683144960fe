"""llama.cpp side of ``benchmarks/llm_peers.py``: quantize a GGUF, time greedy decode, score held-out tokens.

Runs under the Python of a separate environment holding llama-cpp-py-sync (prebuilt CFFI ABI-mode
bindings of llama.cpp's C API, with llama.cpp's own CPU libraries; set up by ``llamacpp_env.py``), or
llama-cpp-python where that is built (its ctypes functions have the same ``llama.h`` names; it is tried
first; that path was not run here, where its source build never finished),
so it imports nothing from steelyard, torch or transformers: a JSON request comes on stdin, a JSON
result goes to stdout. The request names an F32 GGUF (from ``gguf_convert.py``), the quantization
types to make from it with llama.cpp's own ``llama_model_quantize``, and the token ids to use, so
the numbers are on exactly the ids the Hugging Face variants see. Everything goes through ``llama.h``
itself (``llama_decode`` on a ``llama_batch``, ``llama_get_logits``, ``llama_perf_context``,
``llama_memory_clear``), not through the binding's high-level ``Llama`` class, so no sampler, chat
template or tokenizer sits between the ids and the logits.

Decode: a 16-token prompt, then exactly ``new_tokens`` greedy tokens (the prompt's eval gives the
first, ``new_tokens - 1`` one-token evals give the rest; no end-of-text stop), as the Hugging Face
``generate(min_new_tokens=N, max_new_tokens=N)`` does. Every round times each GGUF once, in the
same order (A B C ...); llama.cpp's own perf counters split prompt eval from decode.
Perplexity: each document in blocks of ``block`` tokens, the KV cache cleared before each block,
logits of every position of the block, NLL of each next token, as ``llm_compression.doc_nll``.
The KV cache has llama.cpp's default type (F16) unless the request says ``"kv_type": "F32"``.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

try:  # llama-cpp-python where it is built: ctypes functions under llama.h's own names
    import ctypes

    import llama_cpp as lib

    BINDING = {"binding": f"llama-cpp-python {lib.__version__}", "llama_cpp_commit": "vendored in that release"}
    NULL = None

    def cstr(p: Any) -> str:
        return (p or b"").decode(errors="replace")

    def floats(p: Any, n: int) -> np.ndarray:
        return np.ctypeslib.as_array(p, shape=(n,))

    def pointer_to(struct: Any) -> Any:
        return ctypes.byref(struct)

    def log_callback(fn: Any) -> Any:
        return lib.llama_log_callback(fn)

except ImportError:  # llama-cpp-py-sync: the prebuilt libraries behind CFFI (ABI mode) bindings of llama.h
    import llama_cpp_py_sync
    from llama_cpp_py_sync._cffi_bindings import get_ffi, get_lib

    ffi, lib = get_ffi(), get_lib()
    NULL = ffi.NULL
    BINDING = {"binding": f"llama-cpp-py-sync {llama_cpp_py_sync.__version__}",
               "llama_cpp_commit": llama_cpp_py_sync.__llama_cpp_commit__,
               "llama_cpp_build": llama_cpp_py_sync.__llama_cpp_tag__}  # fmt: skip

    def cstr(p: Any) -> str:
        return ffi.string(p).decode(errors="replace") if p else ""

    def floats(p: Any, n: int) -> np.ndarray:
        return np.frombuffer(ffi.buffer(p, n * 4), dtype=np.float32)

    def pointer_to(struct: Any) -> Any:
        return ffi.new(f"{ffi.typeof(struct).cname} *", struct)

    def log_callback(fn: Any) -> Any:
        return ffi.callback("void(enum ggml_log_level, const char *, void *)", fn)


FTYPES = {"F16": lib.LLAMA_FTYPE_MOSTLY_F16, "Q8_0": lib.LLAMA_FTYPE_MOSTLY_Q8_0,
          "Q4_K_M": lib.LLAMA_FTYPE_MOSTLY_Q4_K_M}  # fmt: skip
KV_TYPES = {"F32": 0, "F16": 1}  # enum ggml_type
GGML_LOG_LEVEL_WARN = 3


def _log(level: int, text: Any, _user: Any) -> None:
    """llama.cpp's warnings and errors to stderr, its info chatter (every tensor it loads) dropped."""
    if level >= GGML_LOG_LEVEL_WARN and level != 5:  # 5: GGML_LOG_LEVEL_CONT, a continuation of any level
        sys.stderr.write(cstr(text))


LOG = log_callback(_log)  # kept alive: llama.cpp calls it for the life of the process


def quantize(src: Path, out: Path, kind: str, threads: int) -> float:
    """``llama_model_quantize(src -> out)`` to ``kind``; returns the seconds it took."""
    params = lib.llama_model_quantize_default_params()
    params.ftype = FTYPES[kind]
    params.nthread = threads
    t0 = time.perf_counter()
    rc = lib.llama_model_quantize(str(src).encode(), str(out).encode(), pointer_to(params))
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize({kind}) returned {rc}")
    return time.perf_counter() - t0


class Session:
    """One GGUF model and one context of ``n_ctx`` tokens on the CPU, fed exact token ids."""

    def __init__(self, path: Path, threads: int, n_ctx: int, kv_type: str = "F16") -> None:
        mparams = lib.llama_model_default_params()
        mparams.n_gpu_layers = 0
        self.model = lib.llama_model_load_from_file(str(path).encode(), mparams)
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {path}")
        cparams = lib.llama_context_default_params()
        cparams.n_ctx = cparams.n_batch = cparams.n_ubatch = n_ctx
        for field in ("n_outputs_max", "n_outputs_max_per_seq"):  # newer llama.h: logits of every position when asked
            if hasattr(cparams, field):
                setattr(cparams, field, n_ctx)
        cparams.n_threads = cparams.n_threads_batch = threads
        cparams.type_k = cparams.type_v = KV_TYPES[kv_type]
        cparams.no_perf = False
        self.ctx = lib.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            raise RuntimeError(f"llama.cpp could not make a context for {path}")
        self.n_vocab = lib.llama_vocab_n_tokens(lib.llama_model_get_vocab(self.model))
        self.n_ctx = n_ctx
        self.batch = lib.llama_batch_init(n_ctx, 0, 1)
        self.pos = 0

    def reset(self) -> None:
        """Empty the KV cache: the next ``eval`` starts at position 0."""
        lib.llama_memory_clear(lib.llama_get_memory(self.ctx), True)
        self.pos = 0

    def eval(self, tokens: list[int], all_logits: bool = False) -> np.ndarray:
        """``llama_decode`` of ``tokens`` after what the cache holds; logits (rows: every position or the last)."""
        if self.pos + len(tokens) > self.n_ctx:
            raise ValueError(f"{self.pos + len(tokens)} tokens exceed the context of {self.n_ctx}")
        b = self.batch
        b.n_tokens = len(tokens)
        for i, t in enumerate(tokens):
            b.token[i] = t
            b.pos[i] = self.pos + i
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = 0
            b.logits[i] = all_logits or i == len(tokens) - 1
        rc = lib.llama_decode(self.ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")
        self.pos += len(tokens)
        rows = len(tokens) if all_logits else 1
        return floats(lib.llama_get_logits(self.ctx), rows * self.n_vocab).reshape(rows, self.n_vocab).copy()

    def perf(self) -> dict[str, float]:
        data = lib.llama_perf_context(self.ctx)
        return {"prompt_eval_ms": data.t_p_eval_ms, "prompt_tokens": data.n_p_eval, "decode_ms": data.t_eval_ms,
                "decode_tokens": data.n_eval}  # fmt: skip

    def perf_reset(self) -> None:
        lib.llama_perf_context_reset(self.ctx)

    def close(self) -> None:
        lib.llama_batch_free(self.batch)
        lib.llama_free(self.ctx)
        lib.llama_model_free(self.model)


def greedy(llm: Session, prompt: list[int], new: int, suppress: tuple[int, ...] = ()) -> list[int]:
    """Exactly ``new`` greedy tokens after ``prompt`` (argmax of the last logits, no stop token).

    ``suppress`` (the end-of-text ids) never win, as under Hugging Face's ``min_new_tokens``.
    """
    llm.reset()
    logits = llm.eval(prompt)
    out: list[int] = []
    while True:
        logits[-1, list(suppress)] = -np.inf
        out.append(int(np.argmax(logits[-1])))
        if len(out) == new:
            return out
        logits = llm.eval([out[-1]])


def decode_speed(models: dict[str, Session], prompt: list[int], new: int, rounds: int, warmup: int,
                 suppress: tuple[int, ...]) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Round-robin timing of one greedy call per model per round; llama.cpp's counters from every timed round."""
    samples: dict[str, list[float]] = {name: [] for name in models}
    counters: dict[str, list[dict[str, float]]] = {name: [] for name in models}
    for r in range(warmup + rounds):
        for name, llm in models.items():
            llm.perf_reset()
            t0 = time.perf_counter()
            tokens = greedy(llm, prompt, new, suppress)
            dt = time.perf_counter() - t0
            assert len(tokens) == new
            if r >= warmup:
                samples[name].append(dt)
                counters[name].append(llm.perf())
    out = {}
    for name, s in samples.items():
        med = statistics.median(s)
        decode = statistics.median(c["decode_ms"] / max(c["decode_tokens"], 1) for c in counters[name])
        prefill = statistics.median(c["prompt_eval_ms"] for c in counters[name])
        out[name] = {"tokens_per_s": new / med, "median_s": med, "samples_s": s, "tpot_ms": decode,
                     "prefill_ms": prefill, "decode_steps": counters[name][-1]["decode_tokens"],
                     "prompt_tokens": counters[name][-1]["prompt_tokens"]}  # fmt: skip
    return out


def doc_nll(llm: Session, docs: list[list[int]], block: int) -> tuple[list[float], list[int]]:
    """Summed next-token NLL (nats) and token count per document, blocks of ``block`` tokens, fresh cache each."""
    nll, count = [], []
    for ids in docs:
        total, n = 0.0, 0
        for i in range(0, len(ids) - 1, block):
            x = ids[i : i + block]
            if len(x) < 2:
                continue
            llm.reset()
            logits = llm.eval(x, all_logits=True)[: len(x) - 1].astype(np.float64)
            top = logits.max(1, keepdims=True)
            lse = top[:, 0] + np.log(np.exp(logits - top).sum(1))
            total += float((lse - logits[np.arange(len(x) - 1), x[1:]]).sum())
            n += len(x) - 1
        nll.append(total)
        count.append(n)
    return nll, count


def main() -> None:
    req = json.loads(sys.stdin.read())
    lib.llama_log_set(LOG, NULL)
    lib.llama_backend_init()
    threads, new, kv = req["threads"], req["new_tokens"], req.get("kv_type", "F16")
    suppress = tuple(req.get("suppress_tokens", ()))
    f32 = Path(req["f32"])
    files = {"F32": f32}
    result: dict[str, Any] = BINDING | {"kv_type": kv, "system_info": cstr(lib.llama_print_system_info()).strip(),
                                        "quantize_s": {}}  # fmt: skip
    for kind in req["quantize"]:
        out = f32.with_name(f"{f32.stem.removesuffix('-f32')}-{kind}.gguf")
        result["quantize_s"][kind] = round(quantize(f32, out, kind, threads), 2)
        files[kind] = out
    result["files"] = {k: str(v) for k, v in files.items()}
    result["file_MiB"] = {k: v.stat().st_size / 2**20 for k, v in files.items()}
    prompt = req["prompt"]
    agreement = req.get("agreement_prompts", [])
    n_ctx = max([len(prompt)] + [len(p) for p in agreement]) + new + 8
    models = {k: Session(v, threads, n_ctx, kv) for k, v in files.items()}
    result["decode_batch1"] = decode_speed(models, prompt, new, req["rounds"], req["warmup"], suppress)
    result["greedy"] = {k: [greedy(llm, p, new, suppress) for p in agreement] for k, llm in models.items()}
    for llm in models.values():
        llm.close()
    if req.get("documents"):
        result["nll"] = {}
        for k, v in files.items():
            llm = Session(v, threads, req["block"], kv)
            nll, count = doc_nll(llm, req["documents"], req["block"])
            result["nll"][k] = {"nll": nll, "count": count}
            llm.close()
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
