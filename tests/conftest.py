"""Shared fixtures: tiny models, an isolated results store, offline hub settings."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path, monkeypatch):
    """Every test writes to its own SQLite store, never the user's."""
    monkeypatch.setenv("STEELYARD_STORE", f"sqlite:///{tmp_path / 'steelyard-test.db'}")
