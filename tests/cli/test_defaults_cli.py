"""Defaults that give usable answers: ``estimate`` takes the model's own sequence limit, and
``optimize`` refuses a model without a task head before any trial runs."""

from __future__ import annotations

import json

import optuna
import pytest
from transformers import AutoConfig, AutoModel

from cli_helpers import one_line_error, steelyard
from text_toys import reviews_csv, tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")


def test_estimate_gpt2_defaults_to_its_1024_positions_and_says_so(tmp_path, capsys):
    js = tmp_path / "est.json"
    assert steelyard("estimate", "gpt2", "--tokens", "1M", "--hardware", "a100-80gb", "--json", js, "--no-save") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "sequence length 1,024 tokens: the model's own limit" in out
    data = json.loads(js.read_text())
    assert data["samples"] == pytest.approx(1e6 / 1024)
    assert "sequence length 1,024 tokens" in data["assumptions"][0]
    # A model that allows more keeps the 2,048-token default, and says what it allows; --seq-len still rules.
    assert steelyard("estimate", "llama-3-8b", "--tokens", "1M", "--hardware", "a100-80gb", "--json", js,
                     "--no-save") == 0
    assert "sequence length 2,048 tokens (the default; the model allows 8,192" in json.loads(js.read_text())[
        "assumptions"][0]
    assert steelyard("estimate", "gpt2", "--tokens", "1M", "--seq-len", "256", "--hardware", "a100-80gb",
                     "--json", js, "--no-save") == 0
    data = json.loads(js.read_text())
    assert data["samples"] == pytest.approx(1e6 / 256) and "sequence length" not in data["assumptions"][0]


def test_optimize_refuses_a_model_without_a_task_head_before_the_study(tmp_path, capsys):
    tok = tokenizer()
    body = tmp_path / "body"
    config = AutoConfig.for_model("bert", hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, vocab_size=tok.vocab_size, max_position_embeddings=64)
    AutoModel.from_config(config).save_pretrained(body)  # a BertModel: no classification head
    tok.save_pretrained(body)
    data = reviews_csv(tmp_path / "reviews.csv", 40)
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    capsys.readouterr()  # transformers' own save progress is not the command's output
    assert steelyard("optimize", body, "--data", data, "--trials", "3", "--storage", storage,
                     "--max-length", "16", "--no-progress") == 2
    one_line_error(capsys, "no classification head", "steelyard finetune")
    assert not (tmp_path / "studies.db").exists() or not optuna.get_all_study_names(storage)
