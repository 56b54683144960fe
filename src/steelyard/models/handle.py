"""ModelHandle: the one object that travels through every stage of steelyard."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

Inputs = dict[str, torch.Tensor] | tuple[torch.Tensor, ...]


@dataclass(repr=False)
class ModelHandle:
    """A model with the example inputs it is measured on, and where it came from.

    ``source_kind`` is one of "hub", "local", "factory", "config", "catalog". A handle whose
    parameters live on the meta device (``on_meta``) can be counted but not timed.
    """

    name: str
    source_kind: str
    task: str
    module: torch.nn.Module
    inputs: Inputs
    config: Any | None = None
    path: Path | None = None
    weights_files: list[Path] = field(default_factory=list)
    dtype: torch.dtype = torch.float32

    def __repr__(self) -> str:
        """One line: what the model is and what it is measured on (the default repr prints the whole module)."""
        params = sum(p.numel() for p in self.module.parameters())
        shapes = ", ".join(f"{name}={'×'.join(map(str, t.shape))}" for name, t in self._named_tensors())
        where = f", path={str(self.path)!r}" if self.path is not None and str(self.path) != self.name else ""
        return (f"ModelHandle({self.name!r}, {type(self.module).__name__}, task={self.task!r}, "
                f"source={self.source_kind!r}, {params:,} parameters, {str(self.dtype).removeprefix('torch.')} "
                f"on {self.device}, inputs: {shapes or 'none'}{where})")

    def _named_tensors(self) -> list[tuple[str, torch.Tensor]]:
        if isinstance(self.inputs, dict):
            return [(k, v) for k, v in self.inputs.items() if isinstance(v, torch.Tensor)]
        return [(f"#{i}", v) for i, v in enumerate(self.inputs) if isinstance(v, torch.Tensor)]

    @property
    def on_meta(self) -> bool:
        return any(p.is_meta for p in self.module.parameters()) or all(
            t.is_meta for t in self.input_tensors()
        )

    @property
    def device(self) -> torch.device:
        for p in self.module.parameters():
            return p.device
        return self.input_tensors()[0].device

    @property
    def batch_size(self) -> int:
        return int(self.input_tensors()[0].shape[0])

    def input_tensors(self) -> list[torch.Tensor]:
        values = self.inputs.values() if isinstance(self.inputs, dict) else self.inputs
        return [v for v in values if isinstance(v, torch.Tensor)]

    def forward(self, inputs: Inputs | None = None) -> Any:
        batch = self.inputs if inputs is None else inputs
        if isinstance(batch, dict):
            return self.module(**batch)
        return self.module(*batch)

    def inputs_for_batch(self, batch_size: int) -> Inputs:
        """The example inputs resized to ``batch_size`` rows (row 0 repeated)."""

        def resize(t: torch.Tensor) -> torch.Tensor:
            return t[:1].expand(batch_size, *t.shape[1:]).contiguous()

        if isinstance(self.inputs, dict):
            return {k: resize(v) if isinstance(v, torch.Tensor) else v for k, v in self.inputs.items()}
        return tuple(resize(v) for v in self.inputs)

    def with_inputs(self, inputs: Inputs) -> ModelHandle:
        return replace(self, inputs=inputs)

    def with_module(self, module: torch.nn.Module, inputs: Inputs | None = None) -> ModelHandle:
        """The same model description around another module (a compressed or meta copy)."""
        return replace(self, module=module, inputs=self.inputs if inputs is None else inputs)
