"""Data report, cleaning and augmentation on small hand-built datasets with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from steelyard.data import (
    Example,
    ImageAugment,
    TaskDataset,
    TextAugment,
    augment_examples,
    clean,
    data_report,
    drop_counts,
    hflip,
    random_crop,
    rotate,
    token_dropout,
    token_swap,
)
from steelyard.errors import ConfigError, DataError


def _ds(train: list[Example], validation: list[Example], test: list[Example], task: str = "text-classification"):
    names = ["neg", "pos"] if task != "causal-lm" else []
    return TaskDataset("toy", task, names, train, validation, test, source="test")


def _t(text: str, label: int | None = 0) -> Example:
    return Example(text=text, label=label)


@pytest.fixture()
def messy() -> TaskDataset:
    train = [
        _t("good film", 1),  # 0
        _t("bad film", 0),  # 1
        _t("good film", 1),  # 2 duplicate of 0
        _t("   ", 0),  # 3 empty
        _t("so so", 1),  # 4 conflicts with 5
        _t("so so", 0),  # 5
        _t("leaks into test", 1),  # 6 also in test
        _t("one two three four", 0),  # 7
    ]
    validation = [_t("fine", 1), _t("", 0)]
    test = [_t("leaks into test", 1), _t("awful", 0), _t("awful", 0)]
    return _ds(train, validation, test)


def test_report_finds_every_problem(messy: TaskDataset) -> None:
    r = data_report(messy)
    assert r.counts == {"train": 8, "validation": 2, "test": 3}
    assert r.empty == {"train": [3], "validation": [1], "test": []}
    assert r.duplicates == {"train": [2], "validation": [], "test": [2]}
    assert r.leakage == {"train": [6], "validation": [], "test": []}
    assert r.leakage_pairs == {"train/validation": 0, "train/test": 1, "validation/test": 0}
    assert len(r.conflicts) == 1
    conflict = r.conflicts[0]
    assert conflict.preview == "so so" and conflict.labels == ("neg", "pos")
    assert conflict.locations == (("train", 4), ("train", 5))
    assert r.n_conflicting == 2
    assert r.class_balance["train"] == {"neg": 4, "pos": 4}
    assert r.class_balance["test"] == {"neg": 2, "pos": 1}
    issues = " | ".join(r.issues())
    assert "train: 1 empty" in issues and "train/test: 1 example(s) shared" in issues
    assert "conflicting labels" in issues
    assert r.to_dict()["counts"]["train"] == 8


def test_length_stats_by_hand() -> None:
    ds = _ds([_t("a"), _t("a b"), _t("a b c d"), _t("")], [], [])
    r = data_report(ds)
    tokens = r.tokens["train"]
    assert tokens is not None
    assert (tokens.min, tokens.median, tokens.max) == (1, 2, 4)
    assert tokens.p90 == pytest.approx(np.percentile([1, 2, 4], 90))
    chars = r.chars["train"]
    assert chars is not None and (chars.min, chars.median, chars.max) == (1, 3, 7)
    assert r.tokens["test"] is None


def test_clean_drops_and_says_how_many(messy: TaskDataset) -> None:
    report = data_report(messy)
    assert drop_counts(report) == {"empty": 2, "conflicting": 2, "duplicate": 2, "leaked": 1}
    cleaned = clean(messy, report)
    assert [e.text for e in cleaned.train] == ["good film", "bad film", "one two three four"]
    assert [e.text for e in cleaned.validation] == ["fine"]
    assert [e.text for e in cleaned.test] == ["leaks into test", "awful"]  # the test set keeps its copy
    assert cleaned.notes[-1] == "clean: dropped 7 example(s) (2 empty, 2 conflicting, 2 duplicate, 1 leaked)"
    assert messy.sizes() == {"train": 8, "validation": 2, "test": 3}  # the original is untouched
    again = data_report(cleaned)
    assert not any(again.empty.values()) and not any(again.duplicates.values()) and not again.conflicts
    assert again.issues() == ["validation: no examples of neg"]


def test_clean_refuses_a_report_of_other_data(messy: TaskDataset) -> None:
    other = _ds([_t("x")], [], [])
    with pytest.raises(DataError, match="the data report is for"):
        clean(messy, data_report(other))


def test_image_duplicates_and_unlabelled_text() -> None:
    a = np.zeros((4, 4), dtype=np.uint8)
    b = np.ones((4, 4), dtype=np.uint8)
    ds = TaskDataset(
        "imgs", "image-classification", ["0", "1"],
        [Example(image=a, label=0), Example(image=a.copy(), label=0), Example(image=b, label=1)],
        [], [Example(image=b.copy(), label=1)], source="test",
    )
    r = data_report(ds)
    assert r.duplicates["train"] == [1] and r.leakage["train"] == [2]
    assert r.chars == {} and r.tokens == {}
    lm = _ds([_t("same", None), _t("same", None)], [], [_t("same", None)], task="causal-lm")
    r2 = data_report(lm)
    assert not r2.conflicts and r2.duplicates["train"] == [1] and r2.class_balance == {}


def test_imbalance_and_missing_class_are_reported() -> None:
    ds = _ds([_t(f"n{i}", 0) for i in range(6)] + [_t("p", 1)], [_t("v", 0)], [])
    r = data_report(ds)
    assert r.imbalance("train") == 6.0
    issues = r.issues()
    assert "validation: no examples of pos" in issues
    assert any("imbalanced" in line for line in issues)


def test_report_on_bbc_news_finds_its_known_duplicates() -> None:
    from steelyard.data import load_dataset

    ds = load_dataset("bbc-news")
    r = data_report(ds)
    counts = drop_counts(r)
    # BBC News is known to hold about a hundred repeated articles.
    assert counts["duplicate"] + counts["leaked"] == 98
    assert counts["empty"] == 0 and counts["conflicting"] == 0
    assert len(clean(ds, r)) == 2225 - 98


# --- augmentation -------------------------------------------------------------------------------


def test_token_dropout() -> None:
    text = "the quick brown fox jumps over the lazy dog"
    assert token_dropout(text, 0.0, 1) == text
    assert token_dropout(text, 0.3, 7) == token_dropout(text, 0.3, 7)
    dropped = token_dropout(text, 0.5, 3).split()
    assert 1 <= len(dropped) < 9
    assert all(t in text.split() for t in dropped)
    assert len(token_dropout(text, 1.0, 0).split()) == 1
    with pytest.raises(ConfigError, match="probability"):
        token_dropout(text, 1.5)


def test_token_swap_moves_tokens_at_most_one_place() -> None:
    text = "a b c d e f g h"
    swapped = token_swap(text, 1.0, 0)
    assert swapped == "b a d c f e h g"
    some = token_swap(text, 0.4, 5).split()
    assert sorted(some) == sorted(text.split())
    assert all(abs(some.index(t) - i) <= 1 for i, t in enumerate(text.split()))
    assert token_swap("single", 1.0) == "single"


def test_image_transforms() -> None:
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert hflip(img).tolist() == [[3, 2, 1, 0], [7, 6, 5, 4], [11, 10, 9, 8]]
    rgb = np.stack([img] * 3, axis=-1)
    assert hflip(rgb).shape == (3, 4, 3)
    crop = random_crop(img, 1, seed=0)
    assert crop.shape == img.shape and crop.dtype == img.dtype
    # a crop is the image shifted by at most one pixel: some 2x3 window of the original survives
    assert any(
        np.array_equal(crop[max(0, -dy) : 3 - max(0, dy), max(0, -dx) : 4 - max(0, dx)],
                       img[max(0, dy) : 3 - max(0, -dy), max(0, dx) : 4 - max(0, -dx)])
        for dy in (-1, 0, 1) for dx in (-1, 0, 1)
    )
    assert np.array_equal(rotate(img, 0.0), img)
    square = np.zeros((9, 9), dtype=np.float32)
    square[2:7, 2:7] = 1.0
    turned = rotate(square, 10.0, seed=1)
    assert turned.shape == square.shape and turned.dtype == np.float32
    assert not np.array_equal(turned, square)
    assert abs(float(turned.sum()) - 25.0) < 3.0  # a small rotation keeps most of the mass


def test_augment_examples_keeps_labels_and_is_seeded() -> None:
    texts = [Example(text="one two three four five", label=1), Example(text="six seven", label=0)]
    out = augment_examples(texts, TextAugment(dropout=0.3, swap=0.3), seed=4, copies=2)
    assert [e.label for e in out] == [1, 1, 0, 0]
    assert [e.text for e in out] == [e.text for e in augment_examples(texts, TextAugment(0.3, 0.3), 4, 2)]
    assert texts[0].text == "one two three four five"
    images = [Example(image=np.arange(16, dtype=np.uint8).reshape(4, 4), label=3)]
    flipped = augment_examples(images, ImageAugment(flip=1.0), seed=0)
    assert np.array_equal(flipped[0].image, images[0].image[:, ::-1])  # type: ignore[index]
    moved = augment_examples(images, ImageAugment(flip=0.0, crop_padding=1, max_rotation=5.0), seed=0)
    assert moved[0].image.shape == (4, 4) and moved[0].label == 3  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="without an image"):
        augment_examples(texts, ImageAugment())
    with pytest.raises(ConfigError, match="crop padding"):
        ImageAugment(crop_padding=-1)


# --- leakage told where the numbers are made, and clean by default for the built-in sets -----------


def test_leakage_counts_test_examples_also_in_earlier_splits(messy: TaskDataset) -> None:
    from steelyard.data import Leakage, leakage

    assert leakage(messy, "test") == [Leakage("test", "train", 1, 3)]
    assert leakage(messy, "train") == [] and leakage(messy, "all") == []
    assert leakage(messy, "validation") == []  # "fine" is not in train; the empty one never counts
    ds = _ds([_t("a"), _t("b"), _t("c", 1)], [_t("c", 1), _t("d")], [_t("a"), _t("b"), _t("b"), _t("c", 0), _t("e")])
    # Test "a", "b", "b" and "c" (another label: the model still saw the input) are in train, "c" in validation.
    assert leakage(ds, "test") == [Leakage("test", "train", 4, 5), Leakage("test", "validation", 1, 5)]
    assert leakage(ds, "val") == [Leakage("validation", "train", 1, 2)]
    assert leakage(ds, "test", examples=[_t("a"), _t("z")]) == [Leakage("test", "train", 1, 2)]
    assert leakage(clean(ds), "test") == []


def test_builtin_sets_are_cleaned_by_default_and_other_data_is_not(tmp_path) -> None:
    from steelyard.data import leakage
    from steelyard.data.options import DataOptions

    assert DataOptions("bbc-news").clean is True and DataOptions("digits").clean is True
    assert DataOptions("bbc-news", clean=False).clean is False
    own = tmp_path / "mine.csv"
    own.write_text("text,label\na,0\nb,1\n")
    assert DataOptions(str(own)).clean is False and DataOptions(str(own), clean=True).clean is True
    # A file that happens to carry a built-in's name is the user's data.
    (tmp_path / "digits").mkdir()
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert DataOptions("digits").clean is False
    finally:
        os.chdir(cwd)
    ds = DataOptions("bbc-news").load()
    assert leakage(ds, "test") == [] and len(ds) == 2225 - 98
    raw = DataOptions("bbc-news", clean=False).load()
    # The same 30 train/test and 4 validation/test articles data-report finds.
    assert [(x.other, x.count, x.total) for x in leakage(raw, "test")] == [("train", 30, 444), ("validation", 4, 444)]
