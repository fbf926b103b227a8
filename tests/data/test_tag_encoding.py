"""Tagged sentences as tagger inputs: ids, casing, characters, batches, and the tag checks."""

import numpy as np
import pytest

from rnnkit.data.conll import read_tagged
from rnnkit.data.tag_encoding import (
    SentenceEncoder,
    TagBatches,
    check_tags,
    encode_tags,
    tags_in,
    word_key,
)
from rnnkit.data.vocab import PAD, UNK, LabelVocab, Vocab
from rnnkit.errors import RnnkitError


def vocabs():
    words = Vocab.build({"paris": 3, "in": 2, "0000": 1}, "word", specials=(PAD, UNK))
    chars = Vocab.build({c: 1 for c in "Parisn19abcdefghij"}, "char", specials=(PAD, UNK))
    return words, chars


def test_word_keys_fold_case_and_digits():
    assert word_key("Paris1999", True, True) == "paris0000"
    assert word_key("Paris1999", False, False) == "Paris1999"


def test_encoder_columns_and_long_words():
    words, chars = vocabs()
    enc = SentenceEncoder(words, chars, lowercase=True, zero_digits=True, max_word_length=6)
    x = enc.encode(["In", "Paris", "1999", "abcdefghij", "Zürich"])
    assert x.shape == (5, 8) and x.dtype == np.int64
    assert x[:, 0].tolist() == [words.stoi["in"], words.stoi["paris"], words.stoi["0000"], 1, 1]
    assert x[:, 1].tolist() == [5, 5, 1, 3, 5]  # initial_upper, initial_upper, numeric, lower
    assert chars.decode(x[1, 2:7]) == "Paris" and x[1, 7] == 0
    assert chars.decode(x[3, 2:]) == "abchij"  # the first and last halves of a long word
    assert x[4, 3] == chars.unk_id  # 'ü' was never seen


def test_batches_split_the_columns():
    words, chars = vocabs()
    enc = SentenceEncoder(words, chars, True, True, 4)
    sents = [["in", "Paris"], ["Paris"], ["in", "in", "in"]]
    targets = [np.array([0, 1]), np.array([1]), np.array([0, 0, 0])]
    b = TagBatches([enc.encode(s) for s in sents], targets, 2, shuffle=False).batch(0, 1)
    assert set(b) == {"words", "casing", "chars", "lengths", "index", "targets"}
    assert b["chars"].shape == (1, 3, 4) and b["words"].shape == (1, 3)
    first = TagBatches([enc.encode(s) for s in sents], targets, 2, shuffle=False).batch(0, 0)
    assert first["targets"].tolist() == [[1, -1], [0, 1]]  # shortest first, padded with -1
    assert first["words"][0, 1] == 0 and first["chars"][0, 1].sum() == 0


def write(tmp_path, text, name="t.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_scheme_and_scheme_of_plain_tags_name_the_line(tmp_path):
    bilou = read_tagged(write(tmp_path, "John B-PER\nSmith L-PER\n\nParis U-LOC\n"))
    with pytest.raises(RnnkitError, match=r"t\.txt:2: tag 'L-PER' is in no known tag scheme"):
        check_tags(bilou)
    pos = read_tagged(write(tmp_path, "John NNP\nsleeps VBZ\n", "pos.txt"))
    check_tags(pos)  # plain tags are fine
    with pytest.raises(RnnkitError, match=r"pos\.txt:1: tag 'NNP' is not a span tag"):
        check_tags(pos, "BIO")


def test_tags_convert_and_unknown_tags_name_the_line(tmp_path):
    corpus = read_tagged(write(tmp_path, "New B-LOC\nYork I-LOC\nis O\n\nOslo B-LOC\n"))
    assert corpus.scheme == "BIO"
    assert tags_in(corpus, "BIOES") == [["B-LOC", "E-LOC", "O"], ["S-LOC"]]
    assert tags_in(corpus, "") == tags_in(corpus, "BIO") == corpus.tags
    vocab = LabelVocab(["B-LOC", "I-LOC", "O"])
    assert [a.tolist() for a in encode_tags(corpus, corpus.tags, vocab, "x")] == [[0, 1, 2], [0]]
    with pytest.raises(RnnkitError, match=r"t\.txt:5: tag 'S-LOC' is not one of the tags of x"):
        encode_tags(corpus, tags_in(corpus, "BIOES"), LabelVocab(["B-LOC", "E-LOC", "O"]), "x")
