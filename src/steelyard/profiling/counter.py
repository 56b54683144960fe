"""Count FLOPs, MACs, bytes moved and live activation memory at the aten dispatch level.

Why dispatch level: functional calls, ``@`` and fused kernels all reach aten, so nothing
written as a Python function escapes the count (the trap of hook-based counters).

Attention is caught one level higher, at ``torch.nn.functional.scaled_dot_product_attention``,
because below it each device takes a different path: meta tensors decompose into bmm +
softmax, CPU tensors call a flash kernel that ``torch.utils.flop_counter`` does not know
(pytorch#195460). Counting the call itself from Q/K/V shapes gives one answer everywhere, in
``no_grad`` and ``inference_mode`` alike. Whether causal attention is counted over the full
score matrix or only its visible part is the explicit ``causal_attention`` option.

Users extend the tables with formulas of their own (``custom_mapping=``, or globally with
:func:`steelyard.profiling.op_table_custom.register_formula`, both in ``FlopCounterMode``'s calling
convention) and leave chosen ops out with ``ignore=``: those are listed as *ignored*, apart from
the ops no table knows, which are listed as *uncounted*.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch.multiprocessing.reductions import StorageWeakRef
from torch.nested._internal.nested_tensor import NestedTensor as _NestedTensor
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from steelyard.profiling import op_table, op_table_custom, op_table_quantized
from steelyard.profiling.op_table_custom import OpFormula

CausalCounting = Literal["full", "visible"]
#: Every matrix-class table (aten, quantized kernels) and their bias adds, merged once.
_MAC_OPS = {**op_table.MAC_OPS, **op_table_quantized.MAC_OPS}
_MAC_OP_EXTRAS = {**op_table.MAC_OP_EXTRAS, **op_table_quantized.MAC_OP_EXTRAS}
ROOT = ""  # path of work done outside any named submodule


@dataclass
class OpStat:
    """What one aten op (by name) cost over the whole run."""

    kind: str  # "mac" | "other" | "data" | "uncounted" | "attention" | "custom" | "ignored"
    calls: int = 0
    macs: int = 0
    other_flops: int = 0
    bytes_moved: int = 0


@dataclass
class ModuleStat:
    """Cost of one module. In :attr:`CountResult.modules` it is the work done directly in the
    module (not in its named children), so rows sum to the total; in :attr:`CountResult.inclusive`
    it is everything run while the module's forward was on the call stack (fvcore's "caller" mode)."""

    macs: int = 0
    other_flops: int = 0
    bytes_moved: int = 0
    macs_by_op: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    other_flops_by_op: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, op: str, macs: int, other: int, moved: int) -> None:
        self.macs += macs
        self.other_flops += other
        self.bytes_moved += moved
        if macs:
            self.macs_by_op[op] += macs
        if other:
            self.other_flops_by_op[op] += other


@dataclass
class CountResult:
    """Everything one counted run cost: totals by category, per op, per module (exclusive rows
    that sum to the totals, and inclusive ones by call stack), plus what could not be priced."""

    macs_by_category: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    other_flops_by_category: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    ops: dict[str, OpStat] = field(default_factory=dict)
    modules: dict[str, ModuleStat] = field(default_factory=lambda: defaultdict(ModuleStat))
    bytes_moved: int = 0
    peak_live_bytes: int = 0
    causal_attention: CausalCounting = "full"
    notes: dict[str, str] = field(default_factory=dict)  # op name -> why it is uncounted, when known
    #: Per module, everything run under its forward (ROOT: the whole run), backward included.
    inclusive: dict[str, ModuleStat] = field(default_factory=lambda: defaultdict(ModuleStat))
    #: Every name a shared module is reachable by, other than its first (canonical) one.
    aliases: dict[str, str] = field(default_factory=dict)
    #: Canonical names of the model's submodules, and those whose forward ran.
    module_names: list[str] = field(default_factory=list)
    called_modules: set[str] = field(default_factory=set)
    container_modules: set[str] = field(default_factory=set)  # ModuleList & co: indexed, never called

    @property
    def macs(self) -> int:
        return sum(self.macs_by_category.values())

    @property
    def flops(self) -> int:
        """Matrix-class FLOPs: 2 per MAC (elementwise work is in :attr:`other_flops`)."""
        return 2 * self.macs

    @property
    def other_flops(self) -> int:
        return sum(self.other_flops_by_category.values())

    @property
    def uncounted(self) -> dict[str, int]:
        """Ops no table or formula prices: calls per op name (their FLOPs are missing)."""
        return {name: s.calls for name, s in self.ops.items() if s.kind == "uncounted"}

    # -- fvcore-style views over the module rows ---------------------------------------------
    def canonical_module_name(self, name: str) -> str:
        """A shared module's first name, as ``model.named_modules()`` lists it (fvcore's rule)."""
        return self.aliases.get(name, name)

    def total(self, module: str = ROOT) -> int:
        """MACs run under ``module``'s forward (any of its names), forward and backward."""
        return self.inclusive[self.canonical_module_name(module)].macs if self._has(module) else 0

    def by_module(self) -> dict[str, int]:
        """MACs per module, inclusive of children; every submodule listed, ROOT being the total."""
        return {name: self.total(name) for name in [ROOT, *self.module_names]}

    def by_operator(self, module: str = ROOT) -> dict[str, int]:
        """MACs per op name under ``module``'s forward."""
        if not self._has(module):
            return {}
        return dict(self.inclusive[self.canonical_module_name(module)].macs_by_op)

    def by_module_and_operator(self) -> dict[str, dict[str, int]]:
        """MACs per module and op name (fvcore's ``by_module_and_operator``, in MACs)."""
        return {name: self.by_operator(name) for name in [ROOT, *self.module_names]}

    def uncalled_modules(self) -> set[str]:
        """Submodules whose forward never ran (containers without a forward of their own excluded)."""
        return set(self.module_names) - self.called_modules - self.container_modules

    def _has(self, module: str) -> bool:
        return self.canonical_module_name(module) in self.inclusive

    @property
    def ignored(self) -> dict[str, int]:
        """Ops left out on purpose (``ignore=``): calls per op name, no cost booked."""
        return {name: s.calls for name, s in self.ops.items() if s.kind == "ignored"}


def op_name(packet: Any) -> str:
    """``mm`` for aten ops (as before), ``namespace::name`` for every other namespace."""
    qualified = getattr(packet, "_qualified_op_name", None)
    if qualified is None or qualified.startswith("aten::"):
        return packet.__name__
    return qualified


def _tensor_bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _dense(t: Any) -> torch.Tensor:
    """The buffer behind a jagged tensor (its values), or the tensor itself."""
    return t.values() if isinstance(t, _NestedTensor) else t


def _sequence_lengths(t: Any) -> list[int]:
    """Per-sequence lengths along dim -2 of a (B, H, L, E) attention input, jagged or dense."""
    if not isinstance(t, _NestedTensor):
        return [int(t.shape[-2])] * int(t.shape[0])
    if t._ragged_idx != t.dim() - 2:
        raise op_table.Uncountable(f"jagged attention input ragged in dim {t._ragged_idx}, not the sequence dim")
    if t.lengths() is not None:
        lengths = t.lengths()
        if lengths.device.type == "meta":
            raise op_table.Uncountable("jagged sequence lengths are not materialised (lengths on meta)")
        return [int(n) for n in lengths.tolist()]
    return op_table.jagged_lengths(t.offsets())


def _tensors(*trees: Any) -> list[torch.Tensor]:
    leaves: list[Any] = []
    for tree in trees:
        leaves.extend(tree_flatten(tree)[0])
    return [x for x in leaves if isinstance(x, torch.Tensor)]


_CONTAINERS = (torch.nn.ModuleList, torch.nn.ModuleDict, torch.nn.ParameterList, torch.nn.ParameterDict)


class _ModuleStack:
    """Names of the modules currently inside ``forward``, innermost last.

    A module shared under several names is hooked once, under its first name (the canonical one);
    its other names are recorded as aliases in the result.
    """

    def __init__(self, model: torch.nn.Module | None, result: CountResult) -> None:
        self.stack: list[str] = []
        self._handles: list[Any] = []
        self._called = result.called_modules
        self.model_given = model is not None
        if model is None:
            return
        first: dict[int, str] = {}
        for name, module in model.named_modules(remove_duplicate=False):
            if not name:
                continue
            if id(module) in first:
                result.aliases[name] = first[id(module)]
                continue
            first[id(module)] = name
            result.module_names.append(name)
            if isinstance(module, _CONTAINERS):
                result.container_modules.add(name)
            self._handles.append(module.register_forward_pre_hook(self._enter(name)))
            self._handles.append(module.register_forward_hook(self._leave(name), always_call=True))

    def _enter(self, name: str) -> Any:
        def hook(*_: Any) -> None:
            self.stack.append(name)
            self._called.add(name)

        return hook

    def _leave(self, name: str) -> Any:
        def hook(*_: Any) -> None:
            if self.stack and self.stack[-1] == name:
                self.stack.pop()

        return hook

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


class _LiveMemory:
    """Bytes of storages created during the run that are still alive; tracks the peak.

    Freed storages are only noticed by polling their weak references, so the sweep is done when it can
    matter: when the running total (which may still include freed storages) would pass the peak. Below
    the peak, dropping freed storages could only lower a total that sets no new peak anyway.
    """

    def __init__(self) -> None:
        self._live: dict[int, tuple[StorageWeakRef, int]] = {}
        self._total = 0
        self.peak = 0

    def add(self, tensors: list[torch.Tensor]) -> None:
        for t in tensors:
            storage = t.untyped_storage()
            ref = StorageWeakRef(storage)
            known = self._live.get(ref.cdata)
            if known is None or known[0].expired():  # new, or a freed storage's address reused
                nbytes = storage.nbytes()
                self._live[ref.cdata] = (ref, nbytes)
                self._total += nbytes - (known[1] if known else 0)
        if self._total <= self.peak:
            return
        freed = [k for k, (ref, _) in self._live.items() if ref.expired()]
        for k in freed:
            self._total -= self._live.pop(k)[1]
        self.peak = max(self.peak, self._total)


def _is_known(func: Any) -> bool:
    return op_table.is_known(func) or func.overloadpacket in op_table_quantized.MAC_OPS


class _Dispatch(TorchDispatchMode):
    def __init__(self, counter: CostCounter) -> None:
        super().__init__()
        self.counter = counter

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        counter = self.counter
        if counter.suppressed:  # inside a call counted whole (attention, a registered Function)
            return func(*args, **kwargs)
        if any(issubclass(t, _NestedTensor) for t in types):
            # A jagged tensor's shape holds a symbolic nested int; defer to its own dispatch, whose
            # ops on the dense values then reach this mode with real shapes (as FlopCounterMode does
            # for NJT size queries).
            return NotImplemented
        packet = func.overloadpacket
        if packet in counter.ignore:
            out = func(*args, **kwargs)
            counter.record_ignored(op_name(packet))
            return out
        formula = counter.formulas.get(packet)
        if formula is None and not _is_known(func):
            # Under inference_mode composite ops (conv_transpose2d, einsum, max_pool2d, ...) reach
            # the mode whole; count what they decompose into instead (as FlopCounterMode does).
            with self:
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
        out = op_table.run_op(func, args, kwargs)
        if formula is not None:
            counter.record_formula(op_name(packet), formula, args, kwargs, out)
        else:
            counter.record_op(func, args, kwargs, out)
        return out


class _AttentionCatcher(TorchFunctionMode):
    def __init__(self, counter: CostCounter) -> None:
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        counter = self.counter
        if counter.suppressed:
            return func(*args, **kwargs)
        if func is not F.scaled_dot_product_attention:
            out = func(*args, **kwargs)
            counter.remember_owner(args, kwargs, out)  # autograd nodes exist here, not at dispatch
            return out
        with counter.suppress():
            out = func(*args, **kwargs)
        if func in counter.ignore:
            counter.record_ignored("scaled_dot_product_attention")
        elif func in counter.formulas:
            counter.record_formula("scaled_dot_product_attention", counter.formulas[func], args, kwargs, out)
        else:
            counter.record_attention(args, kwargs, out)
        counter.remember_owner(args, kwargs, out)
        return out


class _Suppress:
    """While open, the dispatch mode runs ops without counting them (their caller is counted whole)."""

    def __init__(self, counter: CostCounter) -> None:
        self.counter = counter

    def __enter__(self) -> None:
        self.counter.suppressed += 1

    def __exit__(self, *exc: Any) -> None:
        self.counter.suppressed -= 1


class _FunctionPatch:
    """Counts registered ``autograd.Function`` subclasses whole by wrapping their ``forward``.

    ``Function.apply`` reaches neither a dispatch nor a torch-function mode, so the only hook is
    the ``forward`` staticmethod itself; it is restored on exit.
    """

    def __init__(self, counter: CostCounter, classes: list[type[torch.autograd.Function]]) -> None:
        self.counter = counter
        self.saved = [(cls, cls.__dict__.get("forward")) for cls in classes]

    def __enter__(self) -> None:
        for cls, _ in self.saved:
            cls.forward = staticmethod(self._wrap(cls, cls.forward))  # type: ignore[method-assign]

    def _wrap(self, cls: type[torch.autograd.Function], forward: Any) -> Any:
        counter = self.counter
        formula = counter.formulas[cls]
        has_ctx = not torch.autograd.function._is_setup_context_defined(cls.setup_context)

        def counted_forward(*args: Any, **kwargs: Any) -> Any:
            if counter.suppressed:
                return forward(*args, **kwargs)
            with counter.suppress():
                out = forward(*args, **kwargs)
            counter.record_formula(cls.__name__, formula, args[1:] if has_ctx else args, kwargs, out)
            return out  # its autograd node exists only after forward returns: not owned, backward goes to ROOT

        return counted_forward

    def __exit__(self, *exc: Any) -> None:
        for cls, original in self.saved:
            if original is None:
                del cls.forward
            else:
                cls.forward = original  # type: ignore[method-assign]


class CostCounter:
    """Context manager that counts the cost of everything run inside it.

    >>> with CostCounter(model) as c:
    ...     model(**inputs)
    >>> c.result.flops, c.result.other_flops, c.result.bytes_moved
    """

    def __init__(
        self,
        model: torch.nn.Module | None = None,
        causal_attention: CausalCounting = "full",
        *,
        custom_mapping: Mapping[Any, Any] | None = None,
        ignore: Iterable[Any] = (),
    ):
        """``custom_mapping``: op -> formula in ``FlopCounterMode``'s convention (a plain callable
        returning matrix FLOPs, or an :class:`OpFormula`); it overrides the built-in tables and the
        global registry. ``ignore``: ops to leave out, listed in :attr:`CountResult.ignored`."""
        if causal_attention not in ("full", "visible"):
            raise ValueError("causal_attention must be 'full' or 'visible'")
        self.model = model
        self.result = CountResult(causal_attention=causal_attention)
        self.formulas: dict[Any, OpFormula] = op_table_custom.formula_table(custom_mapping)
        self.ignore: frozenset[Any] = frozenset(op_table_custom.target_key(op) for op in ignore)
        self.suppressed = 0
        self._node_owner: dict[Any, tuple[str, ...]] = {}
        self._modules: _ModuleStack | None = None
        self._memory = _LiveMemory()
        self._modes: list[Any] = []

    # -- recording -------------------------------------------------------------------------
    def _stat(self, name: str, kind: str) -> OpStat:
        stat = self.result.ops.get(name)
        if stat is None:
            stat = self.result.ops[name] = OpStat(kind=kind)
        return stat

    def _path(self) -> tuple[str, ...]:
        """The module call stack an op belongs to: the forward stack, or in backward the stack
        of the forward op whose autograd node is now running (so backward work lands on the module
        that created it, not on the root row)."""
        if self._modules is not None and self._modules.stack:
            return tuple(self._modules.stack)
        node = torch._C._current_autograd_node()
        return self._node_owner.get(node, ()) if node is not None else ()

    def remember_owner(self, args: Any, kwargs: Any, out: Any) -> None:
        """Note which module stack created the autograd nodes of one torch call, for the backward.

        Called above autograd (in the torch-function mode), where outputs carry their ``grad_fn``.
        The walk from the outputs stops at nodes already known, and the inputs' nodes are known
        beforehand, so only the nodes this call created are claimed (a composite call creates several).
        """
        if self._modules is None or not self._modules.model_given or not torch.is_grad_enabled():
            return
        outputs = [t for t in _tensors(out) if t.grad_fn is not None]
        if not outputs:
            return
        known = self._node_owner
        for t in _tensors(args, kwargs):
            if t.grad_fn is not None:
                known.setdefault(t.grad_fn, ())
        owner = tuple(self._modules.stack)
        todo = [t.grad_fn for t in outputs]
        while todo:
            node = todo.pop()
            if node in known:
                continue
            known[node] = owner
            todo.extend(n for n, _ in node.next_functions if n is not None)

    def suppress(self) -> _Suppress:
        """Context in which dispatched ops are run but not counted."""
        return _Suppress(self)

    def record_ignored(self, name: str) -> None:
        self._stat(name, "ignored").calls += 1

    def record_formula(self, name: str, formula: OpFormula, args: Any, kwargs: Any, out: Any) -> None:
        """A call priced by a user formula: its MACs or other FLOPs under the formula's category."""
        macs, other = formula.cost(args, kwargs, out)
        outputs = _tensors(out)
        moved = sum(_tensor_bytes(t) for t in _tensors(args, kwargs) + outputs)
        self._memory.add(outputs)
        self.result.peak_live_bytes = self._memory.peak
        self._add(name, "custom", macs, other, moved, formula.category)

    def _add(
        self,
        name: str,
        kind: str,
        macs: int,
        other: int,
        moved: int,
        category: str | None,
        other_category: str | None = None,
    ) -> None:
        """Book one call; its other FLOPs go under ``other_category`` when given, else ``category``."""
        other_category = other_category or category
        stat = self._stat(name, kind)
        stat.calls += 1
        stat.macs += macs
        stat.other_flops += other
        stat.bytes_moved += moved
        path = self._path()
        self.result.modules[path[-1] if path else ROOT].add(name, macs, other, moved)
        for module in dict.fromkeys((ROOT, *path)):  # a module on the stack twice counts once
            self.result.inclusive[module].add(name, macs, other, moved)
        self.result.bytes_moved += moved
        if category is not None and macs:
            self.result.macs_by_category[category] += macs
        if other_category is not None and other:
            self.result.other_flops_by_category[other_category] += other

    def record_op(self, func: Any, args: Any, kwargs: Any, out: Any) -> None:
        packet = func.overloadpacket
        name = op_name(packet)
        is_view = getattr(func, "is_view", False) or name in ("_unsafe_view", "alias", "detach")
        outputs = _tensors(out)
        moved = 0 if is_view else sum(_tensor_bytes(t) for t in _tensors(args, kwargs) + outputs)
        if not is_view and not func._schema.is_mutable:
            self._memory.add(outputs)
            self.result.peak_live_bytes = self._memory.peak
        if packet in _MAC_OPS:
            category, formula = _MAC_OPS[packet]
            try:
                macs = formula(args, kwargs, out)
                if category == "attention" and self.result.causal_attention == "visible":
                    macs = round(macs * op_table.kernel_causal_fraction(func, args, kwargs))
            except op_table.Uncountable as why:
                self.result.notes[name] = str(why)
                self._add(name, "uncounted", 0, 0, moved, None)
                return
            extra_category, extra = op_table.bias_add_flops(packet, args, kwargs, out, _MAC_OP_EXTRAS) or (None, 0)
            self._add(name, "mac", macs, extra, moved, category, extra_category)
            return
        other = op_table.other_flops(packet, func, args, out)
        if other is not None:
            category, flops = other
            self._add(name, "other", 0, flops, moved, category)
        elif packet in op_table.DATA_MOVEMENT_OPS or is_view:
            self._add(name, "data", 0, 0, moved, None)
        else:
            self._add(name, "uncounted", 0, 0, moved, None)

    def record_attention(self, args: Any, kwargs: Any, out: torch.Tensor) -> None:
        q, k, v = args[0], args[1], args[2]
        if any(isinstance(t, _NestedTensor) for t in (q, k, v)):
            with self.suppress():
                self._record_jagged_attention(q, k, v, out)
            return
        # SDPA(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa)
        is_causal = bool(args[5] if len(args) > 5 else kwargs.get("is_causal", False))
        lq, lk = q.shape[-2], k.shape[-2]
        fraction = 1.0
        if is_causal and self.result.causal_attention == "visible":
            fraction = op_table.causal_visible_fraction(lq, lk)
        macs = op_table.attention_macs(tuple(q.shape), tuple(k.shape), tuple(v.shape), fraction)
        scores = math.prod(q.shape[:-1]) * lk
        softmax = round(op_table.SOFTMAX_FLOPS_PER_ELEMENT * scores * fraction)
        mask = args[3] if len(args) > 3 else kwargs.get("attn_mask")
        # A fused kernel reads Q, K, V (and the mask) and writes the output once.
        moved = sum(_tensor_bytes(t) for t in _tensors(q, k, v, mask, out))
        self._add("scaled_dot_product_attention", "attention", macs, softmax, moved, "attention", "softmax")
        self._memory.add(_tensors(out))
        self.result.peak_live_bytes = self._memory.peak

    def _record_jagged_attention(self, q: Any, k: Any, v: Any, out: Any) -> None:
        """SDPA on jagged (B, H, j, E) tensors: the sum over sequences of H·Lq_i·Lk_i·(E + Ev) MACs.

        Lengths come from the offsets; on meta they are not materialised, and the call is listed
        as uncounted with a note rather than guessed (torch assumes every sequence is the longest).
        """
        name = "scaled_dot_product_attention"
        values = [_dense(t) for t in (q, k, v, out)]
        moved = sum(_tensor_bytes(t) for t in values)
        try:
            lengths_q, lengths_k = _sequence_lengths(q), _sequence_lengths(k)
        except op_table.Uncountable as why:
            self.result.notes[name] = str(why)
            self._add(name, "uncounted", 0, 0, moved, None)
            return
        heads, e, ev = int(q.shape[1]), int(q.shape[-1]), int(v.shape[-1])
        scores = sum(heads * lq * lk for lq, lk in zip(lengths_q, lengths_k, strict=True))
        macs = scores * (e + ev)
        softmax = op_table.SOFTMAX_FLOPS_PER_ELEMENT * scores
        self._add(name, "attention", macs, softmax, moved, "attention", "softmax")
        self._memory.add(values[-1:])
        self.result.peak_live_bytes = self._memory.peak

    # -- context manager -------------------------------------------------------------------
    def __enter__(self) -> CostCounter:
        self._modules = _ModuleStack(self.model, self.result)
        classes = op_table_custom.function_classes(self.formulas)
        self._modes = [_FunctionPatch(self, classes), _AttentionCatcher(self), _Dispatch(self)]
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(*exc)
        self._modes = []
        if self._modules is not None:
            self._modules.close()
        self._node_owner.clear()  # holding autograd nodes past the run would keep graphs alive
