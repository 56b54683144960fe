"""``profile`` end to end on tiny models, the 7B catalog config, model sources and bad input.

Tiny models are built from config dicts (random weights, no network). Expected counts are
closed forms of the architecture, written next to each assertion.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch

from steelyard.errors import (
    ConfigError,
    CorruptWeightsError,
    HardwareError,
    InputShapeError,
    ModelSourceError,
    SteelyardError,
    TooLargeError,
    UnsupportedConfigError,
)
from steelyard.families.geometry import kv_cache
from steelyard.models import InputSpec, LoadConfig, load_model
from steelyard.models.catalog import find_entry
from steelyard.profiling.profile import ProfileConfig, profile
from steelyard.profiling.report import CostReport
from tiny_configs import GPT2

NO_MEASURE = ProfileConfig(measure=False, hardware=())

BERT = {
    "model_type": "bert",
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "vocab_size": 100,
    "max_position_embeddings": 64,
}
LLAMA_GQA = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 100,
    "max_position_embeddings": 64,
    "tie_word_embeddings": False,
    "bos_token_id": 0,
    "eos_token_id": 0,
}


def write_config(folder: Path, config: dict, name: str = "config.json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(config))
    return path


_module_ids = itertools.count()


def write_factory(tmp_path: Path, monkeypatch, body: str) -> str:
    """Write a module with the given source into tmp_path and return its unique import name."""
    name = f"steelyard_test_factory_{next(_module_ids)}"
    (tmp_path / f"{name}.py").write_text("import torch\nfrom torch import nn\n\n" + body)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def assert_rows_sum_to_total(report: CostReport) -> None:
    rows = report.compute.top_modules
    assert sum(float(r.flops) for r in rows) == float(report.compute.flops)
    assert sum(float(r.macs) for r in rows) == float(report.compute.macs)
    assert sum(float(r.other_flops) for r in rows) == float(report.compute.other_flops)
    assert sum(r.share for r in rows) == pytest.approx(1.0)


# -- config only: meta device, counted, never timed --------------------------------------------
@pytest.mark.parametrize("config", [BERT, GPT2, LLAMA_GQA], ids=["bert", "gpt2", "llama"])
def test_config_only_is_counted_not_measured(tmp_path, config):
    handle = load_model(str(write_config(tmp_path, config)), LoadConfig(inputs=InputSpec(2, 16)))
    assert handle.on_meta
    report = profile(handle, ProfileConfig(hardware=("t4",)))  # measure=True is ignored on meta
    assert report.on_meta
    assert report.measured is None
    assert report.energy is None
    assert report.parameters.nonzero is None  # no values to inspect on meta
    assert report.compute.macs > 0
    assert report.compute.uncounted_ops == {}
    assert any("config only" in a for a in report.assumptions)
    assert report.environment.device == "meta"
    assert [v.hardware for v in report.hardware] == ["t4"]
    assert_rows_sum_to_total(report)


def test_gpt2_params_and_flops_closed_form_and_tied_embeddings(tmp_path):
    handle = load_model(str(write_config(tmp_path, GPT2)), LoadConfig(inputs=InputSpec(2, 16)))
    assert handle.task == "causal-lm"
    report = profile(handle, NO_MEASURE)
    b, s, d, n_layers, vocab, positions = 2, 16, 32, 2, 100, 64
    # per block: 2 LayerNorms (2d each) + c_attn (d·3d + 3d) + c_proj (d·d + d) + c_fc (d·4d + 4d) + proj (4d·d + d)
    block = 2 * 2 * d + (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d)
    params = vocab * d + positions * d + n_layers * block + 2 * d  # lm_head shares wte: counted once
    assert report.parameters.total == params == 30720
    assert report.parameters.tied == vocab * d  # lm_head.weight is wte.weight
    assert report.storage.parameters == 4 * params
    # MACs: 12·d² per token per block, the LM head V·d per token, attention 2·s²·d per block (full)
    macs = b * s * (n_layers * 12 * d * d + vocab * d) + n_layers * 2 * b * s * s * d
    assert report.compute.macs == macs
    assert report.compute.flops == 2 * macs
    assert report.compute.causal_attention == "full"
    # KV cache per token: K and V, per layer, d values each, float32
    assert report.memory.kv_cache_per_token == 2 * n_layers * d * 4
    assert report.memory.kv_cache_per_sequence == 2 * n_layers * d * 4 * s


def test_causal_visible_counts_less_attention(tmp_path):
    handle = load_model(str(write_config(tmp_path, GPT2)), LoadConfig(inputs=InputSpec(1, 16)))
    full = profile(handle, NO_MEASURE).compute
    visible = profile(handle, ProfileConfig(measure=False, hardware=(), causal_attention="visible")).compute
    assert visible.causal_attention == "visible"
    assert visible.macs_by_category["matmul"] == full.macs_by_category["matmul"]
    # GPT-2 attends causally, so the visible count keeps (s+1)/(2s) of the score matrix or less
    assert visible.macs_by_category["attention"] < full.macs_by_category["attention"]


def test_breakdown_rows_sum_with_other_row(tmp_path):
    handle = load_model(str(write_config(tmp_path, GPT2)), LoadConfig(inputs=InputSpec(2, 16)))
    report = profile(handle, ProfileConfig(measure=False, hardware=(), top_n=2, breakdown_depth=3))
    rows = report.compute.top_modules
    assert len(rows) == 3
    assert rows[-1].name.startswith("(other ")
    assert_rows_sum_to_total(report)
    # the top rows are ordered by work
    assert 2 * rows[0].macs + rows[0].other_flops >= 2 * rows[1].macs + rows[1].other_flops


def test_gqa_llama_uses_kv_heads(tmp_path):
    handle = load_model(str(write_config(tmp_path, LLAMA_GQA)), LoadConfig(inputs=InputSpec(1, 16)))
    report = profile(handle, NO_MEASURE)
    b, s, d, heads, kv_heads, inter, n_layers, vocab = 1, 16, 32, 4, 2, 64, 2, 100
    hd = d // heads
    per_layer = d * d + 2 * d * kv_heads * hd + d * d + 3 * d * inter + 2 * d  # q, k+v, o, MLP, 2 RMSNorms
    assert report.parameters.total == vocab * d + n_layers * per_layer + d + vocab * d
    assert report.parameters.tied == 0
    assert report.memory.kv_cache_per_token == 2 * n_layers * kv_heads * hd * 4
    proj = b * s * (n_layers * (d * d + 2 * d * kv_heads * hd + d * d + 3 * d * inter) + vocab * d)
    attention = n_layers * b * heads * s * s * 2 * hd  # every query head does full work
    assert report.compute.macs_by_category["attention"] == attention
    assert report.compute.macs_by_category["matmul"] == proj
    assert report.compute.macs == proj + attention


def test_catalog_gqa_config_kv_cache():
    llama3 = find_entry("llama-3-8b").build_config()
    assert llama3.num_key_value_heads == 8
    # 2 (K, V) × 32 layers × 8 KV heads × 128 head dim × 2 bytes (bf16)
    assert kv_cache(llama3, 8, 2).per_token == 2 * 32 * 8 * 128 * 2
    llama2 = find_entry("llama-2-7b").build_config()
    assert kv_cache(llama2, 8, 2).per_token == 4 * kv_cache(llama3, 8, 2).per_token


# -- Llama-2-7B on the meta device -------------------------------------------------------------
@pytest.fixture(scope="module")
def llama7b_report() -> CostReport:
    handle = load_model("llama-2-7b", LoadConfig(config_only=True, inputs=InputSpec(1, 2048)))
    assert handle.on_meta and handle.source_kind == "catalog"
    return profile(handle, ProfileConfig(hardware=("a100-80gb", "t4")))


def test_llama7b_params(llama7b_report):
    assert llama7b_report.parameters.total == pytest.approx(6.74e9, rel=1e-3)
    assert llama7b_report.parameters.total == find_entry("llama-2-7b").reference_params
    assert llama7b_report.parameters.tied == 0
    assert llama7b_report.measured is None


def test_llama7b_flops_match_closed_form(llama7b_report):
    n = llama7b_report.parameters.total
    layers, s, d, vocab = 32, 2048, 4096, 32000
    # Forward FLOPs of a dense decoder (Kaplan et al. 2020, C_fwd ≈ 2N + 2·L·s·d per token):
    #  * every weight matrix is used once per token: 2 FLOPs per weight per token, 2·N_nonembed·s
    #    in all, where N_nonembed = N − V·d leaves out the input embedding (a lookup, no FLOPs)
    #    but keeps the LM head (a real V×d matmul); norms add a negligible 2·(2L+1)·d.
    #  * attention per layer: Q·Kᵀ and P·V are s·s·d multiply-adds each → 4·s²·d FLOPs,
    #    counted over the full score matrix (causal_attention="full").
    closed = 2 * (n - vocab * d) * s + 4 * layers * s * s * d
    assert float(llama7b_report.compute.flops) == pytest.approx(closed, rel=0.01)
    assert llama7b_report.compute.macs_by_category["attention"] == layers * 2 * s * s * d
    assert llama7b_report.compute.uncounted_ops == {}


def test_llama7b_memory_and_verdicts(llama7b_report):
    mem = llama7b_report.memory
    # K and V × 32 layers × 32 heads × 128 head dim × 4 bytes (the handle is float32)
    assert mem.kv_cache_per_token == 2 * 32 * 32 * 128 * 4
    assert mem.kv_cache_per_sequence == mem.kv_cache_per_token * 2048
    assert mem.weights == 4 * llama7b_report.parameters.total
    assert mem.training is not None and mem.training.total > mem.weights
    verdicts = {v.hardware: v for v in llama7b_report.hardware}
    assert verdicts["a100-80gb"].fits_inference
    assert not verdicts["t4"].fits_inference
    assert verdicts["t4"].devices_for_inference >= 2
    needs = llama7b_report.data_needs
    assert needs is not None and needs.compute_optimal_tokens == 20 * llama7b_report.parameters.total
    assert_rows_sum_to_total(llama7b_report)


# -- a real (random-weight) model, measured ----------------------------------------------------
@pytest.fixture(scope="module")
def saved_bert(tmp_path_factory) -> Path:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("bert")
    config = BertConfig(
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=256,
        vocab_size=1000,
        max_position_embeddings=256,
    )
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def measured_report(saved_bert) -> CostReport:
    handle = load_model(str(saved_bert), LoadConfig(inputs=InputSpec(16, 128)))
    assert not handle.on_meta and handle.source_kind == "local"
    # One thread: on a shared 2-core CI machine a 2-thread parallel region stalls on whichever
    # core is busy elsewhere, which makes single timings erratic; one thread just time-shares.
    return profile(handle, ProfileConfig(runs=5, warmup=1, threads=1, hardware=("local",), batch_sweep=(1, 16)))


def test_measured_latency_stats_consistent(measured_report):
    m = measured_report.measured
    assert m is not None
    lat = m.latency
    assert lat.runs == 5 and lat.warmup == 1 and lat.batch_size == 16
    assert 0 < lat.minimum <= lat.median <= lat.p90 <= lat.p99 <= lat.maximum
    assert lat.minimum <= lat.mean <= lat.maximum
    assert lat.cv >= 0 and lat.std >= 0
    assert lat.threads == 1  # fixed for the run and recorded
    assert lat.timer == "perf_counter"
    assert m.peak_memory > 0 and m.peak_memory_kind == "rss"
    assert m.achieved_flops_per_second > 0
    assert measured_report.energy is not None and measured_report.energy.joules_per_batch > 0


def test_measured_throughput_sweep_is_monotone_in_latency(measured_report):
    points = measured_report.measured.throughput
    assert [p.batch_size for p in points] == [1, 16]
    for p in points:
        assert p.samples_per_second == pytest.approx(p.batch_size / float(p.latency_per_batch))
    # 16 rows of 128 tokens are ~16× the work of one: reliably slower on 2 cores
    assert points[1].latency_per_batch > points[0].latency_per_batch, points


def test_measured_report_environment_and_storage(measured_report, saved_bert):
    env = measured_report.environment
    assert env.cpu_model and env.hostname and env.platform and env.python
    assert env.torch == torch.__version__
    assert env.transformers
    assert env.physical_cores >= 1 and env.logical_cores >= env.physical_cores
    assert env.threads >= 1 and env.ram > 0
    assert env.device == "cpu"
    weights = saved_bert / "model.safetensors"
    assert measured_report.storage.on_disk == weights.stat().st_size
    assert measured_report.storage.files == [str(weights)]
    assert measured_report.parameters.nonzero is not None
    assert 0 < measured_report.parameters.nonzero <= measured_report.parameters.total
    assert [v.hardware for v in measured_report.hardware] == ["local"]
    assert measured_report.input.seq_len == 128 and measured_report.input.batch_size == 16


def test_report_json_round_trip(measured_report):
    data = json.loads(json.dumps(measured_report.to_dict()))
    again = CostReport.from_dict(data)
    assert again == measured_report
    assert type(again.compute.flops) is type(measured_report.compute.flops)
    assert type(again.measured.latency.median) is type(measured_report.measured.latency.median)


def test_config_only_folder_still_reports_file_size(saved_bert):
    handle = load_model(str(saved_bert), LoadConfig(config_only=True, inputs=InputSpec(1, 8)))
    assert handle.on_meta
    report = profile(handle, NO_MEASURE)
    assert report.measured is None
    assert report.storage.on_disk == (saved_bert / "model.safetensors").stat().st_size


# -- factories ---------------------------------------------------------------------------------
def test_factory_source(tmp_path, monkeypatch):
    name = write_factory(
        tmp_path,
        monkeypatch,
        "def make():\n"
        "    net = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 3))\n"
        "    return net, torch.randn(4, 10)\n",
    )
    handle = load_model(f"{name}:make")
    assert handle.source_kind == "factory" and handle.task == "feature-extraction"
    assert not handle.on_meta
    report = profile(handle, NO_MEASURE)
    assert report.parameters.total == 10 * 20 + 20 + 20 * 3 + 3
    assert report.compute.macs == 4 * (10 * 20 + 20 * 3)
    # the ReLU, and the two bias adds (1 FLOP per output element each)
    assert report.compute.other_flops_by_category == {"elementwise": 4 * 20 + 4 * 20 + 4 * 3}
    assert report.input.shapes == {"input0": [4, 10]}
    assert report.memory.kv_cache_per_token is None
    assert_rows_sum_to_total(report)


def test_failed_training_trace_is_unknown_not_a_verdict(tmp_path, monkeypatch):
    """A model whose training forward fails: fine-tune shows "unknown: <why>", never "no (batch too big)"."""
    name = write_factory(
        tmp_path,
        monkeypatch,
        "class NoTrain(nn.Linear):\n"
        "    def forward(self, x):\n"
        "        if torch.is_grad_enabled():\n"
        "            raise RuntimeError('backward is not supported here')\n"
        "        return super().forward(x)\n\n"
        "def make():\n"
        "    return NoTrain(8, 3), torch.randn(2, 8)\n",
    )
    report = profile(load_model(f"{name}:make"), ProfileConfig(measure=False, hardware=("t4",)))
    assert report.memory.training is None
    assert "backward is not supported here" in report.memory.training_unknown
    (v,) = report.hardware
    assert v.finetune_unknown == report.memory.training_unknown and not v.fits_finetune
    assert not any("traced on this batch" in a for a in report.assumptions)
    assert any(a.startswith("training memory: unknown") for a in report.assumptions)
    from rich.console import Console

    from steelyard.reporting.console import render_cost_report

    console = Console(record=True, width=400)
    render_cost_report(report, console)
    text = console.export_text()
    assert "unknown: training-memory trace failed" in text and "batch too big" not in text


def test_factory_with_input_shape(tmp_path, monkeypatch):
    name = write_factory(tmp_path, monkeypatch, "def make():\n    return nn.Linear(6, 2)\n")
    handle = load_model(f"{name}:make", LoadConfig(input_shapes=((3, 6),)))
    assert profile(handle, NO_MEASURE).compute.macs == 3 * 6 * 2


# -- bad input: one clear error each ----------------------------------------------------------
def test_unknown_model_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelSourceError, match="not found"):
        load_model("no-such-org/no-such-model-xyz")
    with pytest.raises(ModelSourceError, match="llama-2-7b"):  # a close catalog name is suggested
        load_model("lama-2-7b")


def test_catalog_name_without_config_only():
    with pytest.raises(ModelSourceError, match="--config-only"):
        load_model("llama-2-7b")


def test_factory_that_raises(tmp_path, monkeypatch):
    name = write_factory(tmp_path, monkeypatch, "def make():\n    raise RuntimeError('boom in factory')\n")
    with pytest.raises(ModelSourceError, match="raised RuntimeError: boom in factory"):
        load_model(f"{name}:make")


def test_factory_returning_non_module(tmp_path, monkeypatch):
    name = write_factory(tmp_path, monkeypatch, "def make():\n    return 42\n")
    with pytest.raises(ModelSourceError, match=r"not a torch\.nn\.Module"):
        load_model(f"{name}:make")


def test_factory_missing_function_or_module(tmp_path, monkeypatch):
    name = write_factory(tmp_path, monkeypatch, "def make():\n    return nn.Linear(1, 1)\n")
    with pytest.raises(ModelSourceError, match="cannot import factory"):
        load_model(f"{name}:nope")
    with pytest.raises(ModelSourceError, match="cannot import factory"):
        load_model("steelyard_no_such_module_xyz:make")


def test_factory_without_inputs(tmp_path, monkeypatch):
    name = write_factory(tmp_path, monkeypatch, "def make():\n    return nn.Linear(4, 2)\n")
    with pytest.raises(InputShapeError, match="--input-shape"):
        load_model(f"{name}:make")


def test_factory_input_the_model_rejects(tmp_path, monkeypatch):
    name = write_factory(tmp_path, monkeypatch, "def make():\n    return nn.Linear(4, 2)\n")
    handle = load_model(f"{name}:make", LoadConfig(input_shapes=((2, 5),)))
    with pytest.raises(InputShapeError, match=r"\[2, 5\]"):
        profile(handle, NO_MEASURE)


@pytest.mark.parametrize("as_folder", [True, False], ids=["folder", "json-file"])
def test_unknown_model_type(tmp_path, as_folder):
    path = write_config(tmp_path, {"model_type": "no_such_type_xyz", "hidden_size": 8})
    with pytest.raises(UnsupportedConfigError, match="no_such_type_xyz"):
        load_model(str(tmp_path if as_folder else path))


def test_config_without_model_type(tmp_path):
    path = write_config(tmp_path, {"hidden_size": 8}, name="c.json")
    with pytest.raises(UnsupportedConfigError, match="model_type"):
        load_model(str(path))


def test_sequence_longer_than_positions(tmp_path):
    path = write_config(tmp_path, GPT2)
    with pytest.raises(ConfigError, match="exceeds the model's maximum of 64"):
        load_model(str(path), LoadConfig(inputs=InputSpec(1, 100)))


@pytest.fixture
def saved_gpt2(tmp_path) -> Path:
    from transformers import AutoConfig, GPT2LMHeadModel

    cfg = dict(GPT2)
    config = AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    folder = tmp_path / "gpt2"
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def test_corrupted_weights(saved_gpt2):
    (saved_gpt2 / "model.safetensors").write_bytes(b"this is not a safetensors file" * 10)
    with pytest.raises(CorruptWeightsError, match="cannot read the weights"):
        load_model(str(saved_gpt2))


def test_too_large_for_ram(saved_gpt2, monkeypatch):
    import steelyard.models.hf as hf

    monkeypatch.setattr(hf, "RAM_HEADROOM", 1e-12)
    with pytest.raises(TooLargeError, match="--config-only"):
        load_model(str(saved_gpt2))
    # the suggested way out works: weigh it on the meta device
    assert load_model(str(saved_gpt2), LoadConfig(config_only=True, inputs=InputSpec(1, 8))).on_meta


def test_saved_gpt2_loads_with_real_weights(saved_gpt2):
    handle = load_model(str(saved_gpt2), LoadConfig(inputs=InputSpec(1, 8)))
    assert not handle.on_meta and handle.task == "causal-lm"
    report = profile(handle, NO_MEASURE)
    assert report.parameters.tied == 100 * 32
    assert report.storage.on_disk == (saved_gpt2 / "model.safetensors").stat().st_size


def test_unknown_hardware(tmp_path):
    handle = load_model(str(write_config(tmp_path, BERT)), LoadConfig(inputs=InputSpec(1, 8)))
    with pytest.raises(HardwareError, match="unknown hardware 'tpu-v9'"):
        profile(handle, ProfileConfig(hardware=("tpu-v9",)))


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: LoadConfig(dtype="float64"), ConfigError, "unknown dtype"),
        (lambda: LoadConfig(task="translation"), ConfigError, "unknown task"),
        (lambda: InputSpec(batch_size=0), ConfigError, "batch size"),
        (lambda: InputSpec(seq_len=0), ConfigError, "sequence length"),
        (lambda: ProfileConfig(runs=0), ConfigError, "runs"),
        (lambda: ProfileConfig(threads=0), ConfigError, "threads"),
    ],
)
def test_bad_config_values(build, error, message):
    with pytest.raises(error, match=message) as info:
        build()
    assert isinstance(info.value, SteelyardError)
    assert "\n" not in str(info.value)  # one line, fit to print


def test_every_load_error_is_a_steelyard_error():
    for cls in (ModelSourceError, UnsupportedConfigError, InputShapeError, CorruptWeightsError, TooLargeError):
        assert issubclass(cls, SteelyardError)
        assert cls.exit_code != 0
