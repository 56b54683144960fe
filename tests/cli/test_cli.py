"""The CLI end to end: real commands, real store, clear errors with non-zero exits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from steelyard.cli.main import run
from steelyard.reporting.files import read_csv
from steelyard.store import open_store
from tiny_configs import save_tiny_bert


def steelyard(*args: str) -> int:
    return run(list(args))


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny-bert")
    return save_tiny_bert(path, max_positions=64)


def test_profile_config_only_writes_json_csv_and_store(tmp_path, capsys):
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    code = steelyard("profile", "gpt2", "--config-only", "--seq-len", "64", "--hardware", "t4,a100-80gb",
                     "--json", str(out_json), "--csv", str(out_csv))
    assert code == 0
    data = json.loads(out_json.read_text())
    assert data["parameters"]["total"] == 124_439_808
    assert data["on_meta"] is True and data["measured"] is None
    assert [v["hardware"] for v in data["hardware"]] == ["t4", "a100-80gb"]
    rows = read_csv(out_csv)
    assert float(rows["parameters.total"]) == 124_439_808
    assert rows["hardware.t4.fits_inference"] == "True"
    text = capsys.readouterr().out
    assert "1 multiply-add = 2 FLOPs = 1 MAC" in text and "saved as run" in text
    runs = open_store().list_runs()
    assert len(runs) == 1 and runs[0].kind == "profile" and runs[0].model == "gpt2"
    assert runs[0].metrics["parameters"][0] == 124_439_808
    assert runs[0].payload["compute"]["flops"] == data["compute"]["flops"]


def test_profile_real_weights_measures(tiny_bert_dir, tmp_path):
    out = tmp_path / "r.json"
    code = steelyard("profile", str(tiny_bert_dir), "--batch-size", "4", "--seq-len", "16", "--runs", "3",
                     "--warmup", "1", "--threads", "1", "--hardware", "local", "--json", str(out))
    assert code == 0
    data = json.loads(out.read_text())
    assert data["task"] == "text-classification"
    lat = data["measured"]["latency"]
    assert lat["threads"] == 1 and lat["runs"] >= 3 and lat["minimum"] <= lat["median"] <= lat["maximum"]
    assert [p["batch_size"] for p in data["measured"]["throughput"]] == [1, 2, 4]
    assert data["storage"]["on_disk"] == (tiny_bert_dir / "model.safetensors").stat().st_size
    assert data["energy"]["method"] in ("estimated", "measured-rapl")


def test_estimate_counts_and_prices(tmp_path):
    out = tmp_path / "e.json"
    code = steelyard("estimate", "gpt2", "--tokens", "1B", "--seq-len", "128", "--hardware", "a100-80gb",
                     "--utilization", "0.5", "--json", str(out))
    assert code == 0
    data = json.loads(out.read_text())
    assert data["tokens"] == 1e9 and data["method"] == "counted"
    row = data["rows"][0]
    assert row["device_hours"] == pytest.approx(data["total_flops"] / (row["peak_flops_per_second"] * 0.5) / 3600)
    # counted forward+backward of a dense transformer lands near 6·N·D (attention and the LM head add to it)
    assert 0.9 < data["total_flops"] / data["six_nd_flops"] < 1.3


def test_hardware_list_json(capsys):
    assert steelyard("hardware", "list", "--json", "-", "--quiet") == 0
    names = [d["name"] for d in json.loads(capsys.readouterr().out)["devices"]]
    assert {"t4", "a100-80gb", "h100-sxm", "phone"} <= set(names)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["profile", "resnet-18"], "add --config-only"),
        (["profile", "llama-3-8b", "--config-only", "--hardware", "a100"], "did you mean a100-40gb"),
        (["profile", "gpt2", "--config-only", "--seq-len", "5000"], "exceeds the model's maximum"),
        (["profile", "gpt2", "--config-only", "--dtype", "float8"], "unknown dtype"),
        (["profile", "gpt2", "--config-only", "--task", "translation"], "unknown task"),
        (["profile", "os:getcwd"], "not a torch.nn.Module"),
        (["profile", "gpt2", "--config-only", "--device", "tpu"], "unknown device"),
        (["profile", "no_such_module_xyz:make"], "cannot import factory"),
        (["estimate", "gpt2", "--tokens", "lots"], "--tokens must be a number"),
        (["estimate", "gpt2", "--tokens", "1e9", "--seq-len", "64", "--utilization", "1.5"], "utilization must be in"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(args, message, capsys):
    code = steelyard(*args)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err and err.strip().count("\n") == 0


def test_unknown_option_is_a_usage_error(capsys):
    assert steelyard("estimate", "gpt2", "--bogus-flag") == 2
    err = capsys.readouterr().err
    assert "No such option" in err and "Traceback" not in err


def test_missing_path_and_corrupt_weights(tiny_bert_dir, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((tiny_bert_dir / "config.json").read_text())
    (broken / "model.safetensors").write_bytes(b"not a safetensors file at all")
    assert steelyard("profile", str(broken), "--no-save") == 2
    assert "cannot read the weights" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert steelyard("profile", str(empty)) == 2
    assert "neither a model folder" in capsys.readouterr().err


def test_unreadable_store_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "not-a-db.db"
    bad.write_bytes(b"garbage" * 100)
    code = steelyard("--store", f"sqlite:///{bad}", "profile", "gpt2", "--config-only", "--seq-len", "8")
    assert code == 2
    assert "results store" in capsys.readouterr().err


def test_console_script_exit_code(tmp_path):
    """The installed entry point, as a user runs it, exits non-zero without a traceback."""
    proc = subprocess.run([sys.executable, "-m", "steelyard", "profile", "nonexistent-model-dir/"],
                          capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin",
                                                               "STEELYARD_STORE": f"sqlite:///{tmp_path}/s.db"})
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
