"""Pretrained word vectors in the plain-text format of GloVe, word2vec and fastText.

One vector a line, ``word v1 v2 ... vd``, fields separated by spaces (or any ASCII whitespace);
word2vec and fastText's ``.vec`` files begin with a header line ``count dim``. A ``.gz`` file is
read through gzip. The binary word2vec format is not read (convert it to text first, e.g. with
gensim's ``save_word2vec_format(..., binary=False)``).

The file is streamed line by line and only the kept vectors are held: with ``vocab`` given, a
line whose word is not in it costs a membership test and a field count, so a 2-million-word
file filtered down to a task's vocabulary needs memory for the vocabulary's vectors alone.
Words are taken as they are; a lowercase fallback is the caller's choice. Words are split on
ASCII whitespace only: the few GloVe 840B words that hold a U+00A0 space stay whole.
"""

import gzip
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from rnnkit.errors import RnnkitError


class WordVectors(NamedTuple):
    """``words[i]`` has the vector ``matrix[i]``; matrix (len(words), dim) float32, file order."""

    words: list[str]
    matrix: np.ndarray
    dim: int


def read_word_vectors(
    path: str | os.PathLike, vocab: set[str] | None = None, expected_dim: int | None = None
) -> WordVectors:
    """Read a text word-vector file; with ``vocab``, keep only the words in it.

    ``expected_dim`` (the model's ``--embedding-size``) must equal the file's dimension. A
    repeated word keeps its first vector. Raises RnnkitError naming file and line for an empty
    file, a dimension that changes mid-file or differs from ``expected_dim``, a value that is
    not a finite number, a word that is not UTF-8, or a header whose count the file does not
    match. Returns ``(words, matrix, dim)``, matrix of shape (number kept, dim).
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        f = opener(path, "rb")
    except OSError as e:
        raise RnnkitError(f"cannot read word vectors {path}: {e.strerror}") from None
    reader = _Reader(path, vocab, expected_dim)
    try:
        with f:
            for number, line in enumerate(f, 1):
                reader.line(number, line)
    except (OSError, EOFError) as e:  # a damaged .gz file
        raise RnnkitError(f"cannot read word vectors {path}: {e}") from None
    return reader.result()


class _Reader:
    """The state of one pass over a file: dimension, header, kept rows (a growing buffer)."""

    def __init__(self, path: Path, vocab: set[str] | None, expected_dim: int | None) -> None:
        self.path, self.vocab, self.expected = path, vocab, expected_dim
        self.dim = 0
        self.dim_line = 0  # the line that fixed the dimension
        self.dim_what = ""  # what fixed it: the header or the first vector
        self.header_count: int | None = None
        self.vectors = 0  # vector lines read, kept or not
        self.last = 0  # number of the last line read
        self.words: list[str] = []
        self.index: set[str] = set()
        self.buffer = np.zeros((0, 0), dtype=np.float32)

    def fail(self, number: int, message: str) -> RnnkitError:
        return RnnkitError(f"{self.path}:{number}: {message}")

    def line(self, number: int, raw: bytes) -> None:
        self.last = number
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        line = raw.rstrip()
        if not line:
            return
        if b"\x00" in line:
            raise self.fail(
                number,
                "NUL byte: a binary file? only the text format (word v1 ... vd) is read; "
                "convert binary word2vec files to text first",
            )
        if not self.dim:
            parts = line.split()
            if self.vectors == 0 and len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                self.header_count = int(parts[0])
                self._set_dim(number, int(parts[1]), "the header says")
                return
            self._set_dim(number, len(parts) - 1, "the first vector has")
        self.vectors += 1
        # Fast path: one space between fields, as GloVe and word2vec write them, counted
        # without splitting (most lines of a big file are skipped when a vocab is given).
        cut = line.find(b" ")
        if cut > 0 and line.count(b" ") == self.dim and b"  " not in line and b"\t" not in line:
            word_bytes, values = line[:cut], line[cut + 1 :]
        else:
            parts = line.split()
            if len(parts) - 1 != self.dim:
                raise self.fail(
                    number,
                    f"{len(parts) - 1} values, but {self.dim_what} {self.dim} (line "
                    f"{self.dim_line}): the dimension changes mid-file",
                )
            word_bytes, values = parts[0], b" ".join(parts[1:])
        try:
            word = word_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(number, f"the word {word_bytes[:40]!r} is not UTF-8") from None
        if (self.vocab is not None and word not in self.vocab) or word in self.index:
            return
        self._keep(number, word, values)

    def _set_dim(self, number: int, dim: int, what: str) -> None:
        if dim < 1:
            raise self.fail(number, "a word with no values: expected 'word v1 v2 ... vd'")
        if self.expected is not None and dim != self.expected:
            raise self.fail(
                number,
                f"the vectors have {dim} dimensions but --embedding-size is {self.expected}: "
                f"set --embedding-size {dim} to use them",
            )
        self.dim, self.dim_line, self.dim_what = dim, number, what
        self.buffer = np.zeros((0, dim), dtype=np.float32)

    def _keep(self, number: int, word: str, values: bytes) -> None:
        try:
            vec = np.array(values.split(), dtype=np.float32)
        except ValueError:
            bad = next((v for v in values.split() if not _is_number(v)), values[:40])
            raise self.fail(
                number, f"value {bad[:40].decode('utf-8', 'replace')!r} is not a number"
            ) from None
        if len(vec) != self.dim:  # whitespace the fast path does not count (e.g. U+000B)
            raise self.fail(number, f"{len(vec)} values, but the dimension is {self.dim}")
        if not np.isfinite(vec).all():
            raise self.fail(number, f"the vector of {word!r} holds a NaN or infinite value")
        n = len(self.words)
        if n == len(self.buffer):  # grow by doubling: amortised O(1) copies per row
            grown = np.zeros((max(1024, 2 * n), self.dim), dtype=np.float32)
            grown[:n] = self.buffer
            self.buffer = grown
        self.buffer[n] = vec
        self.words.append(word)
        self.index.add(word)

    def result(self) -> WordVectors:
        if not self.dim:
            raise RnnkitError(f"{self.path} is empty: expected lines 'word v1 v2 ... vd'")
        if self.vectors == 0:
            raise RnnkitError(f"{self.path} holds no vectors, only the header line")
        if self.header_count is not None and self.header_count != self.vectors:
            raise RnnkitError(
                f"{self.path}:{self.last}: the header promises {self.header_count} vectors, the "
                f"file holds {self.vectors} (a truncated download?)"
            )
        return WordVectors(self.words, self.buffer[: len(self.words)].copy(), self.dim)


def _is_number(value: bytes) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
