"""Reading sentence pairs: two parallel files or one TSV, with the errors a user can cause
named by file and line, empty pairs skipped and counted, and the length-filter report."""

import numpy as np
import pytest

from rnnkit.data.parallel import (
    LengthFilter,
    decode_lines,
    read_lines,
    read_parallel,
    split_held_out,
)
from rnnkit.errors import RnnkitError


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def test_parallel_files(tmp_path):
    src = write(tmp_path / "a.de", "\ufeffEin Hund.\r\nZwei Katzen.\n\n Drei. \n")
    tgt = write(tmp_path / "a.en", "A dog.\r\nTwo cats.\nempty source\nThree.\n")
    data = read_parallel(src, tgt)
    assert data.sources == ["Ein Hund.", "Zwei Katzen.", "Drei."]  # BOM, CR, spaces gone
    assert data.targets == ["A dog.", "Two cats.", "Three."]
    assert data.where == [f"{src}:1", f"{src}:2", f"{src}:4"]
    assert data.skipped == 1 and data.first_skipped == f"{src}:3"
    assert "skipped 1 pair with an empty side (first at" in data.notes[0]
    assert data.subset([2]).sources == ["Drei."]


def test_files_of_different_lengths_name_the_line(tmp_path):
    src = write(tmp_path / "s.txt", "a\nb\nc\n")
    tgt = write(tmp_path / "t.txt", "A\nB\n")
    with pytest.raises(RnnkitError) as e:
        read_parallel(src, tgt)
    msg = str(e.value)
    assert f"{src} has 3 lines but {tgt} has 2" in msg and f"{src}:3 has no partner" in msg
    assert "\n" not in msg


def test_tsv_columns(tmp_path):
    path = write(tmp_path / "fra.txt", "Go.\tVa !\tCC-BY 2.0 (France)\n\nHi.\tSalut !\tCC\n")
    data = read_parallel(path)
    assert data.sources == ["Go.", "Hi."] and data.targets == ["Va !", "Salut !"]
    assert data.skipped == 1  # the blank row
    swapped = read_parallel(path, source_column=2, target_column=1)
    assert swapped.sources == ["Va !", "Salut !"]
    semi = read_parallel(write(tmp_path / "x.csv", "a;b\n"), delimiter=";")
    assert semi.targets == ["b"]


def test_tsv_row_with_one_column(tmp_path):
    path = write(tmp_path / "pairs.tsv", "Go.\tVa !\nHello without a tab\n")
    with pytest.raises(
        RnnkitError,
        match=rf"{path}:2: 1 column \(split on tab\), expected at "
        "least 2",
    ):
        read_parallel(path)


def test_not_utf8_names_file_line_and_byte(tmp_path):
    path = write(tmp_path / "s.txt", b"ok\nalso ok\ncaf\xe9\n")
    with pytest.raises(RnnkitError, match=rf"{path}:3: byte 0xe9 at column 4 is not UTF-8"):
        read_lines(path)
    with pytest.raises(RnnkitError, match="stdin:1: NUL byte"):
        decode_lines(b"a\x00b", "stdin")
    with pytest.raises(RnnkitError, match="not found"):
        read_lines(tmp_path / "missing.txt")


def test_only_empty_pairs(tmp_path):
    path = write(tmp_path / "p.tsv", "\t\n \tx\n")
    with pytest.raises(RnnkitError, match="holds no sentence pairs"):
        read_parallel(path)


def test_held_out_split_is_seeded_and_disjoint():
    tr, va = split_held_out(100, 0.1, seed=3)
    assert len(va) == 10 and len(tr) == 90 and not set(tr) & set(va)
    assert np.array_equal(va, split_held_out(100, 0.1, seed=3)[1])
    assert not np.array_equal(va, split_held_out(100, 0.1, seed=4)[1])


def test_length_filter_report():
    kept, report = LengthFilter(max_source=5, max_target=4, max_ratio=2.0).apply(
        [3, 6, 6, 2, 3], [3, 3, 9, 5, 9], "pairs"
    )
    assert kept.tolist() == [0]
    assert report["source_too_long"] == 2  # the first reason that applies counts
    assert report["target_too_long"] == 2 and report["ratio_too_high"] == 0
    assert report["message"] == (
        "pairs: dropped 4 of 5 pairs (2 source over 5 tokens, 2 target over 4 tokens)"
    )
    _, report = LengthFilter(max_ratio=2.0).apply([1, 3], [3, 3], "p")
    assert report["ratio_too_high"] == 1 and report["kept"] == 1
    with pytest.raises(RnnkitError, match="none is left to train on"):
        LengthFilter(max_source=1).apply([2, 3], [1, 1], "p")
