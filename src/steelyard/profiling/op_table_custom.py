"""User-registered cost formulas: ``CostCounter(custom_mapping=...)`` and :func:`register_formula`.

The calling convention is ``torch.utils.flop_counter.FlopCounterMode``'s, so a formula written
for torch works here unchanged: unless it is marked raw (``get_raw=True`` or an attribute
``fn._get_raw = True``), every tensor in the op's args, kwargs and output is replaced by its shape
and the formula is called as ``fn(*arg_shapes, out_shape=out_shape, **kwarg_shapes)``; a raw
formula gets the tensors themselves as ``fn(*args, out_val=out, **kwargs)``. It returns FLOPs.

steelyard keeps matrix work (MACs, 1 MAC = 2 FLOPs) apart from elementwise work ("other FLOPs"),
so a formula also says which kind it returns. ``kind="matrix"`` (the default, and what torch's own
formulas return) turns the FLOPs into MACs; an odd count is refused rather than rounded.

Targets are op overload packets (``torch.ops.mylib.foo``, ``torch.ops.aten.add``), a single
overload, the object ``torch.library.custom_op`` returns, or an ``autograd.Function`` subclass
(whose ``forward`` is then counted whole, in place of the ops it runs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch.utils._pytree import tree_map

FormulaKind = Literal["matrix", "other"]


@dataclass(frozen=True)
class OpFormula:
    """One user formula and how to book what it returns."""

    fn: Callable[..., int]
    kind: FormulaKind = "matrix"
    category: str = "custom"
    get_raw: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("matrix", "other"):
            raise ValueError(f"formula kind must be 'matrix' or 'other', got {self.kind!r}")

    def flops(self, args: Any, kwargs: dict[str, Any], out: Any) -> int:
        """FLOPs in torch's convention, called as ``FlopCounterMode`` would call ``fn``."""
        if self.get_raw or getattr(self.fn, "_get_raw", False):
            return int(self.fn(*args, out_val=out, **kwargs))
        shape_args, shape_kwargs, out_shape = tree_map(_shape_of, (tuple(args), dict(kwargs), out))
        return int(self.fn(*shape_args, out_shape=out_shape, **shape_kwargs))

    def cost(self, args: Any, kwargs: dict[str, Any], out: Any) -> tuple[int, int]:
        """(MACs, other FLOPs) of one call."""
        flops = self.flops(args, kwargs, out)
        if self.kind == "other":
            return 0, flops
        if flops % 2:
            raise ValueError(
                f"matrix formula {getattr(self.fn, '__name__', self.fn)!r} returned an odd FLOP count ({flops}); "
                "matrix FLOPs are 2 per MAC. Register it with kind='other' if it is elementwise work."
            )
        return flops // 2, 0


def _shape_of(x: Any) -> Any:
    return x.shape if isinstance(x, torch.Tensor) else x


def target_key(target: Any) -> Any:
    """The key a target is stored under: its overload packet, or the Function class itself."""
    if isinstance(target, type) and issubclass(target, torch.autograd.Function):
        return target
    if isinstance(target, torch._ops.OpOverloadPacket):
        return target
    if isinstance(target, torch._ops.OpOverload):
        return target.overloadpacket
    opoverload = getattr(target, "_opoverload", None)  # torch.library.custom_op's CustomOpDef
    if isinstance(opoverload, torch._ops.OpOverload):
        return opoverload.overloadpacket
    if callable(target):  # a Python-level function such as F.scaled_dot_product_attention
        return target
    raise TypeError(f"cannot key a cost formula on {target!r} ({type(target).__name__})")


def as_formula(value: Any) -> OpFormula:
    """A plain callable is a torch-convention matrix formula; an :class:`OpFormula` passes as is."""
    if isinstance(value, OpFormula):
        return value
    if not callable(value):
        raise TypeError(f"a cost formula must be callable or an OpFormula, got {value!r}")
    return OpFormula(value)


def formula_table(custom_mapping: Mapping[Any, Any] | None) -> dict[Any, OpFormula]:
    """The global registry overlaid with one counter's ``custom_mapping`` (which wins)."""
    table = dict(_REGISTRY)
    for target, value in (custom_mapping or {}).items():
        table[target_key(target)] = as_formula(value)
    return table


_REGISTRY: dict[Any, OpFormula] = {}


def register_formula(
    targets: Any,
    fn: Callable[..., int] | None = None,
    *,
    kind: FormulaKind = "matrix",
    category: str = "custom",
    get_raw: bool = False,
) -> Any:
    """Register ``fn`` for every counter, as ``torch.utils.flop_counter.register_flop_formula`` does.

    Usable as a decorator (``@register_formula(torch.ops.mylib.foo)``) or called with ``fn``.
    A target registered twice is an error (unregister it first), as in torch.
    """

    def register(f: Callable[..., int]) -> Callable[..., int]:
        formula = OpFormula(f, kind=kind, category=category, get_raw=get_raw)
        items = list(targets) if isinstance(targets, (list, tuple)) else [targets]
        keys = [target_key(t) for t in items]
        for key in keys:
            if key in _REGISTRY:
                raise RuntimeError(f"duplicate cost formula registration for {key}")
        for key in keys:
            _REGISTRY[key] = formula
        return f

    return register(fn) if fn is not None else register


def unregister_formula(targets: Any) -> None:
    """Remove global registrations (missing ones are ignored)."""
    items: Iterable[Any] = targets if isinstance(targets, (list, tuple)) else [targets]
    for t in items:
        _REGISTRY.pop(target_key(t), None)


def function_classes(table: Mapping[Any, OpFormula]) -> list[type[torch.autograd.Function]]:
    """The ``autograd.Function`` subclasses among a table's targets."""
    return [k for k in table if isinstance(k, type) and issubclass(k, torch.autograd.Function)]
