"""Provenance of a run: model revision, dataset fingerprint, git state of the working directory."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from steelyard.data.dataset import Example, TaskDataset
from steelyard.store import provenance
from steelyard.store.provenance import dataset_fingerprint, git_state, model_revision, run_provenance


def test_a_local_folder_is_the_sha256_of_its_weight_files(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"weights" * 1000)
    rev = model_revision(str(folder))
    expected = hashlib.sha256(b"model.safetensors\0" + b"7000\0" + b"weights" * 1000).hexdigest()
    assert rev == {"source": str(folder), "revision": expected, "kind": "sha256", "files": 1, "bytes": 7000}
    (folder / "model.safetensors").write_bytes(b"Weights" * 1000)
    assert model_revision(str(folder))["revision"] != expected


def test_large_weights_are_sampled_and_say_so(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "FULL_HASH_BYTES", 1000)
    path = tmp_path / "big.onnx"
    path.write_bytes(bytes(range(256)) * 100_000)
    rev = model_revision(str(path))
    assert rev["kind"] == "sampled-sha256" and len(rev["revision"]) == 64


def test_a_folder_in_the_hub_cache_is_its_commit_and_a_config_only_folder_its_config(tmp_path):
    commit = "a" * 40
    snap = tmp_path / "hub" / "models--org--name" / "snapshots" / commit
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    assert model_revision(str(snap)) == {"source": str(snap), "revision": commit, "kind": "hub-commit"}
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text('{"a": 1}')
    assert model_revision(str(bare)) == {"source": str(bare), "kind": "config-sha256",
                                         "revision": hashlib.sha256(b'{"a": 1}').hexdigest()}


def test_factories_catalog_names_and_unknown_ids():
    rev = model_revision("steelyard.store.provenance:model_revision")
    assert rev["kind"] == "factory-code-sha256"
    assert rev["revision"] == hashlib.sha256(Path(provenance.__file__).read_bytes()).hexdigest()
    assert model_revision("gpt2")["kind"] in ("catalog", "hub-commit")
    assert model_revision("no-such-org/no-such-model-xyz") == {"source": "no-such-org/no-such-model-xyz",
                                                               "revision": None, "kind": "unknown"}


def dataset(texts):
    ex = [Example(text=t, label=i % 2) for i, t in enumerate(texts)]
    return TaskDataset("toy", "text-classification", ["a", "b"], ex[:2], ex[2:3], ex[3:], "toy.csv")


def test_the_dataset_fingerprint_follows_the_examples():
    fp = dataset_fingerprint(dataset(["w", "x", "y", "z"]))
    assert fp["source"] == "toy.csv" and {s: v["examples"] for s, v in fp["splits"].items()} == {
        "train": 2, "validation": 1, "test": 1}
    assert fp == dataset_fingerprint(dataset(["w", "x", "y", "z"]))
    other = dataset_fingerprint(dataset(["w", "x", "y", "Z"]))
    assert other["splits"]["test"]["sha256"] != fp["splits"]["test"]["sha256"]
    assert other["splits"]["train"] == fp["splits"]["train"]
    assert dataset_fingerprint(None) is None


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_state_of_the_working_directory(tmp_path):
    assert git_state(tmp_path) is None
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(tmp_path), "PATH": __import__("os").environ["PATH"]}

    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True, text=True,
                              env=env).stdout.strip()

    git("init", "-q")
    (tmp_path / "f.txt").write_text("one")
    git("add", "f.txt")
    git("commit", "-qm", "one")
    head = git("rev-parse", "HEAD")
    assert git_state(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "untracked.txt").write_text("x")
    assert git_state(tmp_path)["dirty"] is False
    (tmp_path / "f.txt").write_text("two")
    assert git_state(tmp_path) == {"commit": head, "dirty": True}
    whole = run_provenance(["gpt2"], None, cwd=tmp_path)
    import steelyard

    assert whole["git"]["commit"] == head and whole["steelyard"] == steelyard.__version__
    assert whole["models"][0]["source"] == "gpt2" and whole["data"] is None
