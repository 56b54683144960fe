"""Every data source on small fixtures written here, the offline demo sets, and bad input."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from steelyard.data import SPLITS, TaskDataset, builtin_datasets, load_dataset, stratified_split
from steelyard.errors import DataError, SteelyardError

LABELS = ["pos", "neg", "neu"]


def _rows(n: int = 30) -> list[dict[str, object]]:
    return [{"text": f"example number {i} about {LABELS[i % 3]}", "label": LABELS[i % 3]} for i in range(n)]


def _write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    import pandas as pd

    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _all_texts(ds: TaskDataset) -> list[str]:
    return [ex.text for s in SPLITS for ex in ds.split(s)]  # type: ignore[misc]


def _png(path: Path, value: int, size: tuple[int, int] = (6, 5), mode: str = "L") -> None:
    image = pytest.importorskip("PIL.Image")
    arr = np.full((size[1], size[0]), value, dtype=np.uint8)
    arr[0, 0] = 255 - value
    img = image.fromarray(arr, mode="L")
    if mode != "L":
        img = img.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


# --- tables ---------------------------------------------------------------------------------------


def test_csv_string_labels_sorted_and_split(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "reviews.csv", _rows(30))
    ds = load_dataset(path)
    assert ds.task == "text-classification"
    assert ds.label_names == ["neg", "neu", "pos"]
    assert ds.num_labels == 3
    assert ds.name == "reviews"
    assert sum(ds.sizes().values()) == 30
    assert ds.sizes() == {"train": 21, "validation": 3, "test": 6}
    # every class in every split: the split is stratified
    for split in SPLITS:
        assert sorted({ex.label for ex in ds.split(split)}) == [0, 1, 2]
    first = next(ex for ex in ds.split("all") if ex.text == "example number 0 about pos")
    assert ds.label_names[first.label] == "pos"  # type: ignore[index]
    assert any("stratified" in note for note in ds.notes)


def test_splits_are_deterministic_disjoint_and_seeded(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "d.csv", _rows(60))
    a, b, c = load_dataset(path, seed=1), load_dataset(path, seed=1), load_dataset(path, seed=2)
    for split in SPLITS:
        assert [e.text for e in a.split(split)] == [e.text for e in b.split(split)]
    assert [e.text for e in a.test] != [e.text for e in c.test]
    sets = [{e.text for e in a.split(s)} for s in SPLITS]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert len(set().union(*sets)) == 60


def test_split_column_is_used_and_validation_carved_from_train(tmp_path: Path) -> None:
    rows = _rows(40)
    for i, row in enumerate(rows):
        row["split"] = "test" if i < 10 else "train"
    ds = load_dataset(_write_csv(tmp_path / "s.csv", rows))
    assert {e.text for e in ds.test} == {r["text"] for r in rows[:10]}
    assert len(ds.train) + len(ds.validation) == 30
    assert len(ds.validation) == 3
    assert any("carved validation" in note for note in ds.notes)


def test_integer_labels_are_kept(tmp_path: Path) -> None:
    rows = [{"text": f"t{i}", "label": [0, 2][i % 2]} for i in range(10)]
    ds = load_dataset(_write_csv(tmp_path / "ints.csv", rows))
    assert ds.label_names == ["0", "1", "2"]
    assert {e.label for e in ds.split("all")} == {0, 2}


def test_tsv_jsonl_json_and_parquet(tmp_path: Path) -> None:
    import pandas as pd

    rows = _rows(20)
    pd.DataFrame(rows).to_csv(tmp_path / "a.tsv", sep="\t", index=False)
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    (tmp_path / "a.json").write_text(json.dumps(rows), encoding="utf-8")
    pd.DataFrame(rows).to_parquet(tmp_path / "a.parquet")
    expected = sorted(r["text"] for r in rows)
    for suffix in ("tsv", "jsonl", "json", "parquet"):
        ds = load_dataset(tmp_path / f"a.{suffix}")
        assert sorted(_all_texts(ds)) == expected, suffix
        assert ds.label_names == ["neg", "neu", "pos"]


def test_json_with_split_keys(tmp_path: Path) -> None:
    rows = _rows(20)
    path = tmp_path / "splits.json"
    path.write_text(json.dumps({"train": rows[:14], "dev": rows[14:16], "test": rows[16:]}), encoding="utf-8")
    ds = load_dataset(path)
    assert ds.sizes() == {"train": 14, "validation": 2, "test": 4}


def test_custom_columns(tmp_path: Path) -> None:
    rows = [{"body": r["text"], "category": r["label"]} for r in _rows(12)]
    ds = load_dataset(_write_csv(tmp_path / "c.csv", rows), text_column="body", label_column="category")
    assert len(ds) == 12 and ds.num_labels == 3


def test_parquet_image_column_of_png_bytes(tmp_path: Path) -> None:
    import io

    import pandas as pd

    image = pytest.importorskip("PIL.Image")
    cells = []
    for v in range(6):
        buf = io.BytesIO()
        image.fromarray(np.full((4, 4), v * 10, dtype=np.uint8)).save(buf, format="PNG")
        cells.append({"bytes": buf.getvalue(), "path": None})
    pd.DataFrame({"image": cells, "label": [0, 1] * 3}).to_parquet(tmp_path / "img.parquet")
    ds = load_dataset(tmp_path / "img.parquet")
    assert ds.task == "image-classification"
    assert all(ex.image.shape == (4, 4) for ex in ds.split("all"))  # type: ignore[union-attr]


def test_image_column_of_relative_paths(tmp_path: Path) -> None:
    for i in range(4):
        _png(tmp_path / "imgs" / f"{i}.png", 40 * i)
    _write_csv(tmp_path / "m.csv", [{"image": f"imgs/{i}.png", "label": i % 2} for i in range(4)])
    ds = load_dataset(tmp_path / "m.csv", "image-classification")
    values = sorted(int(ex.image[1, 1]) for ex in ds.split("all"))  # type: ignore[index]
    assert values == [0, 40, 80, 120]


# --- text for causal LM ---------------------------------------------------------------------------


def test_txt_file_is_causal_lm(tmp_path: Path) -> None:
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(f"line {i} of text" for i in range(20)) + "\n\n\n", encoding="utf-8")
    ds = load_dataset(path)
    assert ds.task == "causal-lm" and ds.label_names == [] and ds.num_labels == 0
    assert len(ds) == 20
    assert all(ex.label is None for ex in ds.split("all"))


def test_csv_for_causal_lm_ignores_labels(tmp_path: Path) -> None:
    rows = [{"text": f"sentence {i}"} for i in range(10)]
    ds = load_dataset(_write_csv(tmp_path / "lm.csv", rows), "causal-lm")
    assert len(ds) == 10 and ds.num_labels == 0


# --- folders --------------------------------------------------------------------------------------


def test_class_folders_of_text(tmp_path: Path) -> None:
    root = tmp_path / "news"
    for name in ("sport", "tech"):
        (root / name).mkdir(parents=True)
        for i in range(5):
            (root / name / f"{i:03d}.txt").write_text(f"{name} story {i}\n", encoding="utf-8")
    (root / "tech" / ".DS_Store").write_bytes(b"\x00\xff")
    ds = load_dataset(root)
    assert ds.task == "text-classification"
    assert ds.label_names == ["sport", "tech"]
    assert len(ds) == 10
    assert sorted(_all_texts(ds))[0] == "sport story 0"  # stripped of the trailing newline


def test_class_folders_of_png_images(tmp_path: Path) -> None:
    root = tmp_path / "shapes"
    for c, name in enumerate(("circle", "square", "triangle")):
        for i in range(4):
            _png(root / name / f"{i}.png", 10 * c + i, mode="RGB" if name == "square" else "L")
    ds = load_dataset(root, seed=3)
    assert ds.task == "image-classification"
    assert ds.label_names == ["circle", "square", "triangle"]
    assert len(ds) == 12
    shapes = {ex.image.shape for ex in ds.split("all")}  # type: ignore[union-attr]
    assert shapes == {(5, 6), (5, 6, 3)}
    assert all(ex.image.dtype == np.uint8 for ex in ds.split("all"))  # type: ignore[union-attr]


def test_numeric_class_folders_sort_numerically(tmp_path: Path) -> None:
    for c in (0, 1, 2, 10):
        (tmp_path / "n" / str(c)).mkdir(parents=True)
        (tmp_path / "n" / str(c) / "a.txt").write_text(f"class {c}", encoding="utf-8")
    ds = load_dataset(tmp_path / "n")
    assert ds.label_names == ["0", "1", "2", "10"]


def test_split_subfolders_of_classes(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    for split, n in (("train", 6), ("test", 2)):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                (root / split / name / f"{i}.txt").write_text(f"{split} {name} {i}", encoding="utf-8")
    ds = load_dataset(root)
    assert len(ds.test) == 4 and all(ex.text.startswith("test") for ex in ds.test)  # type: ignore[union-attr]
    assert len(ds.train) + len(ds.validation) == 12
    assert len(ds.validation) == 2  # 10% of each class's 6, rounded, carved from train


def test_folder_of_split_files(tmp_path: Path) -> None:
    rows = _rows(30)
    _write_csv(tmp_path / "train.csv", rows[:20])
    _write_csv(tmp_path / "val.csv", rows[20:24])
    _write_csv(tmp_path / "test.csv", rows[24:])
    ds = load_dataset(tmp_path)
    assert ds.sizes() == {"train": 20, "validation": 4, "test": 6}
    assert ds.name == tmp_path.name


def test_folder_of_split_text_files_for_causal_lm(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text("a b c\nd e f\n", encoding="utf-8")
    (tmp_path / "test.txt").write_text("g h\n", encoding="utf-8")
    ds = load_dataset(tmp_path)
    assert ds.task == "causal-lm"
    assert [e.text for e in ds.test] == ["g h"]


# --- built-in demo sets ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bbc() -> TaskDataset:
    return load_dataset("bbc-news")


def test_bbc_news(bbc: TaskDataset) -> None:
    assert len(bbc) == 2225
    assert bbc.num_labels == 5
    assert bbc.label_names == ["business", "entertainment", "politics", "sports", "tech"]
    assert bbc.source == "builtin:bbc-news"
    assert all(ex.text for ex in bbc.split("all"))
    # The one Windows-1252 article decodes with its pound sign.
    assert any("£" in (ex.text or "") for ex in bbc.split("all"))
    for split in SPLITS:
        assert len({ex.label for ex in bbc.split(split)}) == 5
    assert "bbc-news" in builtin_datasets() and "digits" in builtin_datasets()


def test_bbc_news_subset_is_stratified_and_deterministic(bbc: TaskDataset) -> None:
    small = bbc.subset({"train": 50, "test": 25}, seed=0)
    assert small.sizes() == {"train": 50, "validation": len(bbc.validation), "test": 25}
    assert len({ex.label for ex in small.train}) == 5
    again = bbc.subset({"train": 50, "test": 25}, seed=0)
    assert [e.text for e in small.train] == [e.text for e in again.train]
    assert bbc.subset(10).sizes() == {"train": 10, "validation": 10, "test": 10}


def test_digits() -> None:
    ds = load_dataset("digits")
    assert len(ds) == 1797 and ds.num_labels == 10
    assert ds.task == "image-classification"
    img = ds.train[0].image
    assert img is not None and img.shape == (8, 8) and img.dtype == np.float32
    assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0
    with pytest.raises(DataError, match="supports tasks image-classification"):
        load_dataset("digits", "text-classification")


# --- Hugging Face datasets (a stand-in module: no network, no datasets package needed) -------------


class _ClassLabel:
    def __init__(self, names: list[str]) -> None:
        self.names = names


_ClassLabel.__name__ = "ClassLabel"


class _FakeDataset:
    def __init__(self, rows: list[dict[str, object]], features: dict[str, object]) -> None:
        self.rows, self.features = rows, features

    def to_pandas(self) -> object:
        import pandas as pd

        return pd.DataFrame(self.rows)


def _fake_datasets(monkeypatch: pytest.MonkeyPatch, calls: list[tuple]) -> None:
    features = {"text": object(), "label": _ClassLabel(["world", "sports"])}
    rows = [{"text": f"t{i}", "label": i % 2} for i in range(20)]
    splits = {
        "train": _FakeDataset(rows[:16], features),
        "test": _FakeDataset([{"text": "x", "label": -1}] * 3, features),
        "unsupervised": _FakeDataset(rows, features),
    }

    def load(path: str, name: str | None = None) -> dict[str, _FakeDataset]:
        calls.append(("load_dataset", path, name))
        if path == "missing/thing":
            raise FileNotFoundError("Dataset 'missing/thing' doesn't exist on the Hub")
        return splits

    def load_from_disk(path: str) -> dict[str, _FakeDataset]:
        calls.append(("load_from_disk", path))
        return {"train": splits["train"], "validation": _FakeDataset(rows[16:], features)}

    module = types.ModuleType("datasets")
    module.load_dataset = load  # type: ignore[attr-defined]
    module.load_from_disk = load_from_disk  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", module)


def test_hub_dataset_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple] = []
    _fake_datasets(monkeypatch, calls)
    ds = load_dataset("someone/news:default")
    assert calls == [("load_dataset", "someone/news", "default")]
    assert ds.label_names == ["world", "sports"]  # from the ClassLabel feature, not sorted
    assert ds.source == "hf:someone/news:default" and ds.name == "news"
    # the unlabelled test split (-1) and the unsupervised split are skipped; test is carved from train
    assert len(ds) == 16 and len(ds.test) > 0
    assert any("unsupervised" in n for n in ds.notes) and any("no labels" in n for n in ds.notes)


def test_saved_to_disk_dataset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[tuple] = []
    _fake_datasets(monkeypatch, calls)
    (tmp_path / "dataset_dict.json").write_text('{"splits": ["train", "validation"]}', encoding="utf-8")
    ds = load_dataset(tmp_path)
    assert calls == [("load_from_disk", str(tmp_path))]
    assert len(ds.validation) == 4 and len(ds.train) + len(ds.test) == 16


def test_hub_failure_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_datasets(monkeypatch, [])
    with pytest.raises(DataError, match=r"could not load dataset 'missing/thing'.*doesn't exist"):
        load_dataset("missing/thing")


def test_unknown_source_without_datasets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(DataError) as info:
        load_dataset("no_such_dataset_anywhere")
    message = str(info.value)
    assert "unknown data source 'no_such_dataset_anywhere'" in message
    assert "bbc-news" in message and "pip install datasets" in message
    assert "\n" not in message


# --- bad input ------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data file not found: .*nope\.csv"):
        load_dataset(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="data file not found"):
        load_dataset("./data/missing_folder")


def test_misspelt_text_column_names_columns_and_suggests(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "d.csv", _rows(6))
    with pytest.raises(DataError) as info:
        load_dataset(path, text_column="txt")
    message = str(info.value)
    assert "no text column 'txt'" in message
    assert "columns are 'text', 'label'" in message
    assert "did you mean 'text'?" in message
    assert "--text-column" in message


def test_misspelt_label_column(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "d.csv", [{"text": "a", "labels": "x"}, {"text": "b", "labels": "y"}])
    with pytest.raises(DataError, match=r"no label column 'label'.*did you mean 'labels'\?"):
        load_dataset(path)


def test_no_text_or_image_column(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "d.csv", [{"body": "a", "label": "x"}])
    with pytest.raises(DataError, match=r"no text column 'text'.*columns are 'body', 'label'"):
        load_dataset(path)


def test_empty_datasets(tmp_path: Path) -> None:
    (tmp_path / "header.csv").write_text("text,label\n", encoding="utf-8")
    (tmp_path / "blank.csv").write_text("", encoding="utf-8")
    (tmp_path / "blank.jsonl").write_text("\n", encoding="utf-8")
    (tmp_path / "classes" / "a").mkdir(parents=True)
    (tmp_path / "empty_dir").mkdir()
    for name in ("header.csv", "blank.csv", "blank.jsonl", "classes"):
        with pytest.raises(DataError, match="the dataset is empty"):
            load_dataset(tmp_path / name)
    with pytest.raises(DataError, match="no data found"):
        load_dataset(tmp_path / "empty_dir")


def test_non_utf8_csv_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"text,label\nfine,a\ncaf\xe9,b\n")
    with pytest.raises(DataError, match=r"latin.csv line 3 is not UTF-8 text \(byte 0xe9"):
        load_dataset(path)


def test_non_utf8_jsonl_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"text": "ok", "label": 1}\n{"text": "caf\xe9", "label": 0}\n')
    with pytest.raises(DataError, match=r"bad.jsonl line 2 is not UTF-8"):
        load_dataset(path)


def test_non_utf8_text_file_in_class_folder(tmp_path: Path) -> None:
    (tmp_path / "c" / "a").mkdir(parents=True)
    (tmp_path / "c" / "a" / "good.txt").write_text("fine", encoding="utf-8")
    (tmp_path / "c" / "a" / "bad.txt").write_bytes(b"\xff\xfe broken")
    with pytest.raises(DataError, match=r"bad.txt line 1 is not UTF-8 text"):
        load_dataset(tmp_path / "c")


def test_invalid_json_line(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"text": "a", "label": 1}\n{"text": oops}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"x.jsonl line 2: not valid JSON"):
        load_dataset(path)


def test_image_that_does_not_decode(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    root = tmp_path / "imgs"
    _png(root / "cat" / "ok.png", 3)
    _png(root / "dog" / "ok.png", 9)
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    with pytest.raises(DataError, match=r"cannot decode image .*dog.broken\.png: Truncated"):
        load_dataset(root)
    (root / "dog" / "broken.png").unlink()
    (root / "cat" / "notes.jpg").write_text("this is text", encoding="utf-8")
    with pytest.raises(DataError, match=r"cannot decode image .*cat.notes\.jpg: not a recognised image format"):
        load_dataset(root)


def test_missing_labels_and_unknown_task(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "d.csv", [{"text": "a", "label": "x"}, {"text": "b", "label": None}])
    with pytest.raises(DataError, match=r"1 example\(s\) have no label \(first at .*d.csv line 3\)"):
        load_dataset(path)
    with pytest.raises(DataError, match="unknown task 'summarisation'; known tasks: text-classification"):
        load_dataset(path, "summarisation")


def test_text_file_for_classification_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_text("hello\n", encoding="utf-8")
    with pytest.raises(DataError, match="only serves task 'causal-lm'"):
        load_dataset(path, "text-classification")


def test_unknown_split_values(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "d.csv", [{"text": "a", "label": "x", "split": "holdout"}])
    with pytest.raises(DataError, match=r"column 'split' has values \['holdout'\]"):
        load_dataset(path)


def test_errors_are_steelyard_errors() -> None:
    assert issubclass(DataError, SteelyardError)


def test_stratified_split_keeps_tiny_classes_in_train() -> None:
    labels = [0] * 10 + [1]
    train, val, test = stratified_split(labels, 0.1, 0.2, seed=0)
    assert 10 in train
    assert sorted(train + val + test) == list(range(11))
    with pytest.raises(DataError, match="fractions"):
        stratified_split(labels, 0.5, 0.5)


def test_a_larger_validation_share_comes_from_train_and_leaves_test_alone(bbc: TaskDataset) -> None:
    """``val_fraction`` sizes the split model selection reads; the test split must not move with it, or
    results chosen on different validation shares could not be compared on one test set."""
    from steelyard.data.options import DataOptions
    from steelyard.errors import ConfigError

    wider = load_dataset("bbc-news", val_fraction=0.2)
    assert [e.text for e in wider.test] == [e.text for e in bbc.test]
    assert {e.text for e in bbc.validation} < {e.text for e in wider.validation}
    assert len(wider.validation) == 444 and len(bbc.validation) == 223  # 20% and 10% of 2,225, per class
    assert len(wider.train) + len(wider.validation) == len(bbc.train) + len(bbc.validation)
    cleaned = DataOptions("bbc-news", val_fraction=0.2).load()  # the option every task command builds
    assert len(cleaned.validation) > 1.9 * len(DataOptions("bbc-news").load().validation)
    for bad in (0, 0.8, 1.5, -0.1):
        with pytest.raises(ConfigError, match=r"--val-fraction must be between 0 and 0\.8"):
            DataOptions("bbc-news", val_fraction=bad)
