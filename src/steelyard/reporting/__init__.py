"""Rendering: the only place that formats numbers (console tables, JSON, CSV)."""
