"""Runtimes behind one interface: outputs match torch, artifacts round trip, the fastest is measured.

A tiny random BERT classifier (tests/text_toys.py) runs in every installed backend. fp32 runtimes
must match torch to ~1e-6; int8 ones by SQNR (dB). A backend whose outputs disagree is a failed
row, never a speedup (a deliberately broken backend checks that). Two fake backends of known
speed check that the measured fastest is chosen; a missing one is skipped unless named.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from torch import nn

from steelyard.backends import get_backend
from steelyard.backends.artifact import save_artifact
from steelyard.backends.base import Availability, Calibration, RuntimeMismatchError, mark, run_module
from steelyard.backends.check import check_outputs
from steelyard.backends.cpu import cpu_flags, native_bf16
from steelyard.backends.select import candidates_for, runtime_table
from steelyard.compression.base import BackendUnavailableError, CalibrationError
from steelyard.errors import ConfigError
from steelyard.models import InputSpec, LoadConfig, load_model
from text_toys import tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tiny_bert(tmp_path_factory.mktemp("backends") / "bert", layers=2, num_labels=3)
    handle = load_model(str(folder), LoadConfig(inputs=InputSpec(batch_size=4, seq_len=16)))
    return handle, run_module(handle.module, handle.inputs)


def _backend(name: str):
    backend = get_backend(name)
    ok = backend.available()
    if not ok:
        pytest.skip(ok.reason)
    return backend


def _padded(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Three rows of 24 tokens, the second padded after 10 (its mask zero there)."""
    ids = torch.randint(1000, 2000, (3, 24), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 10:] = 0
    return {k: v for k, v in {"input_ids": ids, "attention_mask": mask,
                              "token_type_ids": torch.zeros_like(ids)}.items() if k in inputs}


CASES = [("onnxruntime", "fp32"), ("onnxruntime", "int8-dynamic"), ("onnxruntime", "int8-static"),
         ("openvino", "fp32"), ("openvino", "int8")]


@pytest.mark.parametrize(("name", "precision"), CASES)
def test_runtime_matches_torch_and_round_trips(tiny, tmp_path, name, precision):
    handle, reference = tiny
    backend = _backend(name)
    if not backend.supports(precision):
        pytest.skip(backend.supports(precision).reason)
    model = backend.compile(handle.module, handle.inputs, precision, Calibration([handle.inputs] * 2))
    out = run_module(model, handle.inputs)
    fidelity = check_outputs(reference, out, precision, handle.task, name)
    if precision == "fp32":
        torch.testing.assert_close(out.logits, reference.logits, atol=1e-5, rtol=1e-4)
        padded = _padded(handle.inputs)  # other shapes, real padding: the graph is not specialised to the example
        torch.testing.assert_close(run_module(model, padded).logits, run_module(handle.module, padded).logits,
                                   atol=1e-5, rtol=1e-4)
    else:  # int8: close in SQNR but not bit-equal
        assert 10 <= fidelity.sqnr_db < 100, fidelity

    folder = save_artifact(model, handle, tmp_path / f"{name}-{precision}", fidelity=fidelity)
    assert (folder / "tokenizer.json").is_file() and (folder / "config.json").is_file()
    reloaded = load_model(str(folder))  # through steelyard's loader, like any model folder
    assert (reloaded.module.runtime, reloaded.module.precision) == (name, precision)
    assert reloaded.task == "text-classification"
    torch.testing.assert_close(run_module(reloaded.module, handle.inputs).logits, out.logits, atol=1e-6, rtol=0)
    assert set(reloaded.inputs) <= set(handle.inputs) and reloaded.inputs


def test_artifacts_load_with_the_runtimes_own_api(tiny, tmp_path):
    handle, reference = tiny
    feed = {k: v.numpy() for k, v in handle.inputs.items()}
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the compress extra")
    folder = save_artifact(_backend("onnxruntime").compile(handle.module, handle.inputs), handle, tmp_path / "ort")
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    logits = session.run(["logits"], {k: feed[k] for k in names})[0]
    torch.testing.assert_close(torch.from_numpy(logits), reference.logits, atol=1e-5, rtol=1e-4)

    ov = pytest.importorskip("openvino", reason="openvino is the runtimes extra")
    folder = save_artifact(_backend("openvino").compile(handle.module, handle.inputs), handle, tmp_path / "ov")
    compiled = ov.Core().compile_model(ov.Core().read_model(str(folder / "model.xml")), "CPU")
    logits = compiled({i.get_any_name(): feed[i.get_any_name()] for i in compiled.inputs})[0]
    torch.testing.assert_close(torch.from_numpy(logits), reference.logits, atol=1e-5, rtol=1e-4)


def test_torch_backends(tiny, tmp_path):
    handle, reference = tiny
    eager = get_backend("torch").compile(handle.module, handle.inputs)
    assert torch.equal(run_module(eager, handle.inputs).logits, reference.logits)
    int8 = get_backend("torch").compile(handle.module, handle.inputs, "int8-dynamic")
    assert check_outputs(reference, run_module(int8, handle.inputs), "int8-dynamic", handle.task, "t").sqnr_db >= 10
    folder = save_artifact(eager, handle, tmp_path / "torch")
    assert torch.equal(run_module(load_model(str(folder)).module, handle.inputs).logits, reference.logits)
    bf16 = get_backend("torch").supports("bf16")
    assert bool(bf16) == native_bf16() == bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
    if not bf16:
        with pytest.raises(ConfigError, match="no native bf16"):
            get_backend("torch").compile(handle.module, handle.inputs, "bf16")


def test_torch_compile_matches_eager(tiny):
    handle, reference = tiny
    backend = _backend("torch-compile")
    model = backend.compile(handle.module, handle.inputs)
    torch.testing.assert_close(run_module(model, handle.inputs).logits, reference.logits, atol=1e-5, rtol=1e-4)


def test_calibrated_precision_without_data_is_one_clear_error(tiny):
    handle, _ = tiny
    with pytest.raises(CalibrationError, match="calibration"):
        _backend("openvino").compile(handle.module, handle.inputs, "int8")
    with pytest.raises(ConfigError, match="no precision 'int4'"):
        _backend("openvino").compile(handle.module, handle.inputs, "int4")


# -- fake backends: known speed, broken outputs, missing ------------------------------------------
class _Fake:
    """A backend whose model returns torch's own answer after sleeping ``delay`` seconds (or noise)."""

    extra = "nothing"
    precisions = ("fp32",)

    def __init__(self, name: str, delay: float, broken: bool = False, installed: bool = True) -> None:
        self.name, self.delay, self.broken, self.installed = name, delay, broken, installed

    def available(self) -> Availability:
        return Availability(self.installed, "" if self.installed else f"{self.name} is not installed: pip install it")

    def supports(self, precision: str) -> Availability:
        return Availability(True)

    def compile(self, module, example_inputs, precision="fp32", calibration=None, threads=None):
        answer = run_module(module, example_inputs)
        delay, broken = self.delay, self.broken

        class Model(nn.Module):
            def forward(self, **inputs):
                time.sleep(delay)
                return {"logits": torch.randn_like(answer.logits) if broken else answer.logits}

        return mark(Model(), self.name, precision)


def test_the_measured_fastest_backend_is_chosen(tiny):
    handle, _ = tiny
    slow, fast = _Fake("slow", 0.5), _Fake("fast", 0.0)  # 0.5 s: slower than the tiny model even on a loaded CPU
    table = runtime_table(handle.module, handle.inputs, candidates=[("torch", "fp32"), (slow, "fp32"), (fast, "fp32")],
                          rounds=5, warmup=1)
    assert table.fastest == "fast fp32"
    assert table.row("slow fp32").speedup.ratio < 1 < table.row("fast fp32").speedup.ratio
    # the other order gives the same answer: the choice follows the measurement, not the position
    table = runtime_table(handle.module, handle.inputs, candidates=[("torch", "fp32"), (fast, "fp32"), (slow, "fp32")],
                          rounds=5, warmup=1)
    assert table.fastest == "fast fp32"


def test_a_given_model_is_timed_with_the_runtimes_and_set_against_each(tiny):
    """``optimize``'s winner joins the runtime table as an extra row; its speedup over every runtime alone
    comes from the same interleaved rounds (not a ratio of two runs)."""
    from steelyard.backends.select import versus

    handle, _ = tiny
    slow, fast = _Fake("slow", 0.5), _Fake("fast", 0.0)
    winner = fast.compile(handle.module, handle.inputs)
    table = runtime_table(handle.module, handle.inputs, candidates=[("torch", "fp32"), (slow, "fp32")],
                          rounds=4, warmup=1, extra={"winner": winner})
    assert [r.label for r in table.rows] == ["torch fp32", "slow fp32", "winner"]
    assert table.row("winner").status == "timed" and table.row("winner").speedup.ratio > 1
    over = {s.baseline: s for s in versus(table, "winner")}
    assert set(over) == {"torch fp32", "slow fp32"} and all(s.candidate == "winner" for s in over.values())
    assert over["slow fp32"].ratio > 10 and over["slow fp32"].ci_low > 1  # 0.5 s against no sleep at all
    assert over["torch fp32"].ratio == pytest.approx(table.row("winner").speedup.ratio)


def test_a_backend_that_disagrees_with_torch_is_a_failure_not_a_speedup(tiny):
    handle, reference = tiny
    broken = _Fake("broken", 0.0, broken=True)
    table = runtime_table(handle.module, handle.inputs, candidates=[("torch", "fp32"), (broken, "fp32")],
                          rounds=3, warmup=1)
    row = table.row("broken fp32")
    assert row.status == "failed" and "disagree with torch" in row.note and row.speedup is None
    assert table.fastest == "torch fp32" and "broken fp32" not in table.timing.speedups
    with pytest.raises(RuntimeMismatchError, match="SQNR"):
        check_outputs(reference, {"logits": reference.logits + 1.0}, "fp32", handle.task, "x")


def test_a_missing_backend_is_skipped_unless_named(tiny, monkeypatch):
    from steelyard.backends import registry

    handle, _ = tiny
    missing = _Fake("openvino", 0.0, installed=False)
    monkeypatch.setattr(registry, "get_backend", lambda name: missing if name == "openvino" else _real(name))
    pairs, required = candidates_for(["all"])
    table = runtime_table(handle.module, handle.inputs, candidates=[p for p in pairs if p[0] in ("torch", "openvino")
                                                                     and p[1] == "fp32"], rounds=2, warmup=1)
    assert table.row("openvino fp32").status == "skipped" and "not installed" in table.row("openvino fp32").note
    pairs, required = candidates_for(["openvino:fp32"])
    assert pairs == [("torch", "fp32"), ("openvino", "fp32")] and required == {"openvino"}
    with pytest.raises(BackendUnavailableError, match="not installed"):
        runtime_table(handle.module, handle.inputs, candidates=pairs, required=required, rounds=2, warmup=1)
    with pytest.raises(ConfigError, match="unknown backend"):
        candidates_for(["tensorrt"])


_real = get_backend.__wrapped__ if hasattr(get_backend, "__wrapped__") else get_backend


def test_artifact_never_overwrites_the_source(tiny):
    handle, _ = tiny
    from steelyard.errors import ConfigError

    model = get_backend("torch").compile(handle.module, handle.inputs)
    with pytest.raises(ConfigError, match="would overwrite or contain"):  # the one output check (steelyard.outputs)
        save_artifact(model, handle, Path(handle.path) / "inside")
