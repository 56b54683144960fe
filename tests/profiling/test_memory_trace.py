"""The training-memory trace must not change the model it inspects."""

from __future__ import annotations

import torch
from torch import nn

from steelyard.models.handle import ModelHandle
from steelyard.profiling.memory import meta_twin, saved_activation_bytes, training_memory


def _bn_handle() -> ModelHandle:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 4))
    return ModelHandle(name="bn", source_kind="factory", task="feature-extraction", module=module.eval(),
                       inputs=(torch.randn(2, 3, 8, 8),))


def test_trace_restores_batchnorm_statistics_and_mode():
    handle = _bn_handle()
    before = {k: v.clone() for k, v in handle.module.state_dict().items()}
    assert saved_activation_bytes(handle) > 0
    after = handle.module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not handle.module.training


def test_saved_activations_of_a_linear_chain_by_hand():
    """Linear → ReLU → Linear on a (4, 16) batch saves the input of each layer that needs it.

    The first Linear's input is the handle's input (excluded: counted as input). ReLU saves its
    output (4×32 floats); the second Linear saves its input, the same ReLU output tensor
    (counted once). 4·32·4 bytes = 512.
    """
    module = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 2))
    handle = ModelHandle(name="mlp", source_kind="factory", task="feature-extraction", module=module,
                         inputs=(torch.randn(4, 16),))
    assert saved_activation_bytes(handle) == 4 * 32 * 4


def test_factory_has_no_meta_twin_but_hf_config_does():
    assert meta_twin(_bn_handle()) is None
    from steelyard.models import LoadConfig, load_model
    from steelyard.models.tasks import InputSpec

    handle = load_model("gpt2", LoadConfig(config_only=True, inputs=InputSpec(1, 8)))
    assert meta_twin(handle) is handle


def test_training_memory_components_by_hand():
    module = nn.Linear(10, 10)  # 110 parameters
    handle = ModelHandle(name="lin", source_kind="factory", task="feature-extraction", module=module,
                         inputs=(torch.randn(1, 10),))
    mem = training_memory(handle, optimizer="adamw", precision="float32", activations=0)
    assert (mem.weights, mem.gradients, mem.optimizer_states) == (440, 440, 880)
    sgd = training_memory(handle, optimizer="sgd", precision="mixed", activations=0)
    assert (sgd.weights, sgd.gradients, sgd.optimizer_states) == (110 * 6, 110 * 2, 110 * 4)
