"""Rows of the runtime table (``steelyard runtimes``), from :meth:`RuntimeTable.to_dict`."""

from __future__ import annotations

from typing import Any

COLUMNS = ("runtime", "status", "median ms", "vs torch fp32 eager [95% CI]", "SQNR dB", "note")


def runtime_rows(d: dict[str, Any]) -> list[list[str]]:
    rows = []
    for r in d["rows"]:
        stats, speed = r.get("stats"), r.get("speedup")
        median = f"{float(stats['median']) * 1e3:.2f}" if stats else "—"
        ratio = f"{speed['ratio']:.2f}x [{speed['ci_low']:.2f}, {speed['ci_high']:.2f}]" if speed else "—"
        sqnr = r.get("sqnr_db")
        sqnr_text = "—" if sqnr is None else ("inf" if sqnr == float("inf") or sqnr == "inf" else f"{float(sqnr):.1f}")
        label = r["label"] + (" ★" if r["label"] == d["fastest"] else "")
        rows.append([label, r["status"], median, ratio, sqnr_text, r.get("note", "")])
    return rows


def verdict(d: dict[str, Any]) -> str:
    best = next(r for r in d["rows"] if r["label"] == d["fastest"])
    speed = best["speedup"]
    return (f"fastest here: {d['fastest']} — {speed['ratio']:.2f}x torch fp32 eager "
            f"(95% CI {speed['ci_low']:.2f}–{speed['ci_high']:.2f}, {speed['rounds']} interleaved rounds)")
