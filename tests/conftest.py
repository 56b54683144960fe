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


@pytest.fixture
def one_thread():
    """One torch thread: training tests are then repeatable and do not fight the other tests for cores.

    Files that train or time models opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
