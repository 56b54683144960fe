"""The results store: every run (profile, estimate, evaluation, ...) with its numbers."""

from steelyard.store.runs import RunLabels, RunRecord, Store, default_store_url, open_store

__all__ = ["RunLabels", "RunRecord", "Store", "default_store_url", "open_store"]
