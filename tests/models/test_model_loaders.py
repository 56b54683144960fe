"""The model loader registry: one conformance test per registered loader, generated from the registry.

Every loader gets a tiny source it must accept (``detect`` says yes, ``load_model`` picks that loader
and the handle is usable) and sources it must refuse. A loader registered without samples here fails
``test_every_loader_has_samples``, so a new format cannot land untested.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from steelyard.errors import ConfigError, ModelSourceError
from steelyard.models import InputSpec, LoadConfig, ModelHandle, load_model
from steelyard.models.registry import (
    BUILTIN,
    LoaderEntry,
    find_loader,
    loader_entries,
    register_loader,
    unregister_loader,
)
from tiny_configs import GPT2

SMALL = InputSpec(batch_size=1, seq_len=8)


def _gpt2_folder(root: Path) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    folder = root / "gpt2"
    GPT2LMHeadModel(GPT2Config(**{k: v for k, v in GPT2.items() if k != "model_type"})).save_pretrained(folder)
    return folder


def _factory(root: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (root / "loader_factory_mod.py").write_text(
        "import torch\nfrom torch import nn\n\ndef make():\n    return nn.Linear(3, 2), (torch.ones(1, 3),)\n"
    )
    monkeypatch.syspath_prepend(str(root))
    return "loader_factory_mod:make"


def _config_file(root: Path) -> Path:
    path = root / "tiny.json"
    path.write_text(json.dumps(GPT2))
    return path


def _compressed(root: Path, backend: str) -> Path:
    from steelyard.compression import DynamicQuantConfig, compress

    handle = load_model(str(_gpt2_folder(root)), LoadConfig(inputs=SMALL))
    result = compress(handle, DynamicQuantConfig(backend=backend))
    return result.save(root / ("model.onnx" if backend == "onnxruntime" else "int8"))


def _fp16(root: Path) -> Path:
    """A compressed folder its config describes (fp16 weights): a plain save_pretrained folder plus the manifest."""
    from steelyard.compression import CastConfig, compress

    handle = load_model(str(_gpt2_folder(root)), LoadConfig(inputs=SMALL))
    return compress(handle, CastConfig(dtype="float16")).save(root / "fp16")


def _hub_cache(root: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An offline hub cache holding ``steelyard-test/tiny-gpt2`` (config only), as the hub client lays it out."""
    import huggingface_hub.constants

    cache = root / "hub"
    snapshot = cache / "models--steelyard-test--tiny-gpt2" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps(GPT2))
    (cache / "models--steelyard-test--tiny-gpt2" / "refs").mkdir()
    (cache / "models--steelyard-test--tiny-gpt2" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return "steelyard-test/tiny-gpt2"


@dataclass
class Samples:
    """A source the loader takes (built in a temporary folder) and what the handle must look like."""

    accept: Callable[[Path, pytest.MonkeyPatch], str]
    cfg: LoadConfig
    kind: str
    #: Sources (built in the same folder) and configs the loader must not take.
    reject: Callable[[Path], list[tuple[str, LoadConfig]]]


def _no_paths(root: Path) -> list[tuple[str, LoadConfig]]:
    return [(str(_gpt2_folder(root)), LoadConfig()), (str(_config_file(root)), LoadConfig())]


SAMPLES: dict[str, Samples] = {
    "factory": Samples(
        lambda root, mp: _factory(root, mp), LoadConfig(), "factory",
        lambda root: [("no-colon-here", LoadConfig()), ("pkg.mod:fn two", LoadConfig()),
                      *_no_paths(root)],
    ),
    "onnx-file": Samples(
        lambda root, mp: str(_compressed(root, "onnxruntime")), LoadConfig(inputs=SMALL), "local",
        lambda root: [(str(_compressed(root, "onnxruntime")), LoadConfig(config_only=True)), *_no_paths(root)],
    ),
    "compressed-folder": Samples(
        lambda root, mp: str(_compressed(root, "torch")), LoadConfig(inputs=SMALL), "local",
        # config only: a plain compressed folder is the folder loader's (a guarded int8 one stays here)
        lambda root: [(str(_fp16(root)), LoadConfig(config_only=True)), *_no_paths(root)],
    ),
    "config-file": Samples(
        lambda root, mp: str(_config_file(root)), LoadConfig(inputs=SMALL), "config",
        lambda root: [(str(_gpt2_folder(root)), LoadConfig()), (str(root / "missing.json"), LoadConfig())],
    ),
    "folder": Samples(
        lambda root, mp: str(_gpt2_folder(root)), LoadConfig(inputs=SMALL), "local",
        lambda root: [(str(root), LoadConfig()), (str(_config_file(root)), LoadConfig())],
    ),
    "catalog": Samples(
        lambda root, mp: "bert-base-uncased", LoadConfig(config_only=True, inputs=SMALL), "catalog",
        lambda root: [("no-such-architecture-xyz", LoadConfig(config_only=True)), *_no_paths(root)],
    ),
    "hub": Samples(
        lambda root, mp: _hub_cache(root, mp), LoadConfig(config_only=True, inputs=SMALL), "hub",
        lambda root: _no_paths(root),
    ),
}


def test_every_loader_has_samples():
    assert [e.name for e in loader_entries()] == [e.name for e in BUILTIN]
    assert set(SAMPLES) == {e.name for e in loader_entries()}


@pytest.mark.parametrize("name", [e.name for e in BUILTIN])
def test_loader_accepts_its_source(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    samples = SAMPLES[name]
    source = samples.accept(tmp_path, monkeypatch)
    found = find_loader(source, samples.cfg)
    assert found is not None and found[0] == name  # the registry order sends it to this loader
    handle = load_model(source, samples.cfg)
    assert isinstance(handle, ModelHandle)
    assert handle.source_kind == samples.kind
    if handle.on_meta:
        assert sum(p.numel() for p in handle.module.parameters()) > 0
    else:
        with torch.inference_mode():
            assert handle.forward() is not None


@pytest.mark.parametrize("name", [e.name for e in BUILTIN])
def test_loader_rejects_other_sources(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    loader = next(e for e in loader_entries() if e.name == name).resolve()
    rejected = SAMPLES[name].reject(tmp_path)
    assert rejected
    for source, cfg in rejected:
        assert not loader.detect(source, cfg), (name, source, cfg)


def test_catalog_key_without_config_only_names_the_hub_id():
    with pytest.raises(ModelSourceError, match="--config-only"):
        load_model("bert-base-uncased")


def test_existing_path_that_is_no_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    assert find_loader(str(tmp_path / "notes.txt"), LoadConfig()) is None
    with pytest.raises(ModelSourceError, match="neither a model folder"):
        load_model(str(tmp_path / "notes.txt"))


class _Doubler:
    """A plug-in loader for ``double:N`` sources: a Linear whose weights double its input."""

    def detect(self, source: str, cfg: LoadConfig) -> bool:
        return source.startswith("double:") and source[7:].isdigit()

    def load(self, source: str, cfg: LoadConfig) -> ModelHandle:
        n = int(source[7:])
        module = torch.nn.Linear(n, n, bias=False)
        with torch.no_grad():
            module.weight.copy_(2 * torch.eye(n))
        return ModelHandle(source, "factory", "feature-extraction", module, (torch.ones(1, n),))


def test_a_registered_loader_is_tried_before_the_hub():
    register_loader("doubler", _Doubler())
    try:
        assert [e.name for e in loader_entries()][-2:] == ["doubler", "hub"]
        with pytest.raises(ConfigError, match="already registered"):
            register_loader("doubler", _Doubler())
        handle = load_model("double:3")
        assert torch.equal(handle.forward(), torch.full((1, 3), 2.0))
    finally:
        unregister_loader("doubler")
    assert "doubler" not in {e.name for e in loader_entries()}


def test_lazy_entries_resolve_to_loaders():
    bad = LoaderEntry("bad", "steelyard.models.tasks:TASKS")
    with pytest.raises(TypeError, match="not a Loader"):
        bad.resolve()
    with pytest.raises(ConfigError, match="no model loader named"):
        register_loader("x", _Doubler(), before="nope")
