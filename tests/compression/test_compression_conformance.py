"""One conformance test generated from the method registry: every method on a tiny text model and
a tiny CNN (and on every backend a method offers). Where a method applies, it must give finite
outputs, leave the original untouched and survive save → load bit for bit; where it does not
(registry's ``applies_to``), it must raise NotApplicableError.
"""

from __future__ import annotations

import dataclasses
import math
import typing

import pytest
import torch

from compression_toys import outputs, tiny_bert, tiny_resnet
from steelyard.compression import METHODS, NotApplicableError, compress, load_compressed, make_config
from steelyard.compression.registry import config_class

MODELS = {"transformer": tiny_bert, "cnn": tiny_resnet}


def _cases() -> list:
    cases = []
    for name, entry in METHODS.items():
        cls = config_class(name)
        hints = typing.get_type_hints(cls)
        backends = [None]
        if any(f.name == "backend" for f in dataclasses.fields(cls)):
            backends = list(typing.get_args(hints["backend"]))
        for kind in MODELS:
            for backend in backends:
                applies = kind in entry.applies_to
                label = f"{name}{'-' + backend if backend else ''}-{kind}"
                cases.append(pytest.param(name, backend, kind, applies, id=label))
    return cases


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize(("name", "backend", "kind", "applies"), _cases())
def test_method_conformance(name, backend, kind, applies, tmp_path):
    for module in METHODS[name].requires:  # an optional extra's library
        pytest.importorskip(module)
    handle = MODELS[kind]()
    config = make_config(name, **({"backend": backend} if backend else {}))
    if not applies:
        with pytest.raises(NotApplicableError):
            compress(handle, config, data=[handle.inputs])
        return
    before = _snapshot(handle.module)
    result = compress(handle, config, data=[handle.inputs])
    # the original is untouched
    after = handle.module.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # the compressed model runs, finite, close enough to be the same model
    out = outputs(result.handle)
    assert torch.isfinite(out).all()
    assert result.fidelity is not None and not math.isnan(result.fidelity.sqnr_db)
    assert result.method == name and result.history[-1]["method"] == name
    assert result.notes
    assert result.params_after > 0 and result.bytes_after > 0
    # save → load gives the same outputs
    saved = result.save(tmp_path / "saved")
    assert (saved / "steelyard_compression.json").is_file()
    reloaded = load_compressed(saved)
    assert torch.equal(outputs(reloaded, result.handle.inputs), out)
