"""Generative-model compression on this CPU, side by side in one run: tokens/s, size, perplexity, agreement.

Variants: float32, bfloat16, int8 weight-only, int4 weight-only (group 32 and 128), W8A8
(SmoothQuant + fbgemm int8), and layer dropping (angular distance) + next-token recovery + int4.
Decode speed is a fixed-length greedy ``generate(min_new_tokens=N, max_new_tokens=N)`` timed with
``time_interleaved`` (A B A B ... in one process) at batch 1 and 8; perplexity is on the held-out
BBC documents of ``benchmarks/train_small_llm.py`` with a bootstrap CI over documents; agreement is
the fraction of greedy tokens equal to the float32 model's on a fixed prompt set. Speed is also
measured on a ~0.5 B-parameter random-weight Llama (timing does not depend on the weight values).

    python benchmarks/train_small_llm.py --minutes 12 --threads 2
    python benchmarks/llm_compression.py --threads 2
    python benchmarks/llm_compression.py --threads 2 --drop 0.5 --group-size 128 --output \
        benchmarks/results/llm_compression_drop_half.json      # the recipe dropping half the layers
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import math
import subprocess
from pathlib import Path

import _common
import numpy as np
import torch
from train_small_llm import ASSETS, OUT, bbc_documents, split, write_text_splits

from steelyard.compression import (
    AngularLayerConfig,
    DynamicQuantConfig,
    SmoothQuantConfig,
    WeightOnlyConfig,
    compress,
)
from steelyard.models import ModelHandle
from steelyard.profiling.interleaved import time_interleaved
from steelyard.profiling.weigh import weigh


def handle_of(model, ids) -> ModelHandle:
    return ModelHandle("llm", "factory", "causal-lm", model.eval(), {"input_ids": ids})


def variants(model, calib: list[dict], recovered=None, group_size: int = 32) -> dict[str, torch.nn.Module]:
    h = handle_of(model, calib[0]["input_ids"])
    out = {"float32": model, "bfloat16": copy.deepcopy(model).to(torch.bfloat16)}
    out["int8 weight-only"] = compress(h, WeightOnlyConfig(bits=8)).handle.module
    out["int4 g32"] = compress(h, WeightOnlyConfig(bits=4, group_size=32)).handle.module
    out["int4 g128"] = compress(h, WeightOnlyConfig(bits=4, group_size=128)).handle.module
    out["W8A8 (SmoothQuant)"] = compress(h, SmoothQuantConfig(alpha=0.5), data=calib).handle.module
    out["int8 dynamic (W8A8, fbgemm)"] = compress(h, DynamicQuantConfig()).handle.module
    if recovered is not None:
        out[f"drop+recover+int4 g{group_size}"] = recovered
    return out


RECOVERY = ("prune:layers-angular,amount={amount}; distill:epochs=1,lr={lr},temperature=2,alpha=0.5; "
            "quantize:int4-weight-only,group_size={group_size}")


def drop_recover_int4(*, amount: float, lr: float, train_docs: int, threads: int, group_size: int = 32):
    """steelyard's own recipe: angular layer drop, distillation on the original's next-token logits over
    the model's training text (one epoch over ``train_docs`` documents), then int4 — as
    ``steelyard compress MODEL --data bbc-llama-text --task causal-lm --recipe RECOVERY`` runs it."""
    from steelyard.compression.recipe import RecipeOptions, parse_recipe, run_recipe
    from steelyard.data import load_dataset
    from steelyard.models import LoadConfig, load_model

    folder = write_text_splits(ASSETS / "bbc-llama-recovery-text")
    lines = (folder / "train.txt").read_text(encoding="utf-8").splitlines()
    (folder / "train.txt").write_text("\n".join(lines[:train_docs]) + "\n", encoding="utf-8")
    text = load_dataset(str(folder), "causal-lm")
    handle = load_model(str(OUT), LoadConfig(task="causal-lm"))
    recipe = RECOVERY.format(amount=amount, lr=lr, group_size=group_size)
    opts = RecipeOptions(max_length=128, batch_size=16, eval_batch_size=16, n_resamples=200, measure_latency=False,
                         generation=None, threads=threads, progress=False)  # fmt: skip
    result = run_recipe(handle, parse_recipe(recipe), text, opts)
    notes = {s.name: list(s.notes) for s in result.steps}
    return result.compressed.handle.module.eval(), {"recipe": recipe, "train_documents": train_docs, "notes": notes}


def doc_nll(model, docs: list[torch.Tensor], block: int) -> tuple[np.ndarray, np.ndarray]:
    nll, count = [], []
    with torch.inference_mode():
        for ids in docs:
            total, n = 0.0, 0
            for i in range(0, len(ids) - 1, block):
                x = ids[i : i + block][None]
                if x.shape[1] < 2:
                    continue
                loss = model(input_ids=x, labels=x).loss.float().item()
                total += loss * (x.shape[1] - 1)
                n += x.shape[1] - 1
            nll.append(total)
            count.append(n)
    return np.array(nll), np.array(count)


def perplexity_ci(nll: np.ndarray, count: np.ndarray, resamples: int = 1000) -> dict[str, float]:
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(nll), (resamples, len(nll)))
    boots = np.exp(nll[idx].sum(1) / count[idx].sum(1))
    return {"value": float(math.exp(nll.sum() / count.sum())), "low": float(np.percentile(boots, 2.5)),
            "high": float(np.percentile(boots, 97.5)), "documents": len(nll)}  # fmt: skip


def greedy(model, prompts: torch.Tensor, n: int) -> torch.Tensor:
    with torch.inference_mode():
        out = model.generate(prompts, attention_mask=torch.ones_like(prompts), max_new_tokens=n, min_new_tokens=n,
                             do_sample=False, pad_token_id=0)  # fmt: skip
    return out[:, prompts.shape[1]:]


def decode_speed(models: dict[str, torch.nn.Module], vocab: int, batch: int, prompt: int, new: int, rounds: int,
                 threads: int) -> dict[str, dict[str, float]]:  # fmt: skip
    ids = torch.randint(3, vocab, (batch, prompt), generator=torch.Generator().manual_seed(1))
    timing = time_interleaved({name: (lambda m=m: greedy(m, ids, new)) for name, m in models.items()},
                              batch_size=batch, warmup=1, rounds=rounds, threads=threads)  # fmt: skip
    out = {}
    for name, st in timing.stats.items():
        sp = timing.speedups[name]
        out[name] = {"tokens_per_s": batch * new / float(st.median), "median_s": float(st.median),
                     "speedup": float(sp.ratio), "speedup_low": float(sp.ci_low), "speedup_high": float(sp.ci_high)}
    return out


def size_mb(model) -> float:
    return weigh(model).bytes / 2**20


def random_llama(hidden: int, layers: int, vocab: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=hidden * 8 // 3 // 64 * 64,
                      num_hidden_layers=layers, num_attention_heads=12, num_key_value_heads=4,
                      max_position_embeddings=512, tie_word_embeddings=False)  # fmt: skip
    return LlamaForCausalLM(cfg).eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--documents", type=int, default=100, help="held-out documents for perplexity")
    ap.add_argument("--drop", type=float, default=1 / 3, help="share of decoder layers the recipe drops")
    ap.add_argument("--recovery-documents", type=int, default=1600, help="training documents distilled on (1 epoch)")
    ap.add_argument("--recovery-lr", type=float, default=5e-4)
    ap.add_argument("--group-size", type=int, default=32, help="int4 group size of the drop + recovery recipe")
    ap.add_argument("--big-layers", type=int, default=16, help="layers of the random-weight Llama (0: skip)")
    ap.add_argument("--big-hidden", type=int, default=1536, help="hidden size of the random-weight Llama (~0.5 B)")
    ap.add_argument("--output", type=Path, default=_common.RESULTS / "llm_compression.json")
    args = ap.parse_args()
    from transformers import AutoTokenizer, LlamaForCausalLM

    torch.set_num_threads(args.threads)
    result: dict = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                    "environment": _common.environment(),
                    "load": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
                    "settings": vars(args) | {"output": str(args.output)}}  # fmt: skip
    model = LlamaForCausalLM.from_pretrained(OUT).eval()
    tok = AutoTokenizer.from_pretrained(OUT)
    result["trained_model"] = json.loads((OUT / "training.json").read_text())
    train_docs, held = split(bbc_documents())
    held_ids = [torch.tensor(tok(d, add_special_tokens=False)["input_ids"]) for d in held[: args.documents]]
    train_ids = torch.tensor([i for d in train_docs for i in tok(d, add_special_tokens=False)["input_ids"]])
    calib = [{"input_ids": torch.stack([train_ids[i * 128 : (i + 1) * 128] for i in range(b * 4, b * 4 + 4)])}
             for b in range(4)]  # fmt: skip
    recovered, recovery = drop_recover_int4(amount=args.drop, lr=args.recovery_lr,
                                            train_docs=args.recovery_documents, threads=args.threads,
                                            group_size=args.group_size)  # fmt: skip
    models = variants(model, calib, recovered, args.group_size)
    prompts = torch.stack([d[:16] for d in held_ids[:8]])
    reference = greedy(model, prompts, args.new_tokens)
    table = {}
    for name, m in models.items():
        nll, count = doc_nll(m, held_ids, 128)
        table[name] = {"weights_MiB": round(size_mb(m), 2), "perplexity": perplexity_ci(nll, count),
                       "greedy_agreement": float((greedy(m, prompts, args.new_tokens) == reference).float().mean())}
        print(name, table[name], flush=True)
    result["recovery"] = recovery
    for batch in (1, 8):
        speed = decode_speed(models, model.config.vocab_size, batch, 16, args.new_tokens, args.rounds, args.threads)
        for name, s in speed.items():
            table[name][f"decode_batch{batch}"] = s
        print("batch", batch, {k: round(v["speedup"], 2) for k, v in speed.items()}, flush=True)
    result["trained"] = table
    if args.big_layers:
        big = random_llama(args.big_hidden, args.big_layers, 32000)
        calib_big = [{"input_ids": torch.randint(3, 32000, (4, 64), generator=torch.Generator().manual_seed(b))}
                     for b in range(2)]  # fmt: skip
        big_models = variants(big, calib_big)
        # The recovery recipe's structure, for speed only (training does not change a step's cost).
        dropped = compress(handle_of(big, calib_big[0]["input_ids"]), AngularLayerConfig(amount=args.drop),
                           data=calib_big).handle  # fmt: skip
        int4 = WeightOnlyConfig(bits=4, group_size=args.group_size)
        big_models[f"drop+int4 g{args.group_size} (speed only)"] = compress(dropped, int4).handle.module
        big_table = {n: {"weights_MiB": round(size_mb(m), 1)} for n, m in big_models.items()}
        big_table["parameters"] = sum(p.numel() for p in big.parameters())
        speed = decode_speed(big_models, 32000, 1, 16, args.new_tokens, args.rounds, args.threads)
        for name, s in speed.items():
            big_table[name]["decode_batch1"] = s
        print("random Llama batch 1", {k: round(v["speedup"], 2) for k, v in speed.items()}, flush=True)
        result["random_llama"] = big_table
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    print("wrote", args.output)


if __name__ == "__main__":
    main()
