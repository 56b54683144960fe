"""Rows of the runtime table (``steelyard runtimes``), from :meth:`RuntimeTable.to_dict`.

Each speedup carries its interval over the interleaved rounds and is "faster" only when that
interval excludes 1.0 (:mod:`steelyard.reporting.statistics`); a noisy median is marked.
"""

from __future__ import annotations

from typing import Any

from steelyard.reporting.statistics import noisy_mark, speedup_outcome, speedup_text

COLUMNS = ("runtime", "status", "median ms", "vs torch fp32 eager [95% CI]", "SQNR dB", "note")


def _is_baseline(r: dict[str, Any]) -> bool:
    speed = r.get("speedup")
    return bool(speed) and speed.get("baseline") == speed.get("candidate")


def runtime_rows(d: dict[str, Any]) -> list[list[str]]:
    rows = []
    for r in d["rows"]:
        stats, speed = r.get("stats"), r.get("speedup")
        median = f"{float(stats['median']) * 1e3:.2f}{noisy_mark(stats)}" if stats else "—"
        if not speed:
            ratio = "—"
        elif _is_baseline(r):
            ratio = "1.00x (baseline)"
        else:
            ratio = speedup_text(speed["ratio"], speed["ci_low"], speed["ci_high"], speed.get("rounds"))
        sqnr = r.get("sqnr_db")
        sqnr_text = "—" if sqnr is None else ("inf" if sqnr == float("inf") or sqnr == "inf" else f"{float(sqnr):.1f}")
        label = r["label"] + (" ★" if r["label"] == d["fastest"] else "")
        rows.append([label, r["status"], median, ratio, sqnr_text, r.get("note", "")])
    return rows


def verdict(d: dict[str, Any]) -> str:
    best = next(r for r in d["rows"] if r["label"] == d["fastest"])
    speed = best["speedup"]
    interval = f"95% CI {speed['ci_low']:.2f}–{speed['ci_high']:.2f}, {speed['rounds']} interleaved rounds"
    if _is_baseline(best):
        return f"fastest here: {d['fastest']} itself — no other runtime beat torch fp32 eager ({speed['rounds']} " \
               "interleaved rounds)"
    outcome = speedup_outcome(speed["ratio"], speed["ci_low"], speed["ci_high"], speed.get("rounds"))
    if outcome != "faster":
        return (f"no runtime is significantly faster than torch fp32 eager here: the best, {d['fastest']}, runs at "
                f"{speed['ratio']:.2f}x ({interval}; the interval includes 1.0)")
    return f"fastest here: {d['fastest']} — {speed['ratio']:.2f}x torch fp32 eager ({interval})"
