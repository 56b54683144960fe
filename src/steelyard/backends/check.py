"""A runtime's outputs against torch's on the same inputs: within tolerance, or a failure.

A faster runtime that answers differently is not a speedup. Tolerance is in SQNR (dB, see
:mod:`steelyard.compression.fidelity`): fp32 runtimes only reorder float arithmetic (≫ 40 dB);
bf16 keeps ~3 significant digits; int8 keeps the answer, not the digits.
"""

from __future__ import annotations

from typing import Any

from steelyard.backends.base import RuntimeMismatchError
from steelyard.compression.fidelity import Fidelity, compare_outputs, non_finite

#: The lowest SQNR (dB) of the primary output that counts as "the same model" per precision.
MIN_SQNR_DB = {"fp32": 40.0, "bf16": 20.0, "int8-dynamic": 10.0, "int8-static": 10.0, "int8": 10.0}


def check_outputs(reference: Any, candidate: Any, precision: str, task: str, label: str) -> Fidelity:
    """The fidelity of ``candidate`` to ``reference``; :class:`RuntimeMismatchError` beyond tolerance."""
    bad, total = non_finite(candidate)
    if bad:
        raise RuntimeMismatchError(f"{label}: {bad} of {total} output values are not finite")
    try:
        fidelity = compare_outputs(reference, candidate, task)
    except (ValueError, TypeError) as exc:
        raise RuntimeMismatchError(f"{label}: outputs cannot be compared with torch's: {exc}") from exc
    floor = MIN_SQNR_DB.get(precision, 10.0)
    if fidelity.sqnr_db < floor:
        raise RuntimeMismatchError(
            f"{label}: outputs disagree with torch fp32: SQNR {fidelity.sqnr_db:.1f} dB < {floor:.0f} dB "
            f"allowed for {precision} (max abs error {fidelity.max_abs_error:.3g} on {fidelity.output})")
    return fidelity
