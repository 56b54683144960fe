"""Bad input for the generative-model methods, through the CLI: one ``error:`` line, exit 2, the original kept.

The issue's list: a method that does not apply (int4 on a CNN, head pruning that would split a key /
value group, a group size that divides no layer's input features), a calibrated method without
calibration data (SmoothQuant W8A8, Wanda, angular layer drop), a kernel library missing from the
machine (the line says what to install), and NaN / Inf in the compressed model's logits. Every row
runs ``steelyard compress`` (or ``profile``) on a model folder and checks that the folder's files are
byte-identical afterwards, that nothing was written beside them and that the store gained no run.
"""

from __future__ import annotations

import builtins
import hashlib
from pathlib import Path

import pytest
import torch

from cli_helpers import refused, steelyard
from steelyard.store import open_store
from tiny_configs import save_tiny_llama, save_tiny_resnet

pytestmark = pytest.mark.usefixtures("one_thread")

QUICK = ["--rounds", "1", "--max-length", "16"]


def save_hot_llama(path: Path) -> Path:
    """A tiny Llama whose head holds weights beyond float16's range (1e5 > 65,504): finite in float32 only."""
    from transformers import LlamaForCausalLM

    save_tiny_llama(path)
    model = LlamaForCausalLM.from_pretrained(path)
    with torch.no_grad():
        model.lm_head.weight[:4] = 1e5
    model.save_pretrained(path)
    return path


def save_sliding_mistral(path: Path) -> Path:
    """A tiny Mistral whose layers attend through a sliding window of 4 (transformers quantizes no such cache)."""
    from transformers import MistralConfig, MistralForCausalLM

    from tiny_configs import LLAMA_GQA

    torch.manual_seed(0)
    config = MistralConfig(**{**LLAMA_GQA, "num_hidden_layers": 2, "sliding_window": 4})
    MistralForCausalLM(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("llm-bad-inputs")
    return {
        "llama": save_tiny_llama(root / "llama"),
        "wide": save_tiny_llama(root / "llama-96", hidden=96),  # 96 and 192 input features: no group of 128
        "hot": save_hot_llama(root / "hot-llama"),
        "resnet": save_tiny_resnet(root / "resnet"),
        "sliding": save_sliding_mistral(root / "mistral-sliding"),
        "root": root,
    }


def checksums(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def no_module(*names: str):
    """A monkeypatch of ``import``: ``names`` (and their submodules) raise ImportError, as when not installed."""
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if any(name == n or name.startswith(n + ".") for n in names):
            raise ImportError(f"No module named '{name}'")
        return real(name, *args, **kwargs)

    return fake


def no_lowbit_kernels(monkeypatch) -> None:
    from steelyard.compression.quantization import weight_only

    monkeypatch.setattr(weight_only, "kernels_available", lambda: False)


def no_quanto(monkeypatch) -> None:
    from steelyard.profiling import generation_kv

    monkeypatch.setattr(generation_kv, "_installed", lambda module: False)


def no_onnxruntime(monkeypatch) -> None:
    monkeypatch.setattr(builtins, "__import__", no_module("onnxruntime", "onnx"))


def no_torch_pruning(monkeypatch) -> None:
    monkeypatch.setattr(builtins, "__import__", no_module("torch_pruning"))


#: (id, arguments with {placeholders} from the world, words the error line must hold, machine setup or None)
CASES = [
    # a method that does not apply
    ("int4-on-a-cnn", ["compress", "{resnet}", "--recipe", "quantize:int4-weight-only", *QUICK],
     ["quantize:int4-weight-only works on the nn.Linear layers", "outside its output head"], None),
    ("heads-that-split-a-kv-group", ["compress", "{llama}", "--recipe", "prune:structured,amount=0,heads=0.25",
                                     *QUICK], ["whole groups of 2"], None),
    ("group-size-divides-no-layer", ["compress", "{wide}", "--recipe", "quantize:int4-weight-only,group_size=128",
                                     *QUICK], ["does not divide the 96 input features"], None),
    ("int8-kv-cache-with-quanto-only", ["profile", "{llama}", "--prompt-len", "8", "--new-tokens", "4",
                                        "--kv-cache", "int8", "--hardware", "local"], ["hqq", "only int2 / int4"],
     None),
    ("w8a8-on-a-cnn", ["compress", "{resnet}", "--recipe", "quantize:w8a8", "--data", "digits", *QUICK],
     ["quantize:w8a8 works on Linear / Conv1D layers"], None),
    ("wanda-on-a-cnn", ["compress", "{resnet}", "--recipe", "prune:wanda", "--data", "digits", *QUICK],
     ["prune:wanda works on Linear / Conv1D layers"], None),
    ("angular-drop-on-a-cnn", ["compress", "{resnet}", "--recipe", "prune:layers-angular", "--data", "digits",
                               *QUICK], ["prune:layers-angular applies to transformers with a stack of layers"], None),
    ("kv-cache-on-sliding-window-layers", ["profile", "{sliding}", "--prompt-len", "8", "--new-tokens", "4",
                                           "--kv-cache", "fp8", "--hardware", "local"],
     ["--kv-cache fp8 does not apply to this model", "only full attention layers"], None),
    # a calibrated method without calibration data
    ("calibration-data-of-another-task", ["compress", "{llama}", "--recipe", "prune:wanda", "--data", "digits",
                                          *QUICK],
     ["'digits' supports tasks image-classification, not 'causal-lm'"], None),
    ("w8a8-without-calibration", ["compress", "{llama}", "--recipe", "quantize:w8a8", *QUICK],
     ["quantize:w8a8 needs data", "--data"], None),
    ("wanda-without-calibration", ["compress", "{llama}", "--recipe", "prune:wanda", *QUICK],
     ["prune:wanda needs data", "--data"], None),
    ("angular-drop-without-calibration", ["compress", "{llama}", "--recipe", "prune:layers-angular", *QUICK],
     ["prune:layers-angular needs data", "--data"], None),
    # a kernel library missing from the machine: the line says what to install
    ("no-int4-kernels-in-torch", ["compress", "{llama}", "--recipe", "quantize:int4-weight-only", *QUICK],
     ["no low-bit CPU kernels", "install torch"], no_lowbit_kernels),
    ("no-quanto-for-the-kv-cache", ["profile", "{llama}", "--prompt-len", "8", "--new-tokens", "4",
                                    "--kv-cache", "int4", "--hardware", "local"],
     ["optimum-quanto", "pip install 'steelyard[llm]'"], no_quanto),
    ("no-onnxruntime", ["compress", "{llama}", "--recipe", "quantize:int8-dynamic,backend=onnxruntime", *QUICK],
     ["onnxruntime", "pip install 'steelyard[compress]'"], no_onnxruntime),
    ("no-torch-pruning-for-a-cnn", ["compress", "{resnet}", "--recipe", "prune:structured", *QUICK],
     ["torch-pruning", "pip install 'steelyard[compress]'"], no_torch_pruning),
    # NaN / Inf in the compressed model's logits
    ("float16-overflows-the-logits", ["compress", "{hot}", "--recipe", "quantize:fp16", *QUICK],
     ["quantize:fp16", "NaN/Inf", "unusable"], None),
]


@pytest.mark.parametrize("args, words, setup", [pytest.param(a, w, s, id=i) for i, a, w, s in CASES])
def test_llm_bad_input_is_one_line_exit_2_and_the_original_is_kept(world, args, words, setup, capsys,
                                                                   monkeypatch):
    argv = [a.format(**{k: str(v) for k, v in world.items()}) for a in args]
    before, rows = checksums(world["root"]), open_store().count()
    if setup is not None:
        setup(monkeypatch)
    refused(steelyard(*argv), capsys, *words)
    assert checksums(world["root"]) == before  # every model folder byte-identical, nothing written beside them
    assert open_store().count() == rows
