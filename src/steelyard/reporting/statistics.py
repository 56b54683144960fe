"""Statistics in words: p-values, speedup intervals, paired changes and noisy latencies.

Every view that states a speedup, an accuracy change or a latency words it here, so "faster",
"rose" and "noisy" mean the same thing in compress, compare, runtimes, optimize and profile:

- a speedup is "faster" / "slower" only when its interval over the interleaved rounds excludes 1.0
  (:func:`steelyard.profiling.interleaved.speed_outcome`), else "not significantly faster";
- a metric "rose" / "dropped" only when its paired test rejects "no change" at 5%
  (:mod:`steelyard.significance`), else "no significant change";
- a latency is marked "± noisy" when :func:`steelyard.profiling.latency.noise_reasons` says so.

Inputs are the result objects or their stored dicts (``runs show`` renders JSON), read alike.
"""

from __future__ import annotations

import math
from typing import Any

from steelyard.profiling.interleaved import speed_outcome
from steelyard.profiling.latency import NOISY_CV, NOISY_TAIL, noise_reasons
from steelyard.reporting.formatting import fmt_number

#: The mark a noisy latency gets in a console table.
NOISY_MARK = " ± noisy"


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def fmt_p(p: float | None) -> str:
    """``p=0.032``, ``p=1.00``, ``p<0.001``; ``p=—`` when unknown."""
    if p is None or not math.isfinite(p):
        return "p=—"
    if p < 0.001:
        return "p<0.001"
    return f"p={p:.3f}" if p < 0.1 else f"p={p:.2f}"


# -- speedups -----------------------------------------------------------------------------------


def speedup_outcome(ratio: float, ci_low: float | None, ci_high: float | None, rounds: int | None) -> str:
    """The outcome of a speedup (``"faster"``, ``"slower"``, ``"not significant"``), from its numbers."""
    if ci_low is None or ci_high is None:
        return "not significant"
    return speed_outcome(float(ratio), float(ci_low), float(ci_high), int(rounds or 0))


def speedup_text(ratio: float | None, ci_low: float | None, ci_high: float | None, rounds: int | None) -> str:
    """``1.84x faster [1.70, 1.95]``; ``1.02x [0.97, 1.08], not significantly faster``; ``0.50x, slower [...]``."""
    if ratio is None:
        return "—"
    interval = "" if ci_low is None or ci_high is None else f" [{ci_low:.2f}, {ci_high:.2f}]"
    outcome = speedup_outcome(ratio, ci_low, ci_high, rounds)
    if outcome == "faster":
        return f"{ratio:.2f}x faster{interval}"
    if outcome == "slower":
        return f"{ratio:.2f}x, slower{interval}"
    return f"{ratio:.2f}x{interval}, not significantly faster"


def speedup_of(speed: Any) -> str:
    """:func:`speedup_text` of a :class:`~steelyard.profiling.interleaved.Speedup` (or its dict)."""
    if speed is None:
        return "—"
    return speedup_text(_get(speed, "ratio"), _get(speed, "ci_low"), _get(speed, "ci_high"), _get(speed, "rounds"))


# -- noisy latencies ----------------------------------------------------------------------------


def noisy_reasons_of(stats: Any) -> list[str]:
    """Why ``stats`` (a LatencyStats or its dict) is noisy; recomputed for runs stored before the flag."""
    if stats is None:
        return []
    because = _get(stats, "noisy_because")
    if because is not None and _get(stats, "noisy") is not None:
        return list(because)
    return noise_reasons(float(_get(stats, "cv") or 0.0), float(_get(stats, "p90") or 0.0),
                         float(_get(stats, "median") or 0.0))


def noisy_mark(stats: Any) -> str:
    """:data:`NOISY_MARK` for a noisy latency, else nothing."""
    return NOISY_MARK if noisy_reasons_of(stats) else ""


def noise_text(stats: Any) -> str | None:
    """``noisy: CV 14% (> 10%); p90 1.62× the median (> 1.5×)``, or None when the latency is steady."""
    reasons = noisy_reasons_of(stats)
    if not reasons:
        return None
    bits = []
    if "cv" in reasons:
        bits.append(f"CV {float(_get(stats, 'cv')):.0%} (> {NOISY_CV:.0%})")
    if "tail" in reasons:
        median = float(_get(stats, "median") or 0.0)
        ratio = float(_get(stats, "p90")) / median if median else math.inf
        bits.append(f"p90 {ratio:.2f}× the median (> {fmt_number(NOISY_TAIL)}×)")
    return "noisy: " + "; ".join(bits)


# -- paired changes -----------------------------------------------------------------------------


def paired_test_name(test: str | None) -> str:
    """``mcnemar-exact`` → ``McNemar``; ``paired-bootstrap`` → ``paired bootstrap``."""
    if test is None:
        return "no test"
    if test.startswith("mcnemar"):
        return "McNemar" + (" mid-p" if test.endswith("mid-p") else "")
    return test.replace("-", " ")


#: Metrics that are not a share of examples: their change reads relative to the value before.
UNBOUNDED_METRICS = ("perplexity", "loss", "nll", "mse", "mae", "rmse")


def change_cell(change: Any) -> str:
    """A table cell for a paired change, in points for a share (``+0.23 pts, n.s. (McNemar p=1.00)``,
    ``−2.5 pts (p=0.003)``), relative for an unbounded metric (perplexity ``+3.10% (paired bootstrap p=0.01)``)."""
    if change is None:
        return ""
    delta = float(_get(change, "delta"))
    p = _get(change, "p_value")
    name = paired_test_name(_get(change, "test"))
    if delta == 0 and _get(change, "ci_low") == 0 == _get(change, "ci_high"):
        return "same (identical)"
    significant = p is not None and math.isfinite(p) and p < 1 - float(_get(change, "confidence") or 0.95)
    before = _get(change, "before")
    if _get(change, "metric") in UNBOUNDED_METRICS and before:  # not a share: points would mean nothing
        amount = f"{100.0 * delta / float(before):+.2f}%"
    else:
        amount = f"{100.0 * delta:+.2f} pts"
    return amount + ("" if significant else ", n.s.") + f" ({name} {fmt_p(p)})"


def discordant_text(only_before: int | None, only_after: int | None, n: int | None) -> str:
    """``1 of 444 examples changed: 1 now wrong, 0 now right`` for McNemar's discordant pairs."""
    if only_before is None or only_after is None:
        return ""
    changed = only_before + only_after
    of = f" of {n:,}" if n else ""
    return f"{changed:,}{of} examples changed: {only_before:,} now wrong, {only_after:,} now right"
