"""Every kind of folder steelyard writes, opened with plain transformers ``from_pretrained``.

The rule (issue 16): a folder either loads in plain transformers and computes what steelyard's own
loader computes, or transformers raises an error that names ``steelyard.load_model``; it never
"loads" with freshly initialised weights. Each case also states which of the two it must be, so
a folder that turns silently unloadable (or silently loadable) fails here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from steelyard.models import InputSpec, LoadConfig, load_model
from text_toys import tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")

SHAPE = InputSpec(batch_size=2, seq_len=16)
LOADS, REFUSED = "loads", "refused"


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tiny_bert(tmp_path_factory.mktemp("plain") / "bert", layers=2, hidden=32, heads=4, num_labels=3)


def _compressed(method: str, **options: Any) -> Callable[[Path, Path], Path]:
    def make(source: Path, out: Path) -> Path:
        from steelyard.compression import compress, make_config

        handle = load_model(str(source), LoadConfig(inputs=SHAPE))
        return compress(handle, make_config(method, **options), data=[handle.inputs]).save(out)

    return make


def _llama_compressed(method: str, **options: Any) -> Callable[[Path, Path], Path]:
    """A tiny GQA Llama, whose config can state pruned heads (``head_dim``) as BERT's cannot."""

    def make(source: Path, out: Path) -> Path:
        from compression.llm_toys import tiny_llama
        from steelyard.compression import compress, make_config

        handle = tiny_llama()
        return compress(handle, make_config(method, **options), data=[handle.inputs]).save(out)

    return make


def _runtime(name: str, precision: str) -> Callable[[Path, Path], Path]:
    def make(source: Path, out: Path) -> Path:
        from steelyard.backends import get_backend
        from steelyard.backends.artifact import save_artifact

        backend = get_backend(name)
        if not backend.available():
            pytest.skip(backend.available().reason)
        handle = load_model(str(source), LoadConfig(inputs=SHAPE))
        return save_artifact(backend.compile(handle.module, handle.inputs, precision), handle, out)

    return make


def _finetuned(freeze_encoder: bool) -> Callable[[Path, Path], Path]:
    def make(source: Path, out: Path) -> Path:
        from distill_toys import MAX_LENGTH, toy_dataset
        from steelyard.training import FinetuneConfig, finetune

        if freeze_encoder:  # head-only training reads the encoder: a bare embedding model, like MiniLM
            from transformers import AutoModel

            AutoModel.from_pretrained(source).save_pretrained(out.parent / "encoder")
            for f in [*source.glob("*token*"), *source.glob("vocab*")]:
                (out.parent / "encoder" / f.name).write_bytes(f.read_bytes())
            source = out.parent / "encoder"
        finetune(str(source), toy_dataset(), FinetuneConfig(epochs=1, lr=1e-3, batch_size=32, max_length=MAX_LENGTH,
                                                            freeze_encoder=freeze_encoder), output=out)
        return out

    return make


def _distilled(source: Path, out: Path) -> Path:
    from distill_toys import LABELS, MAX_LENGTH, toy_dataset
    from distill_toys import tiny_bert as labelled_bert
    from steelyard.distill import DistillConfig, distill
    from steelyard.training import FinetuneConfig

    teacher = labelled_bert(out.parent / "teacher", layers=2, labels=LABELS)
    train = FinetuneConfig(epochs=1, lr=1e-3, batch_size=32, max_length=MAX_LENGTH)
    distill(str(teacher), "layers=1", toy_dataset(), DistillConfig(train=train), output=out)
    return out


CASES = [
    # compressed folders: float models whose shapes the config states load; the rest are refused
    ("prune:unstructured", _compressed("prune:unstructured"), LOADS),
    ("prune:wanda", _compressed("prune:wanda"), LOADS),
    ("prune:structured-ffn", _compressed("prune:structured", amount=0.5), LOADS),
    ("prune:structured-heads-bert", _compressed("prune:structured", amount=0.0, heads=0.5), REFUSED),
    ("prune:structured-heads-llama", _llama_compressed("prune:structured", amount=0.0, heads=0.5), LOADS),
    ("prune:layers", _compressed("prune:layers"), LOADS),
    ("prune:layers-angular", _compressed("prune:layers-angular"), LOADS),
    ("quantize:fp16", _compressed("quantize:fp16"), LOADS),
    ("quantize:bf16", _compressed("quantize:bf16"), LOADS),
    ("quantize:int8-dynamic", _compressed("quantize:int8-dynamic"), REFUSED),
    ("quantize:int8-dynamic-onnxruntime", _compressed("quantize:int8-dynamic", backend="onnxruntime"), REFUSED),
    ("quantize:int8-static", _compressed("quantize:int8-static"), REFUSED),
    ("quantize:int8-weight-only", _compressed("quantize:int8-weight-only"), REFUSED),
    ("quantize:int4-weight-only", _compressed("quantize:int4-weight-only"), REFUSED),
    ("quantize:w8a8", _compressed("quantize:w8a8"), REFUSED),
    ("low-rank:svd", _compressed("low-rank:svd"), REFUSED),
    # runtime artifacts (steelyard runtimes --output / compress --backend)
    ("runtime:onnxruntime", _runtime("onnxruntime", "fp32"), REFUSED),
    ("runtime:openvino", _runtime("openvino", "fp32"), REFUSED),
    ("runtime:torch", _runtime("torch", "fp32"), LOADS),
    # trained folders
    ("finetune:full", _finetuned(False), LOADS),
    ("finetune:head-only", _finetuned(True), LOADS),  # the encoder loads; the mean-pooled head is steelyard's file
    ("distill:layers", _distilled, LOADS),
]


def _plain_class(task: str) -> Any:
    import transformers

    return {"text-classification": transformers.AutoModelForSequenceClassification,
            "causal-lm": transformers.AutoModelForCausalLM}.get(task, transformers.AutoModel)


def _output(out: Any) -> torch.Tensor:
    from steelyard.compression.fidelity import primary_output

    return primary_output(out)[1].float()


@pytest.mark.parametrize(("kind", "make", "expected"), [pytest.param(*c, id=c[0]) for c in CASES])
def test_plain_transformers_loads_the_same_model_or_says_use_steelyard(base, tmp_path, kind, make, expected):
    folder = make(base, tmp_path / "out")
    ours = load_model(str(folder), LoadConfig(inputs=SHAPE))  # steelyard's own loader keeps loading every kind
    with torch.inference_mode():
        reference = _output(ours.forward())
    assert torch.isfinite(reference).all()
    plain_cls = _plain_class(ours.task)
    try:
        model = plain_cls.from_pretrained(str(folder)).eval()
    except Exception as exc:  # whatever transformers raises must name steelyard's loader
        assert "steelyard.load_model" in str(exc), f"{kind}: {type(exc).__name__}: {str(exc)[:300]}"
        assert expected == REFUSED, f"{kind} should load in plain transformers but raised: {str(exc)[:200]}"
        return
    assert expected == LOADS, f"{kind} loaded in plain transformers ({type(model).__name__}): it must be refused"
    inputs = ours.inputs if isinstance(ours.inputs, dict) else {}
    with torch.inference_mode():
        theirs = _output(model(**inputs))
    low = next(model.parameters()).dtype != torch.float32
    torch.testing.assert_close(theirs, reference, atol=2e-2 if low else 1e-5, rtol=1e-2 if low else 1e-4)


def test_a_guarded_folder_refuses_an_explicit_config_too(base, tmp_path):
    """``from_pretrained(folder, config=...)`` skips config.json; the weights' file name still stops it."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    folder = _compressed("quantize:int8-dynamic")(base, tmp_path / "int8")
    with pytest.raises(OSError):
        AutoModelForSequenceClassification.from_pretrained(str(folder), config=AutoConfig.from_pretrained(str(base)))


def test_a_guarded_folder_is_weighed_config_only_and_keeps_its_tokenizer(base, tmp_path):
    from transformers import AutoTokenizer

    from steelyard.compression.serialization.plain_hf import STEELYARD_CONFIG, WEIGHTS_FILE, is_guarded

    folder = _compressed("low-rank:svd")(base, tmp_path / "svd")
    assert is_guarded(folder) and (folder / STEELYARD_CONFIG).is_file() and (folder / WEIGHTS_FILE).is_file()
    assert not (folder / "model.safetensors").exists()
    handle = load_model(str(folder), LoadConfig(config_only=True, inputs=SHAPE))
    assert handle.config.model_type == "bert" and folder / WEIGHTS_FILE in handle.weights_files
    for file in base.glob("tokenizer*"):  # what `steelyard compress` copies beside the model
        (folder / file.name).write_bytes(file.read_bytes())
    assert len(AutoTokenizer.from_pretrained(str(folder))) > 1000  # the tokenizer does not need the model config


def test_a_factory_models_folder_is_refused_too(tmp_path):
    """A plain ``nn.Module`` from a factory has no config at all: transformers still gets the guard to read."""
    from transformers import AutoModel

    from compression_toys import cnn_handle
    from steelyard.compression import compress, load_compressed, make_config

    handle = cnn_handle()
    folder = compress(handle, make_config("prune:structured"), data=[handle.inputs]).save(tmp_path / "cnn")
    with pytest.raises(ValueError, match=r"steelyard\.load_model"):
        AutoModel.from_pretrained(str(folder))
    reloaded = load_compressed(folder, trust_remote_code=True)  # the factory is code: only with trust
    assert sum(p.numel() for p in reloaded.module.parameters()) < sum(p.numel() for p in handle.module.parameters())
