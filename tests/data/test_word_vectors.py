"""Text word vectors (GloVe, word2vec, fastText): formats, vocab filter, and bad files."""

import gzip
from pathlib import Path

import numpy as np
import pytest

from rnnkit.data.word_vectors import WordVectors, read_word_vectors
from rnnkit.errors import RnnkitError

GLOVE = "the 0.1 0.2 0.3\ncat -1 2.5e-1 3\nDog 1 1 1\n"


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_glove_format(tmp_path):
    vecs = read_word_vectors(write(tmp_path / "g.txt", GLOVE))
    assert isinstance(vecs, WordVectors)
    words, matrix, dim = vecs
    assert (words, dim, matrix.dtype) == (["the", "cat", "Dog"], 3, np.float32)
    assert matrix.shape == (3, 3)
    np.testing.assert_allclose(matrix[1], [-1, 0.25, 3])


def test_word2vec_header_whitespace_and_gzip(tmp_path):
    text = "\ufeff3 3\nthe 0.1 0.2 0.3 \ncat\t-1  0.25 3\r\n\ncafé 1 1 1\n"
    for path in (write(tmp_path / "w.vec", text), tmp_path / "w.vec.gz"):
        if path.suffix == ".gz":
            path.write_bytes(gzip.compress(text.encode("utf-8")))
        words, matrix, dim = read_word_vectors(path, expected_dim=3)
        assert (words, dim) == (["the", "cat", "café"], 3)
        np.testing.assert_allclose(matrix[1], [-1, 0.25, 3])


def test_vocab_filter_keeps_file_order_and_first_duplicate(tmp_path):
    path = write(tmp_path / "g.txt", GLOVE + "cat 9 9 9\n")
    words, matrix, dim = read_word_vectors(path, vocab={"Dog", "cat", "absent"})
    assert words == ["cat", "Dog"] and matrix.shape == (2, 3)
    np.testing.assert_allclose(matrix[0], [-1, 0.25, 3])  # the first "cat"
    words, matrix, dim = read_word_vectors(path, vocab={"dog"})  # no lowercase fallback here
    assert (words, matrix.shape, dim) == ([], (0, 3), 3)


def test_many_vectors_grow_the_buffer(tmp_path):
    rng = np.random.default_rng(0)
    table = rng.standard_normal((3000, 4)).astype(np.float32)
    lines = [f"w{i} " + " ".join(f"{v:.6f}" for v in row) for i, row in enumerate(table)]
    path = write(tmp_path / "g.txt", "\n".join(lines) + "\n")
    words, matrix, _ = read_word_vectors(path)
    assert words[-1] == "w2999"
    np.testing.assert_allclose(matrix, table, atol=1e-6)
    words, matrix, _ = read_word_vectors(path, vocab={"w5", "w2500"})
    np.testing.assert_allclose(matrix, table[[5, 2500]], atol=1e-6)


@pytest.mark.parametrize(
    ("content", "kwargs", "message"),
    [
        ("a 1 2 3\nb 1 2\n", {}, r"v\.txt:2: 2 values, but the first vector has 3 \(line 1\)"),
        ("2 3\na 1 2 3\nb 1 2 3 4\n", {}, r"v\.txt:3: 4 values, but the header says 3"),
        # A line not kept still has its dimension checked.
        ("a 1 2 3\nb 1 2\n", {"vocab": {"a"}}, r"v\.txt:2: 2 values"),
        (
            "a 1 2 3\n",
            {"expected_dim": 300},
            r"v\.txt:1: .*3 dimensions but --embedding-size is 300: set",
        ),
        ("9 50\n", {"expected_dim": 300}, r"v\.txt:1: .*50 dimensions but --embedding-size"),
        ("a 1 2 3\nb 1 x 3\n", {}, r"v\.txt:2: value 'x' is not a number"),
        ("a 1 nan 3\n", {}, r"v\.txt:1: the vector of 'a' holds a NaN"),
        ("", {}, r"v\.txt is empty"),
        ("\n\n", {}, r"v\.txt is empty"),
        ("3 2\n", {}, r"v\.txt holds no vectors, only the header"),
        ("3 2\na 1 2\nb 1 2\n", {}, r"v\.txt:3: the header promises 3 vectors, the file holds 2"),
        ("word\n", {}, r"v\.txt:1: a word with no values"),
        (b"a 1 2\n\xff 1 2\n", {}, r"v\.txt:2: the word b'\\xff' is not UTF-8"),
        (b"\x00\x01\x02 1 2\n", {}, r"v\.txt:1: NUL byte.*text format"),
    ],
)
def test_bad_files(tmp_path, content, kwargs, message):
    with pytest.raises(RnnkitError, match=message):
        read_word_vectors(write(tmp_path / "v.txt", content), **kwargs)


def test_missing_and_damaged_files(tmp_path):
    with pytest.raises(RnnkitError, match="cannot read word vectors .*nope.txt"):
        read_word_vectors(tmp_path / "nope.txt")
    with pytest.raises(RnnkitError, match="cannot read word vectors .*bad.txt.gz"):
        read_word_vectors(write(tmp_path / "bad.txt.gz", b"not gzip at all"))
