"""Tokenizers for translation: Moses words with detokenisation, characters, SentencePiece
subwords trained in memory and saved as JSON (never pickled)."""

import pytest

from rnnkit.data.tokenizers import TextTokenizer
from rnnkit.errors import RnnkitError

TEXT = [
    "A man in a blue shirt is standing on a ladder.",
    "Two young, White males are outside near many bushes.",
    "It's a \"test\" of 3.5 km, isn't it?",
] * 20


def test_word_tokens_and_detokenisation():
    tok = TextTokenizer("word", "en")
    tokens = tok.tokenize(TEXT[2])
    assert tokens[:3] == ["It", "'s", "a"] and "?" in tokens and "3.5" in tokens
    assert tok.detokenize(tokens) == TEXT[2]
    assert tok.vocab_level == "word"
    assert TextTokenizer("word", "en", lowercase=True).tokenize("The Cat")[0] == "the"


def test_char_tokens():
    tok = TextTokenizer("char")
    assert tok.tokenize("é a") == ["é", " ", "a"] and tok.detokenize(["é", " ", "a"]) == "é a"
    assert tok.vocab_level == "char"


def test_subword_model_travels_in_json():
    tok = TextTokenizer.train("subword", TEXT, vocab_size=60)
    pieces = tok.tokenize(TEXT[0])
    assert 1 < len(pieces) < len(TEXT[0]) and tok.detokenize(pieces) == TEXT[0]
    d = tok.to_dict()
    assert isinstance(d["sentencepiece_model"], str)  # base64 of the protobuf
    again = TextTokenizer.from_dict(d)
    assert again.tokenize(TEXT[1]) == tok.tokenize(TEXT[1])
    assert TextTokenizer.train("subword", TEXT, vocab_size=60).spm_model == tok.spm_model
    d["sentencepiece_sha256"] = "0" * 64
    with pytest.raises(RnnkitError, match="fails its sha256 check"):
        TextTokenizer.from_dict(d)


def test_bad_tokenizers():
    with pytest.raises(RnnkitError, match="tokenizer must be one of"):
        TextTokenizer("bpe")
    with pytest.raises(RnnkitError, match="needs its SentencePiece model"):
        TextTokenizer("subword")
    with pytest.raises(RnnkitError, match="not an rnnkit tokenizer"):
        TextTokenizer.from_dict({"kind": "word"}, "x.json")
