"""Bad input over every command that writes: one ``error:`` line, exit 2, no traceback, nothing lost.

One row per case of the reliability issue (an output that is an input, an existing output without
``--overwrite``, a report file inside a file or a read-only folder, a 5,000-character model name,
a batch far too big, single-class training data) plus the bad inputs the command tests already
cover. Every row also checks that nothing the user owns changed: the checksums of the model,
teacher, data and existing output folders, and the number of rows in the results store.

Tests run as root, where a folder without write permission is still writable; the read-only row
therefore makes ``os.access`` say no for one folder, which is what :mod:`steelyard.outputs` asks.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from cli_helpers import refused, steelyard
from steelyard.store import open_store
from text_toys import reviews_csv, tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = ["--max-length", "16", "--batch-size", "8"]
TRAIN = [*FAST, "--epochs", "1", "--max-steps", "1", "--no-save"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """The user's things: two models, data, a previous output, a folder of their own files, a file."""
    root = tmp_path_factory.mktemp("bad-inputs")
    model = tiny_bert(root / "model", layers=2, hidden=16, heads=2, max_positions=64)
    other = tiny_bert(root / "other", layers=2, hidden=16, heads=2, max_positions=64, seed=1)
    existing = tiny_bert(root / "previous-output", layers=1, hidden=16, heads=2, max_positions=64)
    data = reviews_csv(root / "reviews.csv", 40)
    one = root / "one-class.csv"
    one.write_text("text,label\n" + "".join(f"great item {i},pos\n" for i in range(40)))
    mine = root / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    afile = root / "afile"
    afile.write_text("a file, not a folder")
    readonly = root / "readonly"
    readonly.mkdir()
    return {"model": model, "other": other, "existing": existing, "data": data, "one": one, "mine": mine,
            "file": afile, "ro": readonly, "root": root}


def checksums(world: dict[str, Path]) -> dict[str, str]:
    """A digest of every file the user owns (models, data, previous output, their own folder)."""
    out = {}
    for path in sorted(world["root"].rglob("*")):
        if path.is_file():
            out[str(path.relative_to(world["root"]))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


LONG = "m" * 5000

#: (id, arguments with {placeholders} from the world, words the error line must hold)
CASES: list[tuple[str, list[str], list[str]]] = [
    # data loss: an output that is, holds or sits inside an input
    ("finetune-over-its-model", ["finetune", "{model}", "--data", "{data}", "--output", "{model}", *TRAIN],
     ["would overwrite or contain the input"]),
    ("finetune-inside-its-model", ["finetune", "{model}", "--data", "{data}", "--output", "{model}/ft", *TRAIN],
     ["would overwrite or contain the input"]),
    ("finetune-over-its-data", ["finetune", "{model}", "--data", "{data}", "--output", "{data}", "--overwrite",
                                *TRAIN], ["would overwrite or contain the input"]),
    ("finetune-holding-its-model", ["finetune", "{model}", "--data", "{data}", "--output", "{root}", "--overwrite",
                                    *TRAIN], ["would overwrite or contain the input"]),
    ("distill-over-the-teacher", ["distill", "--teacher", "{model}", "--student", "layers=1", "--data", "{data}",
                                  "--output", "{model}", "--overwrite", *TRAIN],
     ["would overwrite or contain the input"]),
    ("distill-over-the-student", ["distill", "--teacher", "{model}", "--student", "{other}", "--data", "{data}",
                                  "--output", "{other}", "--overwrite", *TRAIN],
     ["would overwrite or contain the input"]),
    ("compress-over-its-model", ["compress", "{model}", "--recipe", "quantize:int8-dynamic", "--output", "{model}",
                                 "--overwrite", "--max-length", "16"], ["would overwrite or contain the input"]),
    ("optimize-over-its-model", ["optimize", "{model}", "--data", "{data}", "--output", "{model}",
                                 "--storage", "sqlite:///{root}/studies.db"], ["would overwrite or contain the input"]),
    # an existing output needs --overwrite, and --overwrite replaces only a model
    ("finetune-existing-output", ["finetune", "{model}", "--data", "{data}", "--output", "{existing}", *TRAIN],
     ["already exists", "--overwrite"]),
    ("distill-existing-output", ["distill", "--teacher", "{model}", "--student", "layers=1", "--data", "{data}",
                                 "--output", "{existing}", *TRAIN], ["already exists", "--overwrite"]),
    ("compress-existing-output", ["compress", "{model}", "--recipe", "quantize:int8-dynamic", "--output",
                                  "{existing}", "--max-length", "16"], ["already exists", "--overwrite"]),
    ("overwrite-a-folder-of-own-files", ["finetune", "{model}", "--data", "{data}", "--output", "{mine}",
                                         "--overwrite", *TRAIN], ["holds no model"]),
    # unwritable places, said before any work
    ("compress-output-under-a-file", ["compress", "{model}", "--recipe", "quantize:int8-dynamic", "--output",
                                      "{file}/out", "--max-length", "16"], ["is a file, not a folder"]),
    ("compress-output-read-only", ["compress", "{model}", "--recipe", "quantize:int8-dynamic", "--output",
                                   "{ro}/out", "--max-length", "16"], ["cannot write in", "read-only"]),
    ("finetune-output-read-only", ["finetune", "{model}", "--data", "{data}", "--output", "{ro}/ft", *TRAIN],
     ["read-only"]),
    ("profile-json-under-a-file", ["profile", "{model}", "--seq-len", "16", "--json", "{file}/x.json"],
     ["--json", "is a file, not a folder"]),
    ("profile-csv-read-only", ["profile", "{model}", "--seq-len", "16", "--csv", "{ro}/x.csv"],
     ["--csv", "read-only"]),
    ("profile-json-is-a-folder", ["profile", "{model}", "--seq-len", "16", "--json", "{mine}"], ["is a folder"]),
    ("report-html-under-a-file", ["report", "1", "--html", "{file}/r.html"], ["--html", "is a file"]),
    ("report-markdown-read-only", ["report", "1", "--markdown", "{ro}/r.md"], ["--markdown", "read-only"]),
    ("runs-export-under-a-file", ["runs", "export", "--format", "csv", "--output", "{file}/runs.csv"],
     ["--output", "is a file"]),
    ("runs-export-read-only", ["runs", "export", "--format", "json", "--output", "{ro}/runs.json"],
     ["--output", "read-only"]),
    ("evaluate-json-under-a-file", ["evaluate", "{model}", "--data", "{data}", "--json", "{file}/e.json"],
     ["--json", "is a file"]),
    # unclear failures that were internal errors
    ("a-5000-character-model-name", ["profile", LONG], ["5,000 characters"]),
    ("a-batch-far-too-big", ["profile", "{model}", "--seq-len", "16", "--batch-size", "1000000000000"],
     ["batch 1,000,000,000,000 needs about", "is free", "smaller --batch-size"]),
    ("finetune-on-one-class", ["finetune", "{model}", "--data", "{one}", "--output", "{root}/ft-one", *TRAIN],
     ["1 class", "meaningless"]),
    # the bad inputs the command tests already cover
    ("finetune-unknown-optimizer", ["finetune", "{model}", "--data", "{data}", "--output", "{root}/o",
                                    "--optimizer", "lion", *TRAIN], ["'lion'"]),
    ("finetune-impossible-target", ["finetune", "{model}", "--data", "{data}", "--output", "{root}/o",
                                    "--target-metric", "f1=1.5", *TRAIN], ["f1=1.5"]),
    ("finetune-nproc-too-large", ["finetune", "{model}", "--data", "{data}", "--output", "{root}/o", "--nproc",
                                  "999", *TRAIN], ["--nproc 999", "CPU cores"]),
    ("compress-unknown-step", ["compress", "{model}", "--recipe", "prune:sideways"], ["sideways"]),
    ("optimize-negative-drop", ["optimize", "{model}", "--data", "{data}", "--max-drop", "-1", "--storage",
                                "sqlite:///{root}/studies.db"], ["--max-drop must be zero or more"]),
    ("distill-zero-layers", ["distill", "--teacher", "{model}", "--student", "layers=0", "--data", "{data}",
                             "--output", "{root}/s", *TRAIN], ["layers"]),
]


@pytest.mark.parametrize("args, words", [pytest.param(a, w, id=i) for i, a, w in CASES])
def test_bad_input_is_one_line_exit_2_and_loses_nothing(world, args, words, capsys, monkeypatch):
    real_access = os.access

    def access(path, mode, *a, **k):  # root writes anywhere: make one folder read-only as a user sees it
        if str(path).startswith(str(world["ro"])) and mode & os.W_OK:
            return False
        return real_access(path, mode, *a, **k)

    monkeypatch.setattr(os, "access", access)
    argv = [a.format(**{k: str(v) for k, v in world.items()}) for a in args]
    before, rows = checksums(world), open_store().count()
    refused(steelyard(*argv), capsys, *words)
    assert checksums(world) == before  # the models, data and the user's folders are untouched
    assert open_store().count() == rows
    strays = [p.name for p in world["root"].iterdir() if p.name.startswith(".")]
    assert not strays, strays
