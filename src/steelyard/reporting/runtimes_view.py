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


VERSUS_COLUMNS = ("uncompressed model in", "median ms", "vs torch fp32 eager [95% CI]", "winner vs it [95% CI]")


def versus_rows(d: dict[str, Any]) -> list[list[str]]:
    """``optimize``'s winner against each runtime alone (:class:`RuntimesVersusWinner` as a dict): one row per
    runtime on the uncompressed model, with the winner's speedup over it from the same interleaved rounds."""
    over = {s["baseline"]: s for s in d["speedups"]}
    rows = []
    for row, r in zip(runtime_rows(d["table"]), d["table"]["rows"], strict=True):
        if r["label"] == d["winner"]:
            continue
        s = over.get(r["label"])
        against = "—" if s is None else speedup_text(s["ratio"], s["ci_low"], s["ci_high"], s.get("rounds"))
        rows.append([r["label"], row[2], row[3] if r["status"] == "timed" else f"{r['status']}: {r.get('note', '')}",
                     against])
    return rows


def versus_verdict(d: dict[str, Any]) -> str:
    """One line: the winner against the fastest runtime alone (or that none but torch was timed)."""
    best = d.get("best_alone")
    s = next((s for s in d["speedups"] if s["baseline"] == best), None)
    if best is None or s is None:
        return "no runtime other than torch fp32 eager ran on the uncompressed model"
    text = speedup_text(s["ratio"], s["ci_low"], s["ci_high"], s.get("rounds"))
    return (f"the winner vs the best runtime alone on the uncompressed model ({best}): {text} "
            f"({s['rounds']} interleaved rounds)")


def starting_runtime_text(starting: Any) -> str:
    """Where a new study's starting points are served, and the quick timings that chose it (one line each
    structure timed)."""
    lines = []
    others = "the other starting points" if starting.corner is not None else "starting points"
    for ranking, points in ((starting.uncompressed, others), (starting.corner, "the corners")):
        if ranking is None:
            continue
        timed = ", ".join(f"{label} {ratio:.2f}x" for label, ratio in ranking.speedups.items())
        lines.append(f"{points} served in {ranking.backend}: its int8 ran {_structure(ranking.structure)} fastest "
                     f"({timed} vs the same in torch fp32 eager, {starting.rounds} interleaved rounds)")
    return "\n".join(lines)


def _structure(structure: str) -> str:
    return structure if structure.startswith("the ") else f"the corner's structure ({structure}, untrained)"
