"""Text corpora on disk → a flat file of token ids, read back by memory map.

A corpus (``data``) is one UTF-8 text file or a directory of them: every file below it, sorted
by path, hidden files and folders skipped. Files are concatenated as they are (char level); at
word level a file whose last line has no newline gets its ``<eos>`` all the same.

Nothing here holds the corpus in memory, so a corpus larger than RAM works:

* reading goes by chunks of ``chunk_size`` bytes (4 MiB); a UTF-8 character cut by a chunk end
  waits for the next chunk, and at word level so does a word;
* :func:`build_vocab` is one streaming counting pass (memory: the counts, i.e. the number of
  distinct tokens, never the corpus);
* :func:`encode_corpus` is a second streaming pass that appends ids to a token file:
  ``uint16`` when the vocab has fewer than 65,536 tokens, else ``uint32``, little-endian, with
  a JSON header beside it (``tokens.bin.json``: dtype, count, vocab digest, source files);
* :class:`TokenFile` opens it as a read-only ``np.memmap``: batches read slices of it.

Reading is strict UTF-8 (no silent replacement characters, the usual way Unicode "breaks"): a
binary file or a file in another encoding raises :class:`RnnkitError` naming the file, the byte
offset and the fix. A UTF-8 byte-order mark at the start of a file is dropped.
"""

import codecs
import json
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from rnnkit.data.vocab import Vocab, check_level, tokenize
from rnnkit.errors import RnnkitError
from rnnkit.jsonfile import read_json, write_json_atomic

CHUNK_SIZE = 4 << 20  # bytes per read: large enough for numpy to amortise, small next to RAM
TOKENS_FORMAT = "rnnkit-tokens"
PathLike = str | os.PathLike
Data = PathLike | Sequence[PathLike]


# ---- finding and reading files -------------------------------------------------------------


def corpus_files(data: PathLike, exclude: Sequence[PathLike] = ()) -> list[Path]:
    """The text files of ``data``: itself if a file, else every file below it.

    Sorted by path (component by component, code-point order), hidden files and folders
    (name starting with '.') skipped, folders in ``exclude`` skipped (an output folder inside
    the data folder must not be read back as data).
    """
    root = Path(data)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise RnnkitError(f"data {root} not found: give a text file or a directory of them")
    skip = {Path(p).resolve() for p in exclude}
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [
            d for d in dirnames if not d.startswith(".") and (here / d).resolve() not in skip
        ]
        found += [here / f for f in filenames if not f.startswith(".")]
    found = [p for p in found if p.is_file()]
    if not found:
        raise RnnkitError(f"data directory {root} holds no files (hidden files are skipped)")
    return sorted(found, key=lambda p: p.relative_to(root).parts)


def _files(data: Data, exclude: Sequence[PathLike] = ()) -> list[Path]:
    if isinstance(data, str | os.PathLike):
        return corpus_files(data, exclude)
    files = [f for d in data for f in corpus_files(d, exclude)]
    if not files:
        raise RnnkitError("data is an empty list of files")
    return files


def _describe(data: Data) -> str:
    if isinstance(data, str | os.PathLike):
        return str(data)
    return ", ".join(map(str, data))


def read_text(path: PathLike, chunk_size: int = CHUNK_SIZE) -> Iterator[str]:
    """The text of one file in pieces of at most ``chunk_size`` characters, strict UTF-8.

    Raises RnnkitError for a NUL byte (binary file) or bytes that are not UTF-8, with the
    file's name and the byte offset.
    """
    if chunk_size < 1:
        raise RnnkitError(f"chunk_size must be >= 1 byte, got {chunk_size}")
    path = Path(path)
    pending = b""  # the start of a character cut by the previous chunk's end
    offset = 0  # file offset of pending[0]
    at_start = True
    try:
        f = open(path, "rb")  # noqa: SIM115  (closed by the with below)
    except OSError as e:
        raise RnnkitError(f"cannot read {path}: {e.strerror}") from None
    with f:
        while True:
            raw = f.read(chunk_size)
            final = not raw
            nul = raw.find(b"\x00")
            if nul >= 0:
                raise RnnkitError(
                    f"{path} is not UTF-8 text: NUL byte at offset {offset + len(pending) + nul} "
                    "(a binary file?); give plain text files only"
                )
            data = pending + raw if pending else raw
            try:
                # final=False keeps an incomplete trailing character for the next round.
                text, used = codecs.utf_8_decode(data, "strict", final)
            except UnicodeDecodeError as e:
                raise _not_utf8(path, data, offset, e) from None
            pending, offset = data[used:], offset + used
            if at_start and text:
                at_start = False
                if text[0] == "\ufeff":  # byte-order mark: not text
                    text = text[1:]
            if text:
                yield text
            if final:
                return


def _not_utf8(path: Path, data: bytes, offset: int, e: UnicodeDecodeError) -> RnnkitError:
    what = "it ends inside a multi-byte character" if e.reason == "unexpected end of data" else ""
    return RnnkitError(
        f"{path} is not UTF-8 text: invalid byte 0x{data[e.start]:02x} at offset "
        f"{offset + e.start} ({what or e.reason}); re-encode it as UTF-8 "
        f"(e.g. iconv -f latin1 -t utf-8 {path} > {path.stem}.utf8{path.suffix})"
    )


def iter_pieces(
    files: Sequence[Path], level: str, chunk_size: int = CHUNK_SIZE
) -> Iterator[tuple[Path, str, int]]:
    """(file, text, character offset in file) pieces that tokenize independently.

    Char level: any cut is safe. Word level: a piece ends at whitespace (the unfinished word
    waits for the next chunk), and a file that does not end with a newline gets one, so its
    last line ends with ``<eos>`` like the others.
    """
    check_level(level)
    for path in files:
        done = 0  # characters of this file yielded so far
        carry = ""
        last = ""
        for text in read_text(path, chunk_size):
            last = text[-1]
            if level != "char":
                text = carry + text
                if text[-1].isspace():
                    carry = ""
                else:
                    # The last whitespace, searched from the right (same rule as str.split).
                    head = text.rsplit(None, 1)
                    cut = len(text) - len(head[-1]) if len(head) == 2 else 0
                    text, carry = text[:cut], text[cut:]
            if text:
                yield path, text, done
                done += len(text)
        tail = carry + ("\n" if level != "char" and last not in ("", "\n") else "")
        if tail:
            yield path, tail, done


# ---- vocabulary ------------------------------------------------------------------------------


def count_tokens(data: Data, level: str, chunk_size: int = CHUNK_SIZE) -> Counter:
    """token → count over the whole corpus, in one streaming pass."""
    files = _files(data)
    if check_level(level) != "char":
        counts: Counter = Counter()
        for _, text, _ in iter_pieces(files, level, chunk_size):
            counts.update(tokenize(text, level))
        return counts
    # Char level: a histogram of code points is ~30× faster than a Counter over a str.
    hist = np.zeros(128, dtype=np.int64)
    for _, text, _ in iter_pieces(files, level, chunk_size):
        ascii = text.isascii()  # O(1) in CPython; then one byte per code point
        cps = np.frombuffer(
            text.encode("ascii" if ascii else "utf-32-le"), "u1" if ascii else "<u4"
        )
        h = np.bincount(cps)
        if len(h) > len(hist):
            hist = np.concatenate([hist, np.zeros(len(h) - len(hist), dtype=np.int64)])
        hist[: len(h)] += h
    return Counter({chr(cp): int(hist[cp]) for cp in np.flatnonzero(hist)})


def build_vocab(
    data: Data,
    level: str,
    max_size: int | None = None,
    min_freq: int = 1,
    unk: bool | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Vocab:
    """The vocab of a corpus on disk (see :meth:`Vocab.build` for the cut and the order)."""
    counts = count_tokens(data, level, chunk_size)
    if not counts:
        raise RnnkitError(f"{_describe(data)} is empty: no text to build a vocab from")
    return Vocab.build(counts, level, max_size=max_size, min_freq=min_freq, unk=unk)


# ---- token files -----------------------------------------------------------------------------


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 while every id fits in 16 bits with room to spare, else uint32 (little-endian)."""
    return np.dtype("<u2") if vocab_size < 65536 else np.dtype("<u4")


class TokenFile:
    """A flat little-endian array of token ids on disk plus its JSON header.

    ``tokens`` is a read-only ``np.memmap`` of shape (count,): slicing it reads only those
    pages, so a token file larger than RAM is fine.
    """

    def __init__(self, path: Path, header: dict) -> None:
        self.path = path
        self.header = header
        self.dtype = np.dtype(header["dtype"]).newbyteorder("<")
        self.count: int = header["count"]
        self.vocab_digest: str = header["vocab_digest"]
        self._tokens: np.ndarray | None = None

    @staticmethod
    def header_path(path: PathLike) -> Path:
        path = Path(path)
        return path.with_name(path.name + ".json")

    @classmethod
    def open(cls, path: PathLike) -> "TokenFile":
        """Open a token file written by :func:`encode_corpus`; checks header and size."""
        path = Path(path)
        hpath = cls.header_path(path)
        header = read_json(hpath, "token file header")
        if header.get("format") != TOKENS_FORMAT or header.get("dtype") not in ("uint16", "uint32"):
            raise RnnkitError(f"{hpath} is not an rnnkit token file header")
        tf = cls(path, header)
        expected = tf.count * tf.dtype.itemsize
        size = path.stat().st_size if path.exists() else None
        if size != expected:
            raise RnnkitError(
                f"token file {path} should hold {tf.count} {header['dtype']} ids "
                f"({expected} bytes), found {size if size is not None else 'no file'}; "
                "delete it to encode the corpus again"
            )
        return tf

    @property
    def tokens(self) -> np.ndarray:
        if self._tokens is None:
            if self.count == 0:  # mmap cannot map an empty file
                self._tokens = np.zeros(0, dtype=self.dtype)
            else:
                self._tokens = np.memmap(self.path, dtype=self.dtype, mode="r", shape=(self.count,))
        return self._tokens

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"TokenFile({str(self.path)!r}, count={self.count}, dtype={self.dtype.name})"


def _fingerprint(files: Sequence[Path]) -> list[list]:
    out = []
    for f in files:
        st = f.stat()
        out.append([str(f.resolve()), st.st_size, st.st_mtime_ns])
    return out


def encode_corpus(
    data: Data,
    vocab: Vocab,
    out_path: PathLike,
    chunk_size: int = CHUNK_SIZE,
    meta: dict | None = None,
) -> TokenFile:
    """Encode a corpus into the token file ``out_path`` (+ header), streaming; returns it open.

    ``meta`` is stored in the header as is. Written to a temporary file then renamed, and the
    header last, so an interrupted run never leaves a token file that looks complete.
    """
    files = _files(data)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    source = _fingerprint(files)  # before reading: a file edited meanwhile will not match
    dtype = token_dtype(len(vocab))
    hpath = TokenFile.header_path(out_path)
    hpath.unlink(missing_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    count = 0
    try:
        with open(tmp, "wb") as f:
            for path, text, offset in iter_pieces(files, vocab.level, chunk_size):
                ids = vocab.encode_array(text, dtype=dtype, where=f"file {path}", offset=offset)
                ids.tofile(f)
                count += len(ids)
        if count == 0:
            raise RnnkitError(f"{_describe(data)} is empty: it holds no text")
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    header = {
        "format": TOKENS_FORMAT,
        "version": 1,
        "dtype": dtype.name,
        "byteorder": "little",
        "count": count,
        "level": vocab.level,
        "vocab_size": len(vocab),
        "vocab_digest": vocab.digest,
        "source": source,
        **(meta or {}),
    }
    write_json_atomic(hpath, header)
    return TokenFile.open(out_path)


def _read_header(path: Path) -> dict | None:
    try:
        return json.loads(TokenFile.header_path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def prepare_corpus(
    data: Data,
    level: str,
    out_dir: PathLike,
    val_fraction: float = 0.1,
    max_size: int | None = None,
    min_freq: int = 1,
    vocab: Vocab | None = None,
    unk: bool | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> tuple[Vocab, np.ndarray, np.ndarray]:
    """Vocab, train tokens and validation tokens of a corpus, encoded once into ``out_dir``.

    Builds the vocab (or uses ``vocab``, e.g. a checkpoint's, when resuming), encodes the corpus
    into ``out_dir/tokens.bin`` and keeps ``out_dir/vocab.json``; splits nanoGPT style: the
    first ``1 - val_fraction`` of the tokens train, the last ``val_fraction`` validate. When
    ``out_dir`` already holds tokens of the same files (path, size, mtime) and the same vocab,
    they are reused without reading the corpus. Returns memmap slices of shapes (n_train,),
    (n_val,).
    """
    check_level(level)
    if not 0 <= val_fraction < 1:
        raise RnnkitError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if vocab is not None and vocab.level != level:
        raise RnnkitError(f"the given vocab is {vocab.level}-level but level={level!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = _files(data, exclude=[out_dir])
    tok_path, vocab_path = out_dir / "tokens.bin", out_dir / "vocab.json"
    build = None if vocab is not None else [level, max_size, min_freq, unk]
    header = _read_header(tok_path)
    same_data = header is not None and header.get("source") == _fingerprint(files)
    if vocab is None:
        if same_data and header.get("build") == build and vocab_path.exists():
            try:
                saved = Vocab.load(vocab_path)
            except RnnkitError:
                saved = None
            if saved is not None and saved.digest == header.get("vocab_digest"):
                vocab = saved
        if vocab is None:
            vocab = build_vocab(files, level, max_size, min_freq, unk, chunk_size)
    vocab.save(vocab_path)  # small; written every time so it always matches the tokens
    tf = None
    if same_data and header.get("vocab_digest") == vocab.digest:
        try:
            tf = TokenFile.open(tok_path)
        except RnnkitError:
            tf = None  # damaged: encode again
    if tf is None:
        tf = encode_corpus(files, vocab, tok_path, chunk_size, meta={"build": build})
    tokens = tf.tokens
    n_train = int(len(tokens) * (1 - val_fraction))
    return vocab, tokens[:n_train], tokens[n_train:]
