"""A hostile model folder or data file must not run code or inject markup: one test per way in.

The code-execution tests plant Python in the folder that writes a marker file when imported; the
marker must never appear unless the user passes ``--trust-remote-code``. The injection tests give
names and labels holding rich markup and HTML and check they come out as the same text.
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import pytest
import torch

from cli_helpers import steelyard
from text_toys import reviews_csv, tiny_bert


def plant(folder: Path, module: str, marker: Path) -> None:
    """``module.py`` in ``folder``: importing it writes ``marker`` (and it has a factory, ``build``)."""
    (folder / f"{module}.py").write_text(
        "from pathlib import Path\n"
        f"Path({str(marker)!r}).write_text('code ran')\n"
        "def build():\n    import torch\n    return torch.nn.Linear(4, 2), (torch.zeros(1, 4),)\n")


@pytest.fixture
def forget_planted():
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("evil_"):
            del sys.modules[name]


def test_a_compressed_folder_naming_a_factory_imports_nothing_without_trust(tmp_path, monkeypatch, capsys,
                                                                             forget_planted):
    from steelyard.compression import CastConfig, compress
    from steelyard.models import InputSpec, LoadConfig, load_model

    model = tiny_bert(tmp_path / "model", layers=1, hidden=16, heads=2, max_positions=64)
    handle = load_model(str(model), LoadConfig(inputs=InputSpec(seq_len=8)))
    folder = compress(handle, CastConfig()).save(tmp_path / "downloaded")
    manifest_file = folder / "steelyard_compression.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["source"] = {"kind": "factory", "name": "evil_factory:build", "path": None}
    manifest_file.write_text(json.dumps(manifest))
    marker = tmp_path / "MARKER"
    plant(folder, "evil_factory", marker)
    monkeypatch.chdir(folder)  # factories are imported from the working folder: the worst case
    capsys.readouterr()

    assert steelyard("profile", folder, "--seq-len", "8", "--no-save") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "--trust-remote-code" in err
    assert "evil_factory:build" in err
    assert not marker.exists()

    from steelyard.compression.serialization.loader import load_compressed

    with pytest.raises(Exception, match="trust-remote-code"):
        load_compressed(folder)
    assert not marker.exists()
    with pytest.raises(Exception):  # noqa: B017 - with trust the factory runs (and its Linear cannot take the weights)
        load_compressed(folder, trust_remote_code=True)
    assert marker.exists()  # the flag, and only the flag, opens the gate


def test_a_config_with_auto_map_runs_no_code_without_trust(tmp_path, capsys, forget_planted):
    model = tiny_bert(tmp_path / "model", layers=1, hidden=16, heads=2, max_positions=64)
    config = json.loads((model / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil_config.EvilConfig"}
    (model / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "MARKER"
    plant(model, "evil_config", marker)
    code = steelyard("profile", model, "--seq-len", "8", "--no-save")
    err = capsys.readouterr().err
    assert code in (0, 2) and "Traceback" not in err and "internal error" not in err
    assert not marker.exists()


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


def test_a_pickled_checkpoint_is_never_unpickled_unsafely(tmp_path, capsys):
    model = tiny_bert(tmp_path / "model", layers=1, hidden=16, heads=2, max_positions=64)
    for weights in model.glob("*.safetensors"):
        weights.unlink()
    marker = tmp_path / "MARKER"
    with open(model / "pytorch_model.bin", "wb") as fh:
        pickle.dump({"bert.embeddings.word_embeddings.weight": _Payload(marker)}, fh)
    code = steelyard("profile", model, "--seq-len", "8", "--weights", "--no-save")
    err = capsys.readouterr().err
    assert code == 2 and "internal error" not in err, err
    assert not marker.exists()
    with pytest.raises(Exception):  # noqa: B017 - torch's own guard, the one steelyard relies on
        torch.load(model / "pytorch_model.bin", weights_only=True)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["model[bold]", "model[v2]", "m[/]x", "m[link=file:///etc]x"])
def test_markup_in_a_model_folder_name_prints_as_written(tmp_path, capsys, name):
    model = tiny_bert(tmp_path / name, layers=1, hidden=16, heads=2, max_positions=64)
    assert steelyard("profile", model, "--seq-len", "8", "--no-save") == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(str(model) + " "), first


def test_markup_and_html_in_csv_labels_print_as_written(tmp_path, capsys):
    data = tmp_path / "labels.csv"
    labels = ["pos[/]", "neg[bold]"]
    data.write_text("text,label\n" + "".join(f"item {i},{labels[i % 2]}\n" for i in range(40)))
    assert steelyard("data-report", "--data", data) == 0
    text = capsys.readouterr().out
    assert "pos[/]" in text and "neg[bold]" in text


def test_html_in_run_names_is_inert_in_markdown_and_html_reports(tmp_path, capsys):
    evil = '<img src=x onerror="alert(1)">'
    model = tiny_bert(tmp_path / "model", layers=1, hidden=16, heads=2, max_positions=64)
    data = reviews_csv(tmp_path / "r.csv", 40)
    text = data.read_text().replace("\n0\n", "\n0\n")
    rows = text.splitlines()
    rows = [rows[0]] + [r.rsplit(",", 1)[0] + "," + (evil if r.endswith(",0") else "<script>x</script>")
                        for r in rows[1:]]
    data.write_text("\n".join(rows) + "\n")
    assert steelyard("evaluate", model, "--data", data, "--max-length", "16") == 0
    capsys.readouterr()
    md, html = tmp_path / "r.md", tmp_path / "r.html"
    assert steelyard("report", "1", "--markdown", md, "--html", html) == 0
    for page in (md.read_text(), html.read_text()):
        assert evil not in page and "<script>x</script>" not in page
