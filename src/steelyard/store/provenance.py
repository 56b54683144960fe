"""Where a run's numbers came from: which model, which examples, which code.

Every recorded run carries a ``provenance`` mapping:

- ``models``: one entry per model the run used, each with its ``source`` and a ``revision`` and
  the ``kind`` of that revision: ``hub-commit`` (the Hugging Face commit of a cached hub model or
  of a folder inside the hub cache), ``sha256`` (the content of the weight files), ``sampled-sha256``
  (names, sizes and evenly spaced chunks of weight files too large to read whole), ``config-sha256``
  (a config file or a folder without weights), ``factory-code-sha256`` (the Python file of a
  ``pkg.mod:fn`` factory), ``catalog`` (steelyard's offline catalog entry, pinned by the version),
  or ``unknown``.
- ``data``: the dataset's source and, per split, the number of examples and a SHA-256 over them
  (text or image bytes, and label, in order), so two runs on "the same" data can be checked.
- ``git``: the commit of the working directory the command ran in (when it is a git checkout)
  and whether tracked files had changes (``dirty``).
- ``steelyard``: the version of steelyard that ran.

Nothing here writes a file, and nothing reaches the network (a hub id is looked up in the local
cache only).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: Files that hold weights (their content is the model's revision when there is no commit).
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".onnx", ".pt", ".pth", ".gguf", ".xml", ".ckpt", ".h5", ".msgpack")
#: Weights up to this size are hashed whole; larger ones are sampled (reading tens of GB would take minutes).
FULL_HASH_BYTES = 2 << 30
SAMPLES, SAMPLE_BYTES = 64, 1 << 16
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def run_provenance(models: Iterable[str] = (), data: Any = None, cwd: Path | None = None) -> dict[str, Any]:
    """The provenance of a run that used ``models`` (sources) and ``data`` (a TaskDataset, DataOptions or None)."""
    import steelyard

    return {
        "models": [model_revision(m) for m in dict.fromkeys(m for m in models if m)],
        "data": dataset_fingerprint(data),
        "git": git_state(cwd or Path.cwd()),
        "steelyard": steelyard.__version__,
    }


# --- models -----------------------------------------------------------------------------------


def model_revision(source: str) -> dict[str, Any]:
    """``{"source", "revision", "kind"}`` (+ ``files`` and ``bytes`` for hashed weights) for one model source."""
    out: dict[str, Any] = {"source": source}
    path = Path(source).expanduser()
    try:
        exists = path.exists()
    except OSError:
        exists = False
    if exists:
        commit = _snapshot_commit(path.resolve())
        if commit is not None:
            return out | {"revision": commit, "kind": "hub-commit"}
        return out | _content_revision(path)
    if _FACTORY.match(source):
        module = sys.modules.get(source.split(":", 1)[0])
        origin = getattr(module, "__file__", None)
        if origin and Path(origin).is_file():
            return out | {"revision": _sha256_file(Path(origin)), "kind": "factory-code-sha256"}
        return out | {"revision": None, "kind": "factory"}
    commit = _hub_cache_commit(source)
    if commit is not None:
        return out | {"revision": commit, "kind": "hub-commit"}
    from steelyard.models.catalog import find_entry

    entry = find_entry(source)
    if entry is not None:
        import json

        digest = hashlib.sha256(json.dumps(entry.config, sort_keys=True, default=str).encode()).hexdigest()
        return out | {"revision": digest, "kind": "catalog"}
    return out | {"revision": None, "kind": "unknown"}


def _snapshot_commit(path: Path) -> str | None:
    """``…/models--org--name/snapshots/<commit>/…`` → the commit of a folder in the hub cache."""
    parts = path.parts
    for i in range(len(parts) - 1):
        if parts[i] == "snapshots" and _COMMIT.match(parts[i + 1]) and i > 0 and parts[i - 1].startswith("models--"):
            return parts[i + 1]
    return None


def _hub_cache_commit(repo_id: str) -> str | None:
    """The commit the local hub cache resolves ``repo_id`` to (no network), if it is cached."""
    if repo_id.count("/") > 1 or not repo_id.strip() or " " in repo_id:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # not a valid repo id, no huggingface_hub
        return None
    return _snapshot_commit(Path(found)) if isinstance(found, str) else None


def weight_files(path: Path) -> list[Path]:
    """The weight files of a folder (recursively, sorted) or the file itself."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)


def _content_revision(path: Path) -> dict[str, Any]:
    files = weight_files(path)
    if not files:
        config = path / "config.json" if path.is_dir() else path
        if config.is_file():
            return {"revision": _sha256_file(config), "kind": "config-sha256"}
        return {"revision": None, "kind": "unknown"}
    total = sum(f.stat().st_size for f in files)
    digest = hashlib.sha256()
    sampled = total > FULL_HASH_BYTES
    for f in files:
        digest.update(str(f.relative_to(path) if path.is_dir() else f.name).encode() + b"\0")
        digest.update(str(f.stat().st_size).encode() + b"\0")
        with f.open("rb") as fh:
            if sampled:
                _update_sampled(digest, fh, f.stat().st_size)
            else:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
    return {"revision": digest.hexdigest(), "kind": "sampled-sha256" if sampled else "sha256",
            "files": len(files), "bytes": total}


def _update_sampled(digest: Any, fh: Any, size: int) -> None:
    if size <= SAMPLES * SAMPLE_BYTES:
        digest.update(fh.read())
        return
    step = (size - SAMPLE_BYTES) // (SAMPLES - 1)
    for i in range(SAMPLES):
        fh.seek(i * step)
        digest.update(fh.read(SAMPLE_BYTES))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- data -------------------------------------------------------------------------------------


def dataset_fingerprint(data: Any) -> dict[str, Any] | None:
    """``{"source", "splits": {split: {"examples", "sha256"}}}`` of a TaskDataset (a DataOptions is loaded)."""
    if data is None:
        return None
    if not hasattr(data, "train") and hasattr(data, "load"):
        try:
            data = data.load()
        except Exception as exc:  # the data moved or needs the network: say so rather than fail the record
            return {"source": getattr(data, "source", None), "error": f"{type(exc).__name__}: {exc}"[:300]}
    splits = {}
    for split in ("train", "validation", "test"):
        examples = getattr(data, split, None)
        if examples is not None:
            splits[split] = {"examples": len(examples), "sha256": examples_digest(examples)}
    return {"source": getattr(data, "source", None), "task": getattr(data, "task", None), "splits": splits}


def examples_digest(examples: Iterable[Any]) -> str:
    """SHA-256 over examples in order: each one's text (or image bytes, shape and dtype) and label."""
    digest = hashlib.sha256()
    for ex in examples:
        text, image, label = getattr(ex, "text", None), getattr(ex, "image", None), getattr(ex, "label", None)
        if text is not None:
            digest.update(b"t" + text.encode("utf-8", "surrogatepass") + b"\0")
        if image is not None:
            import numpy as np

            array = np.ascontiguousarray(image)
            digest.update(b"i" + f"{array.shape}{array.dtype}".encode() + array.tobytes())
        digest.update(b"l" + str(label).encode() + b"\n")
    return digest.hexdigest()


# --- code -------------------------------------------------------------------------------------


def git_state(cwd: Path) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the git checkout holding ``cwd``; None outside one (or without git).

    ``dirty`` means tracked files differ from the commit (untracked files do not count, as in
    ``git describe --dirty``). Optional locks are off, so looking never rewrites the index.
    """
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=10,
                                  env=env, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "--verify", "HEAD")
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}
