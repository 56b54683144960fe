"""Tiny models and data shared by the distillation tests: a 4-layer BERT (hidden 32) fine-tuned on a
synthetic two-class sentiment task in about a second, with the offline MiniLM tokenizer."""

from __future__ import annotations

import csv
import random
from pathlib import Path

from steelyard.data.dataset import Example, TaskDataset
from text_toys import tiny_bert as _tiny_bert

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


def tiny_bert(folder: Path, *, layers: int = 4, hidden: int = 32, heads: int = 2, labels: list[str] | None = None,
              seed: int = 0) -> Path:
    """A random tiny BERT classifier with the toy task's class names."""
    return _tiny_bert(folder, layers=layers, hidden=hidden, heads=heads, labels=labels or LABELS, seed=seed)


def trained_teacher(root: Path) -> Path:
    """The 4-layer tiny BERT fine-tuned on the toy task (test accuracy 1.0)."""
    from steelyard.training import FinetuneConfig, finetune

    base = tiny_bert(root / "base")
    out = root / "teacher"
    finetune(str(base), toy_dataset(), FinetuneConfig(epochs=3, lr=2e-3, batch_size=16, max_length=MAX_LENGTH),
             output=out)
    return out
