"""Warnings beside the numbers a run made: test inputs seen in training, a run too short to learn.

Results carry the facts (:class:`~steelyard.data.quality.Leakage` records, the optimizer steps
taken, why training stopped); this module words them, once, for the console and for the
``warnings`` list of the JSON every task command writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from steelyard.reporting.markup import escape

if TYPE_CHECKING:
    from rich.console import Console


def leakage_warnings(leaks: Sequence[Any], metric: str | None = None) -> list[str]:
    """One line per split pair that shares inputs, e.g. "30 test examples also appear in train: ..."."""
    what = metric or "scores"
    out = []
    for leak in leaks:
        get = leak.get if isinstance(leak, dict) else lambda key, _leak=leak: getattr(_leak, key)
        count, split, other = int(get("count")), get("split"), get("other")
        if count:
            examples = "example" if count == 1 else "examples"
            verb = "appears" if count == 1 else "appear"
            out.append(f"{count} {split} {examples} also {verb} in {other}: {split} {what} is optimistic; use --clean")
    return out


def few_steps_warning(steps: int, stopped: str) -> str | None:
    """A run that took fewer than :data:`~steelyard.training.config.FEW_STEPS` optimizer steps by its own
    schedule (not a target reached, not ``max_steps`` asked for) has barely moved from its start."""
    from steelyard.training.config import FEW_STEPS

    if steps >= FEW_STEPS or stopped in ("target_reached", "max_steps"):
        return None
    return (f"only {steps} optimizer steps (fewer than {FEW_STEPS}): the model has barely moved from where it "
            "started; train longer (--epochs, a smaller --batch-size) or on more data, or train a head on "
            "frozen embeddings (--freeze-encoder)")


def finetune_warnings(result: Any) -> list[str]:
    """What to doubt in a fine-tuning result: leaked test inputs, too few optimizer steps."""
    lines = leakage_warnings(result.leakage, f"{result.metric}")
    few = few_steps_warning(result.cost.steps, result.stopped)
    if few:
        lines.append(few)
    return lines


def sequence_length_note(chosen: Any) -> str:
    """Why an estimate used the sequence length it did (a :class:`~steelyard.training.sequence.SequenceLength`)."""
    if chosen.limit is None:
        return f"sequence length {chosen.tokens:,} tokens (the default; the model states no limit; --seq-len to change)"
    if chosen.tokens < chosen.limit:
        return (f"sequence length {chosen.tokens:,} tokens (the default; the model allows {chosen.limit:,}, "
                f"its {chosen.source}; --seq-len to change)")
    return f"sequence length {chosen.tokens:,} tokens: the model's own limit ({chosen.source}; --seq-len to change)"


def print_warnings(lines: Sequence[str], console: Console) -> None:
    """Each warning on its own line, marked so it is not mistaken for a note."""
    for line in lines:
        console.print(f"[bold yellow]warning:[/bold yellow] {escape(line)}")
