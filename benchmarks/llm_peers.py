"""Peers on the same models in one run: torchao, optimum-quanto, HQQ and llama.cpp beside steelyard's own.

Issue 14 asks how steelyard's weight-only int8 / int4 compare with what maintained libraries do on
this CPU. On (a) the small Llama trained on BBC News by ``train_small_llm.py`` and (b) a random-weight
Llama of ~0.4 B parameters (speed only: timing does not depend on the weight values), this measures
decode tokens/s at batch 1 (16-token prompt, exactly 32 greedy tokens), the bytes the weights take,
perplexity on the held-out BBC documents (bootstrap CI over documents; trained model only), greedy
agreement with float32 and, per variant, which kernel ran (the top ops of one profiled forward).

- steelyard: float32, bfloat16, ``WeightOnlyConfig`` int8 / int4 g32 / int4 g128, W8A8 (SmoothQuant),
  via ``llm_compression.variants``;
- torchao (``quantize_`` with its own configs): ``Int8WeightOnlyConfig``, ``Int8DynamicActivationInt8WeightConfig``,
  ``Int4WeightOnlyConfig`` in every packing format 0.18 has (each that fails is recorded with its error),
  and ``IntxWeightOnlyConfig(int4, group 32)``, the int4 that does run on x86;
- optimum-quanto ``quantize`` + ``freeze``: qint8 and qint4 weights;
- HQQ (``AutoHQQHFModel.quantize_model``): 8 and 4 bits, group 64, where the ``hqq`` package imports;
- llama.cpp (llama.cpp's own CPU libraries through the llama-cpp-py-sync bindings): the same HF folder
  converted with llama.cpp's ``convert_hf_to_gguf.py`` (``gguf_convert.py``) to F32, then
  ``llama_model_quantize`` to F16, Q8_0 and Q4_K_M, timed and scored in its own process
  (``llamacpp_worker.py``) right after the torch variants: **not interleaved** with them. The F32 GGUF's
  greedy agreement with the HF float32 model and its NLL ratio (``conversion_check``) show that the
  conversion is faithful, so the quantized GGUFs' numbers are about llama.cpp's quantization alone.

torchao and quanto quantize the same layers as steelyard's default (every Linear, ``lm_head`` included;
steelyard also stores the token embedding as int8 rows, which the peers keep float); llama.cpp keeps
its own rules (Q4_K_M stores ``output.weight`` as Q6_K, falls back to other types for rows not a
multiple of 256; the tensor types are recorded). llama.cpp's thread pool spins at every op's barrier, so on
cores shared with other work its decode collapses (measured here for a 2-layer random model while another
process kept ~1.6 of the 2 cores busy: 2.2 tokens/s on 2 threads, 17 on 1): its ``other_work_during`` must
be near 0 for its numbers to count. All torch variants are timed with ``time_interleaved`` (A B A B ...
in one process); a variant whose single call would take more than ``--max-call-s`` is timed once,
outside the rounds, and flagged.

    python benchmarks/llm_peers.py --threads 2 --hqq-path HQQ_SOURCE   # est. 50-80 min on 2 quiet cores
    # (llama.cpp's share: ~1-2 min on the trained model, ~4-6 on the random one, conversion included);
    # with --big-layers 0 --documents 10 --rounds 3 --max-call-s 10: 8 min here (BENCHMARKS §11b);
    # with --big-layers 2 --documents 2 --rounds 1 --max-call-s 5 (a smoke run of every part): 11 min on busy cores

llama.cpp needs a separate environment (``--llamacpp-python``): a plain venv holding the prebuilt
llama-cpp-py-sync 0.11739 wheel (llama.cpp commit 0ce8cd11, CPU libraries with AVX2/FMA/F16C code);
``llamacpp_env.py`` creates it and makes its libraries load on glibc < 2.38 (see that script):
    python3 benchmarks/llamacpp_env.py /work/wt/llamacpp-venv   # or --wheel llama_cpp_py_sync-0.11739-*.whl
and llama.cpp's converter, which no wheel ships (``--llamacpp-src``), from the llama-cpp-python sdist:
    pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 && tar xzf llama_cpp_python-0.3.36.tar.gz
    mkdir -p SRC && cp -r llama_cpp_python-0.3.36/vendor/llama.cpp/{convert_hf_to_gguf.py,conversion,gguf-py} SRC/
HQQ is pure Python: its sdist's ``hqq/`` folder plus ``einops`` and ``termcolor`` in one folder (``--hqq-path``).
Without either, the JSON says why and the rest still runs.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common
import torch
from llm_compression import decode_speed, doc_nll, greedy, perplexity_ci, random_llama, variants
from train_small_llm import OUT, bbc_documents, split

HERE = Path(__file__).resolve().parent
LLAMACPP_PYTHON = Path(os.environ.get("LLAMACPP_PYTHON", "/work/wt/llamacpp-venv/bin/python"))
LLAMACPP_SRC = Path(os.environ.get("LLAMACPP_SRC", "/work/wt/llamacpp-src"))
LLAMACPP_STEPS = ("python3 benchmarks/llamacpp_env.py VENV (a plain venv with the prebuilt llama-cpp-py-sync==0.11739 "
                  "wheel); converter: vendor/llama.cpp of the llama-cpp-python 0.3.36 sdist")  # fmt: skip


def decoder_linear(module: torch.nn.Module, fqn: str) -> bool:
    """The layers steelyard's weight-only configs quantize by default: every Linear, the output head included
    (its embedding table, int8 rows in steelyard, stays float in the peers: their configs cover Linear layers)."""
    return isinstance(module, torch.nn.Linear)


def stored_bytes(model: torch.nn.Module) -> int:
    """Bytes of every parameter and buffer as stored, tensor subclasses (torchao, quanto) by their inner tensors.

    One rule for every library, so sizes compare; a tensor shared by two names counts once.
    """

    def nbytes(t: torch.Tensor) -> int:
        if hasattr(t, "__tensor_flatten__") and type(t) is not torch.Tensor and type(t) is not torch.nn.Parameter:
            names, _ = t.__tensor_flatten__()
            return sum(nbytes(getattr(t, n)) for n in names if isinstance(getattr(t, n), torch.Tensor))
        return t.numel() * t.element_size()

    seen: set[int] = set()
    total = 0
    tensors = [t for _, t in model.named_parameters()] + [t for _, t in model.named_buffers()]
    for mod in model.modules():  # HQQ keeps its codes as plain attributes, not parameters
        tensors += [v for k, v in vars(mod).items() if k == "W_q" and isinstance(v, torch.Tensor)]
        meta = getattr(mod, "meta", None)
        if isinstance(meta, dict):
            tensors += [v for v in meta.values() if isinstance(v, torch.Tensor)]
    for t in tensors:
        key = id(t)
        if key not in seen:
            seen.add(key)
            total += nbytes(t)
    return total


def top_ops(model: torch.nn.Module, ids: torch.Tensor, n: int = 5) -> list[str]:
    """The ops that took the most self CPU time in one forward: the kernel that actually ran."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof, torch.inference_mode():
        model(input_ids=ids)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    skip = ("aten::empty", "aten::as_strided", "aten::view", "aten::detach")
    return [e.key for e in events if not e.key.startswith(skip)][:n]


def outside_inference_mode(model: torch.nn.Module, cls: type) -> torch.nn.Module:
    """Run each ``cls`` layer's forward with inference mode off (no_grad kept).

    optimum-quanto's int4 weights raise "Cannot set version_counter for inference tensor" under
    ``torch.inference_mode`` (their ``t()`` makes a view subclass), which ``doc_nll`` and ``greedy`` use.
    """
    for mod in model.modules():
        if isinstance(mod, cls):

            @functools.wraps(mod.forward)
            def forward(*a: Any, _f: Callable = mod.forward, **k: Any) -> Any:
                with torch.inference_mode(False), torch.no_grad():
                    return _f(*a, **k)

            mod.forward = forward
    return model


def torchao_variants(model: torch.nn.Module) -> tuple[dict[str, torch.nn.Module], dict[str, str]]:
    """torchao's configs through ``quantize_``; the ones that do not run on this CPU come back as errors."""
    from torchao.quantization import (
        Int4WeightOnlyConfig,
        Int8DynamicActivationInt8WeightConfig,
        Int8WeightOnlyConfig,
        IntxWeightOnlyConfig,
        quantize_,
    )
    from torchao.quantization.granularity import PerGroup

    configs: dict[str, tuple[Any, torch.dtype]] = {
        "torchao int8 weight-only": (Int8WeightOnlyConfig(), torch.float32),
        "torchao int8 dyn-act int8 weight": (Int8DynamicActivationInt8WeightConfig(), torch.float32),
    }
    for fmt in ("tile_packed_to_4d", "plain", "plain_int32", "preshuffled"):
        configs[f"torchao int4 weight-only ({fmt})"] = (Int4WeightOnlyConfig(group_size=128, int4_packing_format=fmt),
                                                        torch.bfloat16)  # fmt: skip
    intx4 = IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(32))
    configs["torchao intx int4 weight-only g32"] = (intx4, torch.float32)
    out, failed = {}, {}
    probe = torch.tensor([[3, 4, 5, 6]])
    for name, (cfg, dtype) in configs.items():
        m = copy.deepcopy(model).to(dtype)
        try:
            quantize_(m, cfg, filter_fn=decoder_linear)
            with torch.inference_mode():
                m(input_ids=probe)
            out[name] = m
        except Exception as exc:  # a config without a kernel for this CPU: recorded, not fatal
            failed[name] = _common.short_error(exc, 240)
    return out, failed


def quanto_variants(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    from optimum.quanto import QLinear, freeze, qint4, qint8, quantize

    out = {}
    for name, w in (("quanto qint8", qint8), ("quanto qint4", qint4)):
        m = copy.deepcopy(model)
        quantize(m, weights=w)
        freeze(m)
        out[name] = outside_inference_mode(m, QLinear)
    return out


def hqq_variants(model: torch.nn.Module, hqq_path: str | None) -> tuple[dict[str, torch.nn.Module], str | None]:
    """HQQ's own HF patcher at 8 and 4 bits (group 64), or why it could not run."""
    if hqq_path:
        sys.path.insert(0, hqq_path)
    try:
        from hqq.core.quantize import BaseQuantizeConfig, HQQBackend, HQQLinear
        from hqq.models.hf.base import AutoHQQHFModel
    except ImportError as exc:
        return {}, f"hqq not importable ({_common.short_error(exc)}): pip install hqq (pure Python; einops, termcolor)"
    HQQLinear.set_backend(HQQBackend.PYTORCH)
    out = {}
    for bits in (8, 4):
        m = copy.deepcopy(model)
        AutoHQQHFModel.quantize_model(m, quant_config=BaseQuantizeConfig(nbits=bits, group_size=64),
                                      compute_dtype=torch.float32, device="cpu")  # fmt: skip
        out[f"hqq {bits}-bit g64"] = m.eval()
    return out, None


def peer_models(model: torch.nn.Module, calib: list[dict], hqq_path: str | None) -> tuple[dict, dict]:
    """steelyard's variants, then every peer's, in one dict (float32 first: the baseline)."""
    models = variants(model, calib)
    ao, failed = torchao_variants(model)
    models |= ao
    models |= quanto_variants(model)
    hqq, why = hqq_variants(model, hqq_path)
    models |= hqq
    if why:
        failed["hqq"] = why
    return models, failed


def library(name: str) -> str:
    for lib in ("torchao", "quanto", "hqq"):
        if name.startswith(lib):
            return lib
    return "steelyard"


def decode_prompt(vocab: int, n: int) -> torch.Tensor:
    """The prompt ``llm_compression.decode_speed`` draws at batch 1 (seed 1), so llama.cpp decodes the same ids."""
    return torch.randint(3, vocab, (1, n), generator=torch.Generator().manual_seed(1))


def time_torch_side(models: dict[str, torch.nn.Module], vocab: int, args: argparse.Namespace) -> dict[str, dict]:
    """Interleaved decode timing of every variant whose one call fits ``--max-call-s``; the rest timed once."""
    ids = decode_prompt(vocab, args.prompt)
    single: dict[str, float] = {}
    for name, m in models.items():  # also the first warm-up of every variant
        t0 = time.perf_counter()
        greedy(m, ids, args.new_tokens)
        single[name] = time.perf_counter() - t0
    fast = {n: m for n, m in models.items() if single[n] <= args.max_call_s or n == "float32"}
    out = decode_speed(fast, vocab, 1, args.prompt, args.new_tokens, args.rounds, args.threads)
    for name in models:
        if name not in fast:
            why = f"once, not interleaved: one call took {single[name]:.1f} s > --max-call-s"
            out[name] = {"tokens_per_s": args.new_tokens / single[name], "median_s": single[name], "timed": why,
                         "speedup_vs_float32_median": out["float32"]["median_s"] / single[name]}
        else:
            out[name]["timed"] = f"interleaved, {args.rounds} rounds"
    return out


def llama_cpp_side(folder: Path, work: Path, args: argparse.Namespace, prompt: list[int], agreement: list[list[int]],
                   documents: list[list[int]], suppress: list[int]) -> dict[str, Any]:  # fmt: skip
    """Convert ``folder`` to GGUF, quantize, time and score in the llama.cpp environment (own process).

    ``suppress``: the end-of-text ids, which llama.cpp's greedy never picks, as HF's ``min_new_tokens`` does.
    """
    python, src = Path(args.llamacpp_python), Path(args.llamacpp_src)
    if not python.exists():
        return {"status": f"llama.cpp: not installed (no {python}; build steps: {LLAMACPP_STEPS})"}
    if not (src / "convert_hf_to_gguf.py").is_file():
        return {"status": f"llama.cpp: converter missing (no {src}/convert_hf_to_gguf.py; {LLAMACPP_STEPS})"}
    f32 = work / f"{folder.name}-f32.gguf"
    t0 = time.perf_counter()
    conv = subprocess.run([sys.executable, str(HERE / "gguf_convert.py"), str(src), str(folder), str(f32),
                           "--outtype", "f32"], capture_output=True, text=True)  # fmt: skip
    if conv.returncode:
        return {"status": "llama.cpp: conversion failed", "error": conv.stderr.strip().splitlines()[-3:]}
    convert_s = time.perf_counter() - t0
    request = {"f32": str(f32), "quantize": ["F16", "Q8_0", "Q4_K_M"], "threads": args.threads,
               "new_tokens": args.new_tokens, "rounds": args.rounds, "warmup": 1, "prompt": prompt,
               "agreement_prompts": agreement, "documents": documents, "block": args.block,
               "suppress_tokens": suppress}  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["OMP_NUM_THREADS"] = str(args.threads)
    quiet = _common.wait_for_quiet()
    t0 = time.perf_counter()
    with _common.OtherWork() as other:  # llama.cpp's spinning thread pool slows down sharply on busy cores
        run = subprocess.run([str(python), str(HERE / "llamacpp_worker.py")], input=json.dumps(request),
                             capture_output=True, text=True, env=env)  # fmt: skip
    if run.returncode:
        glibc = "GLIBC_" in run.stderr
        hint = " (libraries built for a newer glibc: run llamacpp_env.py on that venv)" if glibc else ""
        return {"status": f"llama.cpp: worker failed{hint}", "error": run.stderr.strip().splitlines()[-5:]}
    out = json.loads(run.stdout)
    out["status"] = "ran (own process, after the torch variants: not interleaved with them)"
    out["convert_s"] = round(convert_s, 1)
    out["worker_s"] = round(time.perf_counter() - t0, 1)
    out["quiet_before"], out["other_work_during"] = quiet, round(other.share, 3)
    out["tensor_types"] = {k: gguf_tensor_types(Path(p)) for k, p in out["files"].items()}
    return out


def gguf_tensor_types(path: Path) -> dict[str, int]:
    """How many tensors of each ggml type a GGUF file holds (Q4_K_M mixes Q4_K, Q6_K and fallbacks)."""
    from gguf import GGUFReader

    counts: dict[str, int] = {}
    for t in GGUFReader(str(path)).tensors:
        counts[t.tensor_type.name] = counts.get(t.tensor_type.name, 0) + 1
    return counts


def measure(label: str, model: torch.nn.Module, folder: Path, args: argparse.Namespace, *,
            held_ids: list[torch.Tensor] | None, calib: list[dict], work: Path) -> dict[str, Any]:  # fmt: skip
    """Every variant of ``model`` (saved in ``folder``): size, kernel, perplexity, agreement, decode speed."""
    vocab = model.config.vocab_size
    t0 = time.perf_counter()
    models, failed = peer_models(model, calib, args.hqq_path)
    table: dict[str, dict[str, Any]] = {}
    probe = torch.randint(3, vocab, (1, args.prompt), generator=torch.Generator().manual_seed(2))
    # held-out openings; for the random model the decode prompt (its greedy ids only check the GGUF conversion)
    prompts = torch.stack([d[: args.prompt] for d in held_ids[:8]]) if held_ids else decode_prompt(vocab, args.prompt)
    reference = greedy(model, prompts, args.new_tokens)
    fp32_nll: tuple[Any, Any] | None = None
    for name, m in models.items():
        row: dict[str, Any] = {"library": library(name), "weights_MiB": round(stored_bytes(m) / 2**20, 2),
                               "top_ops": top_ops(m, probe)}  # fmt: skip
        if held_ids:
            nll, count = doc_nll(m, held_ids, args.block)
            if name == "float32":
                fp32_nll = (nll, count)
            row["perplexity"] = perplexity_ci(nll, count)
            row["greedy_agreement"] = float((greedy(m, prompts, args.new_tokens) == reference).float().mean())
        table[name] = row
        print(label, name, {k: v for k, v in row.items() if k != "top_ops"}, flush=True)
    speed = time_torch_side(models, vocab, args)
    for name, s in speed.items():
        table[name]["decode_batch1"] = s
    print(label, "batch 1 speedup", {k: round(v.get("speedup", float("nan")), 2) for k, v in speed.items()}, flush=True)
    fp32_mib = table["float32"]["weights_MiB"]
    for row in table.values():
        row["size_ratio_vs_float32"] = round(fp32_mib / row["weights_MiB"], 2)
    section: dict[str, Any] = {"parameters": sum(p.numel() for p in model.parameters()), "variants": table,
                               "not_run": failed, "torch_side_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
    del models
    eos = model.generation_config.eos_token_id
    gg = llama_cpp_side(folder, work, args, decode_prompt(vocab, args.prompt)[0].tolist(), prompts.tolist(),
                        [d.tolist() for d in held_ids] if held_ids else [],
                        [] if eos is None else [eos] if isinstance(eos, int) else list(eos))  # fmt: skip
    if "decode_batch1" in gg:
        fp32_tps = table["float32"]["decode_batch1"]["tokens_per_s"]
        for s in gg["decode_batch1"].values():
            s["vs_llamacpp_F32"] = s["tokens_per_s"] / gg["decode_batch1"]["F32"]["tokens_per_s"]
            s["vs_hf_float32_not_interleaved"] = s["tokens_per_s"] / fp32_tps
        nll = gg.pop("nll", {})
        for kind, d in nll.items():
            gg.setdefault("perplexity", {})[kind] = perplexity_ci(*map(_np_array, (d["nll"], d["count"])))
        ref = reference.tolist()
        gg["greedy_agreement_vs_hf_float32"] = {
            k: sum(a == b for p, q in zip(g, ref, strict=True) for a, b in zip(p, q, strict=True))
            / sum(len(q) for q in ref) for k, g in gg.pop("greedy").items()}  # fmt: skip
        gg["conversion_check"] = conversion_check(gg["greedy_agreement_vs_hf_float32"]["F32"], nll.get("F32"),
                                                  fp32_nll)  # fmt: skip
    section["llama_cpp"] = gg
    tps = {k: round(v["tokens_per_s"], 1) for k, v in gg.get("decode_batch1", {}).items()}
    print(label, "llama.cpp", gg.get("status"), tps, gg.get("conversion_check"), flush=True)
    return section


def conversion_check(agreement: float, gguf_nll: dict[str, list] | None,
                     hf_nll: tuple[Any, Any] | None) -> dict[str, Any]:  # fmt: skip
    """Whether the F32 GGUF computes what the HF float32 model computes: same greedy ids, same summed NLL.

    Both run float32 weights on the same token ids, so only kernel rounding separates them; a wrong
    tensor permutation, norm epsilon or RoPE convention in the conversion would show here first.
    """
    out: dict[str, Any] = {"greedy_agreement_F32_gguf_vs_hf_float32": agreement,
                           "criterion": "F32 GGUF's greedy ids equal HF float32's; |NLL ratio - 1| <= 1e-3"}
    ok = agreement == 1.0
    if gguf_nll is not None and hf_nll is not None:
        ratio = sum(gguf_nll["nll"]) / float(sum(hf_nll[0]))
        same_tokens = list(gguf_nll["count"]) == [int(c) for c in hf_nll[1]]
        out |= {"nll_ratio_F32_gguf_vs_hf_float32": ratio, "same_token_counts": same_tokens}
        ok = ok and same_tokens and abs(ratio - 1) <= 1e-3
    out["faithful"] = ok
    return out


def _np_array(x: list) -> Any:
    import numpy as np

    return np.asarray(x, dtype=float)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", type=Path, default=OUT, help="trained HF Llama folder (train_small_llm.py)")
    ap.add_argument("--prompt", type=int, default=16, help="prompt tokens")
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--documents", type=int, default=100, help="held-out documents for perplexity")
    ap.add_argument("--block", type=int, default=128, help="tokens per perplexity block")
    ap.add_argument("--big-hidden", type=int, default=1536, help="hidden size of the random Llama (1536: ~0.4 B)")
    ap.add_argument("--big-layers", type=int, default=12, help="layers of the random Llama (0: skip it)")
    ap.add_argument("--max-call-s", type=float, default=60.0,
                    help="a variant whose one 32-token call takes longer is timed once, not interleaved")
    ap.add_argument("--hqq-path", default=os.environ.get("HQQ_PATH"), help="extra sys.path entry holding hqq")
    ap.add_argument("--llamacpp-python", default=str(LLAMACPP_PYTHON), help="python of the llama-cpp-python venv")
    ap.add_argument("--llamacpp-src", default=str(LLAMACPP_SRC), help="folder with llama.cpp's convert_hf_to_gguf.py")
    ap.add_argument("--output", type=Path, default=_common.RESULTS / "llm_peers.json")
    args = ap.parse_args()
    from transformers import AutoTokenizer, LlamaForCausalLM

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    result: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "environment": _common.environment() | {
            lib: _common.package_version(lib) for lib in ("torchao", "optimum-quanto", "hqq", "gguf")},
        "load_before": os.getloadavg(), "settings": vars(args) | {"output": str(args.output), "model": str(args.model)},
        "timing": "torch variants interleaved (time_interleaved, A B A B ...); llama.cpp in its own process "
                  "right after, interleaved only among its GGUF files",
        "quantized_layers": "every Linear, lm_head included (steelyard's default), for steelyard, torchao and quanto; "
                            "steelyard also stores the token embedding as int8 rows, the peers keep it float; "
                            "HQQ by its own HF patcher; llama.cpp by its own rules (see tensor_types)",
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="llm-peers-") as tmp:
        work = Path(tmp)
        model = LlamaForCausalLM.from_pretrained(args.model).eval()
        tok = AutoTokenizer.from_pretrained(args.model)
        training = args.model / "training.json"
        result["trained_model"] = json.loads(training.read_text()) if training.exists() else None
        train_docs, held = split(bbc_documents())
        held_ids = [torch.tensor(tok(d, add_special_tokens=False)["input_ids"]) for d in held[: args.documents]]
        train_ids = torch.tensor([i for d in train_docs[:200] for i in tok(d, add_special_tokens=False)["input_ids"]])
        calib = [{"input_ids": torch.stack([train_ids[i * 128 : (i + 1) * 128] for i in range(b * 4, b * 4 + 4)])}
                 for b in range(4)]  # fmt: skip
        result["trained"] = measure("trained", model, args.model, args, held_ids=held_ids, calib=calib, work=work)
        del model
        if args.big_layers:
            big = random_llama(args.big_hidden, args.big_layers, 32000)
            big_dir = work / "random-llama"
            big.save_pretrained(big_dir)
            tok.save_pretrained(big_dir)  # only for the GGUF converter's vocabulary; ids are drawn directly
            calib_big = [{"input_ids": torch.randint(3, 32000, (4, 64), generator=torch.Generator().manual_seed(b))}
                         for b in range(2)]  # fmt: skip
            result["random_llama"] = measure("random", big, big_dir, args, held_ids=None, calib=calib_big, work=work)
    result["load_after"] = os.getloadavg()
    result["wall_s"] = round(time.perf_counter() - start, 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print("wrote", args.output, f"({result['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
