"""Corpus reading (strict UTF-8, chunks), token files (memmap) and prepare_corpus."""

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest

import rnnkit.data.corpus as corpus_mod
from rnnkit.data import (
    EOS,
    TokenFile,
    Vocab,
    build_vocab,
    corpus_files,
    count_tokens,
    encode_corpus,
    prepare_corpus,
    read_text,
)
from rnnkit.errors import RnnkitError

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def random_text(seed: int, n: int = 400) -> str:
    """Words of 1–4-byte characters, spaces, tabs, CRLF and newlines: every boundary case."""
    rng = random.Random(seed)
    alphabet = "ab" + "é" + "東京" + "😀👍🏽" + "e\u0301"
    seps = [" ", " ", "\n", "\t", "\r\n", "  ", "\u3000"]
    parts = []
    for _ in range(n):
        parts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))))
        parts.append(rng.choice(seps))
    return "".join(parts)


# ---- files and strict UTF-8 ----------------------------------------------------------------


def test_corpus_files_sorted_recursive_skips_hidden(tmp_path):
    write(tmp_path / "b.txt", "b")
    write(tmp_path / "a" / "z.txt", "z")
    write(tmp_path / "a" / "b" / "y.txt", "y")
    write(tmp_path / ".git" / "HEAD", "x")
    write(tmp_path / ".hidden.txt", "x")
    write(tmp_path / "out" / "tokens.bin", b"\x00\x01")
    files = corpus_files(tmp_path, exclude=[tmp_path / "out"])
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["a/b/y.txt", "a/z.txt", "b.txt"]
    assert corpus_files(tmp_path / "b.txt") == [tmp_path / "b.txt"]
    with pytest.raises(RnnkitError, match="not found"):
        corpus_files(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RnnkitError, match="holds no files"):
        corpus_files(tmp_path / "empty")


def test_binary_file_is_named_with_offset(tmp_path):
    f = write(tmp_path / "image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(RnnkitError, match=r"image\.png is not UTF-8 text: NUL byte at offset 8"):
        build_vocab(f, "char")


def test_latin1_file_is_named_with_byte_and_offset(tmp_path):
    f = write(tmp_path / "latin.txt", b"caf" + "é au lait".encode("latin-1"))
    with pytest.raises(RnnkitError) as e:
        build_vocab(f, "char")
    msg = str(e.value)
    assert "latin.txt is not UTF-8 text: invalid byte 0xe9 at offset 3" in msg
    assert "iconv -f latin1 -t utf-8" in msg


def test_invalid_byte_offset_is_absolute_across_chunks(tmp_path):
    f = write(tmp_path / "late.txt", ("x" * 1234).encode() + b"\xe9 ok")
    for chunk_size in (1, 7, 1000, 1 << 20):
        with pytest.raises(RnnkitError, match="invalid byte 0xe9 at offset 1234"):
            list(read_text(f, chunk_size))
    nul = write(tmp_path / "nul.bin", b"y" * 999 + b"\x00")
    with pytest.raises(RnnkitError, match="NUL byte at offset 999"):
        list(read_text(nul, 10))


def test_file_ending_inside_a_character(tmp_path):
    f = write(tmp_path / "cut.txt", "ab😀".encode()[:-1])
    with pytest.raises(RnnkitError, match="cut.txt.*offset 2.*ends inside a multi-byte"):
        build_vocab(f, "char", chunk_size=2)


def test_empty_inputs_raise(tmp_path):
    empty = write(tmp_path / "empty.txt", b"")
    with pytest.raises(RnnkitError, match="empty.txt is empty"):
        build_vocab(empty, "char")
    with pytest.raises(RnnkitError, match="empty.txt is empty"):
        encode_corpus(empty, Vocab(["a"], "char"), tmp_path / "t.bin")
    write(tmp_path / "d" / "a.txt", b"")
    write(tmp_path / "d" / "b.txt", "\ufeff")  # a byte-order mark alone is no text
    with pytest.raises(RnnkitError, match="is empty"):
        prepare_corpus(tmp_path / "d", "word", tmp_path / "out")


def test_bom_is_dropped(tmp_path):
    f = write(tmp_path / "bom.txt", "\ufeffhi\n")
    assert "".join(read_text(f, 1)) == "hi\n"
    assert "\ufeff" not in build_vocab(f, "char").stoi


# ---- chunking --------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["char", "word"])
def test_chunk_boundaries_do_not_change_tokens(tmp_path, level):
    text = random_text(seed=1)
    f = write(tmp_path / "c.txt", text)
    # At word level the reader ends the file's last line with <eos>, as if it had a newline.
    full = text + ("\n" if level == "word" and not text.endswith("\n") else "")
    whole = Vocab.from_text(full, level)
    expected = whole.encode(full)
    for chunk_size in (1, 2, 3, 5, 7, 64, len(text.encode()) + 10):
        assert build_vocab(f, level, chunk_size=chunk_size) == whole, chunk_size
        tf = encode_corpus(f, whole, tmp_path / f"{level}{chunk_size}.bin", chunk_size=chunk_size)
        assert tf.tokens.tolist() == expected, chunk_size


def test_word_level_file_without_final_newline_gets_eos(tmp_path):
    write(tmp_path / "d" / "1.txt", "a b\nc")  # last line has no newline
    write(tmp_path / "d" / "2.txt", "d e\n")
    write(tmp_path / "d" / "3.txt", "f")
    counts = count_tokens(tmp_path / "d", "word", chunk_size=2)
    assert counts[EOS] == 4
    v = build_vocab(tmp_path / "d", "word")
    tf = encode_corpus(tmp_path / "d", v, tmp_path / "t.bin", chunk_size=3)
    assert v.decode(tf.tokens) == "a b\nc\nd e\nf\n"
    # char level concatenates files byte for byte
    vc = build_vocab(tmp_path / "d", "char")
    tc = encode_corpus(tmp_path / "d", vc, tmp_path / "c.bin")
    assert vc.decode(tc.tokens) == "a b\ncd e\nf"


def test_unknown_character_names_file_and_position(tmp_path):
    v = Vocab.from_text("abc\n", "char")
    f = write(tmp_path / "new.txt", "abc\nab😀c")
    with pytest.raises(RnnkitError, match=r"'😀' \(U\+1F600\) at character 6 of file .*new.txt"):
        encode_corpus(f, v, tmp_path / "t.bin", chunk_size=3)
    assert not (tmp_path / "t.bin").exists() and not (tmp_path / "t.bin.tmp").exists()


# ---- token files -----------------------------------------------------------------------------


def test_token_file_round_trip_memmap(tmp_path):
    text = random_text(seed=2)
    f = write(tmp_path / "c.txt", text)
    v = build_vocab(f, "char")
    tf = encode_corpus(f, v, tmp_path / "tok" / "train.bin")
    header = json.loads((tmp_path / "tok" / "train.bin.json").read_text())
    assert header["dtype"] == "uint16" and header["count"] == len(text)
    assert header["vocab_digest"] == v.digest
    assert os.path.getsize(tmp_path / "tok" / "train.bin") == 2 * len(text)
    again = TokenFile.open(tmp_path / "tok" / "train.bin")
    assert isinstance(again.tokens, np.memmap) and len(again) == len(text)
    assert v.decode(again.tokens) == text
    with pytest.raises(ValueError):  # read-only: nobody corrupts the corpus by accident
        again.tokens[0] = 1
    np.testing.assert_array_equal(again.tokens, tf.tokens)


def test_token_file_uses_uint32_for_large_vocabs(tmp_path):
    words = [f"w{i}" for i in range(70_000)]
    f = write(tmp_path / "big.txt", " ".join(words) + "\n")
    v = build_vocab(f, "word")
    assert len(v) == 70_002
    tf = encode_corpus(f, v, tmp_path / "big.bin")
    assert tf.dtype == np.dtype("<u4") and tf.header["dtype"] == "uint32"
    assert int(tf.tokens.max()) == 70_001 and v.decode(tf.tokens[-2:]) == "w69999\n"


def test_truncated_token_file_is_refused(tmp_path):
    f = write(tmp_path / "c.txt", "hello\n")
    encode_corpus(f, build_vocab(f, "char"), tmp_path / "t.bin")
    with open(tmp_path / "t.bin", "r+b") as fh:
        fh.truncate(4)
    with pytest.raises(RnnkitError, match="should hold 6 uint16 ids"):
        TokenFile.open(tmp_path / "t.bin")
    with pytest.raises(RnnkitError, match="header .* not found"):
        TokenFile.open(tmp_path / "other.bin")


# ---- prepare_corpus --------------------------------------------------------------------------


def test_prepare_corpus_split_and_reuse(tmp_path, monkeypatch):
    text = random_text(seed=3, n=300)
    f = write(tmp_path / "data" / "c.txt", text)
    out = tmp_path / "data" / "cache"  # inside the data folder: must not be read as data
    vocab, train, val = prepare_corpus(tmp_path / "data", "char", out, val_fraction=0.1)
    n = len(text)
    assert len(train) == int(n * 0.9) and len(train) + len(val) == n
    assert vocab.decode(train) + vocab.decode(val) == text
    assert Vocab.load(out / "vocab.json") == vocab

    def fail(*a, **k):
        raise AssertionError("re-read the corpus")

    # Same data, same settings: nothing is read again (resume).
    monkeypatch.setattr(corpus_mod, "encode_corpus", fail)
    monkeypatch.setattr(corpus_mod, "build_vocab", fail)
    v2, t2, _ = prepare_corpus(tmp_path / "data", "char", out, val_fraction=0.1)
    assert v2 == vocab and np.array_equal(t2, train)
    v3, _, _ = prepare_corpus(tmp_path / "data", "char", out, vocab=vocab)  # given vocab too
    assert v3 is vocab
    # Other settings or changed data: encode again.
    with pytest.raises(AssertionError, match="re-read"):
        prepare_corpus(tmp_path / "data", "char", out, min_freq=2)
    monkeypatch.undo()
    write(f, text + "more")
    _, t4, v4 = prepare_corpus(tmp_path / "data", "char", out, val_fraction=0.5)
    assert len(t4) + len(v4) == n + 4 and len(t4) == (n + 4) // 2


def test_prepare_corpus_with_given_vocab_and_errors(tmp_path):
    f = write(tmp_path / "c.txt", "abcabc\n")
    v = Vocab.from_text("abc\nxyz", "char")
    vocab, train, val = prepare_corpus(f, "char", tmp_path / "o", val_fraction=0.0, vocab=v)
    assert vocab is v and len(val) == 0 and vocab.decode(train) == "abcabc\n"
    with pytest.raises(RnnkitError, match="word-level but level='char'"):
        prepare_corpus(f, "char", tmp_path / "o", vocab=Vocab.from_text("a b", "word"))
    with pytest.raises(RnnkitError, match="val_fraction"):
        prepare_corpus(f, "char", tmp_path / "o", val_fraction=1.0)
    with pytest.raises(RnnkitError, match="level must be"):
        prepare_corpus(f, "bpe", tmp_path / "o")


# ---- real data -------------------------------------------------------------------------------


@pytest.mark.skipif(not (DATA / "tinyshakespeare").is_dir(), reason="needs ../shared/data")
def test_tiny_shakespeare(tmp_path):
    vocab, train, val = prepare_corpus(
        DATA / "tinyshakespeare" / "input.txt", "char", tmp_path, val_fraction=0.1
    )
    assert len(vocab) == 65 and vocab.specials == ()
    assert len(train) + len(val) == 1_115_394 and len(train) == 1_003_854
    assert train.dtype == np.uint16
    assert vocab.decode(train[:14]) == "First Citizen:"


@pytest.mark.skipif(not (DATA / "ptb").is_dir(), reason="needs ../shared/data")
def test_penn_treebank_word_level(tmp_path):
    vocab, train, _ = prepare_corpus(
        DATA / "ptb" / "ptb.train.txt", "whitespace", tmp_path, val_fraction=0.0
    )
    # 9,999 word types (its own <unk> included) + <eos>: the classic 10k vocabulary.
    assert len(vocab) == 10_000 and len(train) == 929_589
    assert vocab.itos[:3] == ("<unk>", "<eos>", "the")
