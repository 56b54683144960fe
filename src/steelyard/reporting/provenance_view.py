"""A run's provenance (:mod:`steelyard.store.provenance`) as rows a person reads."""

from __future__ import annotations

from typing import Any

from steelyard.reporting.markup import escape

#: How each kind of model revision is said.
REVISION_WORDS = {
    "hub-commit": "hub commit",
    "sha256": "sha256 of the weight files",
    "sampled-sha256": "sampled sha256 of the weight files (too large to read whole)",
    "config-sha256": "sha256 of the config (no weight files)",
    "factory-code-sha256": "sha256 of the factory's Python file",
    "catalog": "steelyard catalog entry (config only)",
    "factory": "factory (its code could not be read)",
    "unknown": "no revision known",
}


def provenance_rows(provenance: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(what, value) rows; an older run stored without provenance gets one row saying so."""
    if not provenance:
        return [("provenance", "not recorded (the run predates provenance)")]
    rows: list[tuple[str, str]] = []
    for m in provenance.get("models") or []:
        revision = m.get("revision")
        words = REVISION_WORDS.get(str(m.get("kind")), str(m.get("kind")))
        rows.append((f"model {m.get('source')}", f"{revision[:12]} ({words})" if revision else words))
    data = provenance.get("data")
    if data:
        if data.get("error"):
            rows.append((f"data {data.get('source')}", f"not fingerprinted: {data['error']}"))
        else:
            splits = ", ".join(f"{name} {s['examples']:,} ({s['sha256'][:12]})"
                               for name, s in (data.get("splits") or {}).items())
            rows.append((f"data {data.get('source')}", splits or "no examples"))
    git = provenance.get("git")
    if git:
        rows.append(("git commit (working directory)", f"{git['commit'][:12]}" + (" + uncommitted changes"
                                                                                if git.get("dirty") else "")))
    else:
        rows.append(("git commit (working directory)", "not a git checkout"))
    rows.append(("steelyard", str(provenance.get("steelyard", "?"))))
    return rows


def render_provenance(provenance: dict[str, Any] | None, console: Any) -> None:
    from steelyard.reporting.console import _table

    table = _table("Provenance", "what", "value")
    for what, value in provenance_rows(provenance):
        table.add_row(escape(what), escape(value))
    console.print(table)
