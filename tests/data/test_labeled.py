"""Labelled data: dirs and pairs readers, the encoding rule, format detection, splits, real sets."""

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from rnnkit.data.labeled import (
    LabeledData,
    detect_format,
    read_labeled,
    stratified_folds,
    stratified_split,
)
from rnnkit.errors import RnnkitError

TS = """@problemName T
@univariate true
@classLabel true a b
@data
1,2,3:a
4,5,6:b
"""


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


@pytest.fixture
def sport(tmp_path) -> Path:
    """The BBC Sport layout in small: a README beside the class folders, hidden files."""
    root = tmp_path / "sport"
    write(root / "README.TXT", "not an example")
    write(root / "tennis" / "002.txt", "Henman wins\n\nmore text\n")
    write(root / "tennis" / "001.txt", "  Murray loses  ")
    write(root / "tennis" / ".DS_Store", "hidden")
    write(root / "rugby" / "001.txt", "Wales win")
    write(root / "rugby" / "extra" / "009.txt", "nested counts too")
    write(root / ".git" / "HEAD", "hidden folder, not a class")
    return root


# ---- dirs ------------------------------------------------------------------------------------


def test_dirs_one_example_per_file_readme_and_hidden_skipped(sport):
    assert detect_format(sport) == "dirs"
    data = read_labeled(sport)
    assert data.kind == "text" and len(data) == 4
    assert data.labels == ["rugby", "rugby", "tennis", "tennis"]
    assert data.inputs == [
        "Wales win",
        "nested counts too",
        "Murray loses",
        "Henman wins\n\nmore text",
    ]
    assert data.where[2] == str(sport / "tennis" / "001.txt")
    assert data.source == str(sport)


def test_dirs_bad_layouts(tmp_path, sport):
    (sport / "cricket").mkdir()
    with pytest.raises(RnnkitError, match=r"class directory .*cricket holds no files"):
        read_labeled(sport)
    flat = tmp_path / "flat"
    write(flat / "a.txt", "x")
    with pytest.raises(RnnkitError, match="has no class sub-directories"):
        read_labeled(flat, format="dirs")
    one = tmp_path / "one"
    write(one / "tennis" / "1.txt", "x")
    write(one / "tennis" / "2.txt", "y")
    with pytest.raises(RnnkitError, match=r"single class \('tennis', 2 examples\)"):
        read_labeled(one)
    with pytest.raises(RnnkitError, match="not found"):
        read_labeled(tmp_path / "nope", format="dirs")


def test_dirs_empty_and_binary_files_are_named(tmp_path, sport):
    empty = write(sport / "rugby" / "002.txt", "")
    with pytest.raises(RnnkitError, match=rf"{empty} is empty"):
        read_labeled(sport)
    empty.unlink()
    png = write(sport / "rugby" / "pic.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(RnnkitError, match=rf"{png} is not text: NUL byte at offset 8"):
        read_labeled(sport)


# ---- pairs and the encoding rule -------------------------------------------------------------


def test_pairs_one_example_per_nonblank_line(tmp_path):
    pos = write(tmp_path / "rt.pos", "good film \n\n  great fun\n")
    neg = write(tmp_path / "rt.neg", "dull\r\nboring\r\n")
    args = [f"pos={pos}", f"neg={neg}"]
    assert detect_format(args) == "pairs"
    data = read_labeled(args)
    assert data.inputs == ["good film", "great fun", "dull", "boring"]
    assert data.labels == ["pos", "pos", "neg", "neg"]
    assert data.where == [f"{pos}:1", f"{pos}:3", f"{neg}:1", f"{neg}:2"]


def test_pairs_bad_arguments(tmp_path):
    pos = write(tmp_path / "a.pos", "good\n")
    neg = write(tmp_path / "a.neg", "bad\n")
    with pytest.raises(RnnkitError, match=r"argument '.*a\.neg' has no '=': expected LABEL=PATH"):
        read_labeled([f"pos={pos}", str(neg)])
    with pytest.raises(RnnkitError, match="has no '='"):
        read_labeled([f"pos={pos}", str(neg)], format="pairs")
    with pytest.raises(RnnkitError, match="both parts non-empty"):
        read_labeled([f"={pos}", f"neg={neg}"])
    with pytest.raises(RnnkitError, match=r"missing\.txt \(class 'neg'\) not found"):
        read_labeled([f"pos={pos}", f"neg={tmp_path / 'missing.txt'}"])
    with pytest.raises(RnnkitError, match="single class"):
        read_labeled([f"pos={pos}", f"pos={neg}"])


def test_pairs_empty_class_files(tmp_path):
    pos = write(tmp_path / "a.pos", "good\n")
    empty = write(tmp_path / "empty.neg", "")
    blank = write(tmp_path / "blank.neg", "\n  \n")
    with pytest.raises(RnnkitError, match=r"empty\.neg \(class 'neg'\) is empty"):
        read_labeled([f"pos={pos}", f"neg={empty}"])
    with pytest.raises(RnnkitError, match=r"blank\.neg \(class 'neg'\) is empty"):
        read_labeled([f"pos={pos}", f"neg={blank}"])


def test_encoding_utf8_bom_cp1252_fallback_and_neither(tmp_path, caplog):
    utf8 = write(tmp_path / "u.txt", "\ufeffcafé …\n")
    cp = write(tmp_path / "c.txt", b"caf\xe9 \x85 ok\n\x93quoted\x94\n")
    with caplog.at_level(logging.WARNING, logger="rnnkit.data.labeled"):
        data = read_labeled([f"u={utf8}", f"c={cp}"])
    assert data.inputs == ["café …", "café … ok", "\u201cquoted\u201d"]
    assert len(caplog.records) == 1  # the UTF-8 file is not warned about
    assert f"{cp} is not UTF-8 (byte 0xe9 at offset 3): read as cp1252" in caplog.text
    bad = write(tmp_path / "b.txt", b"ok\xe9 \x81\n")  # 0x81: undefined in cp1252
    with pytest.raises(RnnkitError, match=r"neither UTF-8 nor cp1252 text: byte 0x81 at offset 4"):
        read_labeled([f"u={utf8}", f"b={bad}"])
    utf16 = write(tmp_path / "w.txt", "hi\n".encode("utf-16"))
    with pytest.raises(RnnkitError, match="NUL byte at offset 3 .a binary or UTF-16 file"):
        read_labeled([f"u={utf8}", f"w={utf16}"])


# ---- detection and arguments -----------------------------------------------------------------


def test_detect_format_from_names_and_content(tmp_path):
    ts = write(tmp_path / "x.ts", TS)
    ts_txt = write(tmp_path / "x_ts.txt", "# comment\n\n" + TS)
    tsv = write(tmp_path / "x.tsv", "1\t0.5\t-1e-3\tNaN\n2\t1\t2\t3\n")
    ucr_txt = write(tmp_path / "x.txt", "  1.0e+00  -0.5  0.25\n  2.0e+00  1.5  2\n")
    text_tsv = write(tmp_path / "t.tsv", "good film\t1\nbad film\t0\n")
    sst = write(tmp_path / "stsa.binary.train", "1 a stirring , funny\n0 dull\n")
    csv_file = write(tmp_path / "d.csv", "text,label\nhi,1\n")
    assert detect_format(ts) == detect_format(str(ts_txt)) == "ts"
    assert detect_format([tsv, ucr_txt]) == "tsv"
    assert detect_format(text_tsv) == detect_format(sst) == detect_format(csv_file) == "delimited"
    with pytest.raises(RnnkitError, match=r"different formats: .*x\.ts \(ts\), .*x\.tsv \(tsv\)"):
        detect_format([ts, tsv])
    with pytest.raises(RnnkitError, match="a mix of directories and files"):
        detect_format([tmp_path, ts])
    with pytest.raises(RnnkitError, match=r"nope\.csv not found"):
        detect_format([csv_file, tmp_path / "nope.csv"])
    with pytest.raises(RnnkitError, match="no data given"):
        detect_format([])


def test_read_labeled_argument_checks(tmp_path):
    ts = write(tmp_path / "x.ts", TS)
    with pytest.raises(RnnkitError, match="format 'json': expected auto or one of dirs"):
        read_labeled(ts, format="json")
    with pytest.raises(RnnkitError, match="apply to delimited files, not ts"):
        read_labeled(ts, label_column="label")
    with pytest.raises(RnnkitError, match="delimiter applies to delimited and tsv files, not ts"):
        read_labeled(ts, delimiter=",")
    with pytest.raises(RnnkitError, match="is a directory, expected a file"):
        read_labeled(tmp_path, format="ts")
    no_rows = write(tmp_path / "h.ts", TS.split("@data")[0] + "@data\n\n")
    with pytest.raises(RnnkitError, match=r"h\.ts holds no examples"):
        read_labeled(no_rows)
    semi = write(tmp_path / "s.txt", "a;1;2\nb;3;4\n")
    assert read_labeled(semi, format="tsv", delimiter="semicolon").labels == ["a", "b"]


def test_files_of_one_format_concatenate_and_dimensions_must_agree(tmp_path):
    a = write(tmp_path / "a.ts", TS)
    b = write(tmp_path / "b.tsv", "a\t1\t2\nb\t3\t4\t5\n")
    both = read_labeled([a, a])
    assert len(both) == 4 and both.where[2] == f"{a}:5" and both.source == f"{a}, {a}"
    assert [x.shape for x in read_labeled(b).inputs] == [(2, 1), (3, 1)]
    two_dim = write(tmp_path / "c.ts", "@dimensions 2\n@classLabel true a b\n@data\n1,2:3,4:a\n")
    with pytest.raises(RnnkitError, match=r"c\.ts:4: 2 dimensions, .*a\.ts:5 has 1"):
        read_labeled([a, two_dim])


def test_subset_by_indices_and_mask():
    data = LabeledData("text", ["a", "b", "c"], ["x", "y", "x"], ["f:1", "f:2", "f:3"], "f")
    sub = data.subset(np.array([2, 0]))
    assert (sub.inputs, sub.labels, sub.where) == (["c", "a"], ["x", "x"], ["f:3", "f:1"])
    assert (sub.kind, sub.source) == ("text", "f")
    assert data.subset(np.array([False, True, True])).inputs == ["b", "c"]
    assert len(data.subset([])) == 0 and len(data) == 3


# ---- splits ----------------------------------------------------------------------------------


LABELS = ["a"] * 50 + ["b"] * 30 + ["c"] * 15 + ["d"] * 4 + ["e"]  # 100 examples, one singleton


def test_stratified_split_keeps_proportions_and_every_class():
    labels = np.array(LABELS)
    rng = np.random.default_rng(1)
    rng.shuffle(labels)
    train, val = stratified_split(labels.tolist(), 0.2, seed=3)
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(100))
    assert len(val) == 20 and np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    assert train.dtype == val.dtype == np.int64
    in_val = Counter(labels[val].tolist())
    assert in_val == {"a": 10, "b": 6, "c": 3, "d": 1}  # 'e' (one example) stays in train
    assert "e" in labels[train]
    again = stratified_split(labels.tolist(), 0.2, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(again, (train, val), strict=True))
    other = stratified_split(labels.tolist(), 0.2, seed=4)
    assert not np.array_equal(other[1], val)


def test_stratified_split_small_classes_are_in_both_parts():
    labels = ["a"] * 40 + ["b"] * 2
    train, val = stratified_split(labels, 0.05, seed=0)  # b's quota is 0.1: rounded up to 1
    assert Counter(labels[i] for i in val) == {"a": 2, "b": 1}
    train, val = stratified_split(labels, 0.9, seed=0)  # at most n_c - 1 go to validation
    assert Counter(labels[i] for i in train) == {"a": 4, "b": 1}
    for bad in (0, 1, -0.1, 1.5):
        with pytest.raises(RnnkitError, match=r"fraction must be in \(0, 1\)"):
            stratified_split(labels, bad, seed=0)
    with pytest.raises(RnnkitError, match="no examples"):
        stratified_split([], 0.1, seed=0)


def test_stratified_folds_cover_and_balance():
    folds = stratified_folds(LABELS, 3, seed=7)
    assert len(folds) == 3
    assert np.array_equal(np.sort(np.concatenate(folds)), np.arange(100))
    assert sorted(len(f) for f in folds) == [33, 33, 34]
    labels = np.array(LABELS)
    for label, n in Counter(LABELS).items():
        per_fold = [int(np.sum(labels[f] == label)) for f in folds]
        assert set(per_fold) <= {n // 3, -(-n // 3)} and sum(per_fold) == n
    again = stratified_folds(LABELS, 3, seed=7)
    assert all(np.array_equal(x, y) for x, y in zip(again, folds, strict=True))
    other = stratified_folds(LABELS, 3, seed=8)
    assert not all(np.array_equal(x, y) for x, y in zip(other, folds, strict=True))
    for k in (1, 101):
        with pytest.raises(RnnkitError, match="folds must be between 2 and the number"):
            stratified_folds(LABELS, k, seed=0)


# ---- the real data sets ----------------------------------------------------------------------


def test_sst2_counts(shared_data):
    sst = shared_data / "sst"
    counts = {
        split: len(read_labeled(sst / f"stsa.binary.{split}")) for split in ("train", "dev", "test")
    }
    assert counts == {"train": 6920, "dev": 872, "test": 1821}  # the published SST-2 sizes
    train = read_labeled(sst / "stsa.binary.train")
    assert sorted(set(train.labels)) == ["0", "1"]
    assert train.inputs[0].startswith("a stirring , funny and finally transporting")
    assert sorted(set(read_labeled(sst / "stsa.fine.dev").labels)) == ["0", "1", "2", "3", "4"]


def test_mr_counts_and_cp1252(shared_data, caplog):
    mr = shared_data / "mr_sentence_polarity"
    with caplog.at_level(logging.WARNING, logger="rnnkit.data.labeled"):
        data = read_labeled([f"pos={mr / 'rt-polarity.pos'}", f"neg={mr / 'rt-polarity.neg'}"])
    assert Counter(data.labels) == {"pos": 5331, "neg": 5331}
    assert caplog.text.count("read as cp1252") == 2
    assert any("é" in text for text in data.inputs)
    with pytest.raises(RnnkitError, match=r"1431 distinct labels in 5331 rows .*LABEL=PATH"):
        read_labeled(mr / "rt-polarity.pos")  # plain sentences are not "LABEL TEXT" lines


def test_bbcsport_counts(shared_data):
    data = read_labeled(shared_data / "bbcsport")
    assert len(data) == 737
    assert Counter(data.labels) == {
        "athletics": 101,
        "cricket": 124,
        "football": 265,
        "rugby": 147,
        "tennis": 100,
    }
    assert not any(w.endswith("README.TXT") for w in data.where)


@pytest.mark.parametrize(
    "name, n_train, n_test, length",
    [("GunPoint", 50, 150, 150), ("ItalyPowerDemand", 67, 1029, 24)],
)
def test_ucr_counts(shared_data, name, n_train, n_test, length):
    for split, n in (("TRAIN", n_train), ("TEST", n_test)):
        data = read_labeled(shared_data / "ucr_uea" / name / f"{name}_{split}.ts")
        assert data.kind == "series" and len(data) == n
        assert {x.shape for x in data.inputs} == {(length, 1)}
        assert {x.dtype for x in data.inputs} == {np.dtype(np.float32)}
        assert sorted(set(data.labels)) == ["1", "2"]
