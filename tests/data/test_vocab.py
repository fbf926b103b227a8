"""Vocab: deterministic order, save/load, word-level cut rules, char-level Unicode."""

import json
import random
from collections import Counter

import numpy as np
import pytest
import torch

from rnnkit.data import EOS, UNK, Vocab, tokenize
from rnnkit.errors import RnnkitError

UNICODE_TEXT = (
    "naïve café — 東京タワー 和 中文字符\n"
    "e\u0301 a\u0308 Z\u0336\u0335 (combining marks)\n"
    "👩\u200d👩\u200d👧 🇫🇷 👍🏽 🎉 𝔘𝔫𝔦𝔠𝔬𝔡𝔢\n"
    "العربية עברית\r\n"
    "\t tab\u00a0nbsp\u2028line-sep\n"
)


def test_order_specials_then_count_then_code_point():
    v = Vocab.from_text("bbb aa c\nc d", "word")
    # c:2, then aa, bbb, d (1 each) in code-point order; <eos> is a special, always first
    assert v.itos == (UNK, EOS, "c", "aa", "bbb", "d")
    v = Vocab.from_text("bacab\n", "char")
    # a:2, b:2 tie → code point order; then \n:1 (U+000A) before c:1 (U+0063)
    assert v.itos == ("a", "b", "\n", "c")
    assert v.specials == ()


def test_same_order_from_differently_ordered_input():
    rng = random.Random(0)
    chars = list("the quick brown fox jumps over the lazy dog\n" * 3 + "ÆØÅ😀")
    words = ("to be or not to be that is the question Ω ω 東京 " * 4).split()
    char_orders, word_orders = set(), set()
    for _ in range(5):
        rng.shuffle(chars)
        char_orders.add(Vocab.from_text("".join(chars), "char").itos)
        rng.shuffle(words)
        lines = [" ".join(words[i : i + 5]) for i in range(0, len(words), 5)]
        word_orders.add(Vocab.from_text("\n".join(lines) + "\n", "word").itos)
    assert len(char_orders) == 1 and len(word_orders) == 1
    assert next(iter(word_orders))[:4] == (UNK, EOS, "be", "to")


def test_build_from_counts_ignores_mapping_order():
    counts = {"x": 3, "y": 3, "é": 3, "a": 1, "Z": 5}
    shuffled = dict(reversed(list(counts.items())))
    assert Vocab.build(counts, "char").itos == Vocab.build(shuffled, "char").itos
    assert Vocab.build(counts, "char").itos == ("Z", "x", "y", "é", "a")


@pytest.mark.parametrize("level", ["char", "word"])
def test_save_load_identical(tmp_path, level):
    v = Vocab.from_text(UNICODE_TEXT * 2 + "extra words here\n", level, min_freq=1)
    path = tmp_path / "vocab.json"
    v.save(path)
    w = Vocab.load(path)
    assert w == v and w.itos == v.itos and w.digest == v.digest
    assert w.stoi == v.stoi and w.level == level
    assert Vocab.from_dict(json.loads(json.dumps(v.to_dict()))) == v
    assert w.encode(UNICODE_TEXT) == v.encode(UNICODE_TEXT)
    # The file is readable UTF-8 JSON with the characters themselves, not escapes.
    assert "東" in path.read_text(encoding="utf-8") or level == "word"


def test_digest_depends_on_order_and_level():
    a = Vocab(["a", "b"], "char")
    assert a.digest != Vocab(["b", "a"], "char").digest
    assert a.digest == Vocab(("a", "b"), "char").digest


def test_load_errors(tmp_path):
    with pytest.raises(RnnkitError, match="not found"):
        Vocab.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(RnnkitError, match="bad.json"):
        Vocab.load(bad)
    bad.write_text(
        json.dumps(
            {"format": "rnnkit-vocab", "version": 1, "level": "char", "size": 2, "itos": ["a", "a"]}
        ),
        encoding="utf-8",
    )
    with pytest.raises(RnnkitError, match="twice"):
        Vocab.load(bad)
    with pytest.raises(RnnkitError, match="level must be one of char, word, whitespace"):
        Vocab(["a"], "byte")


def test_word_level_eos_and_decode():
    text = "the cat sat\n\nthe dog  ran\r\n"
    assert tokenize(text, "word") == ["the", "cat", "sat", EOS, EOS, "the", "dog", "ran", EOS]
    v = Vocab.from_text(text, "word")
    ids = v.encode(text)
    assert ids.count(v.eos_id) == 3
    assert v.decode(ids) == "the cat sat\n\nthe dog ran\n"
    assert v.decode(v.encode("the cat")) == "the cat"  # a prompt gets no <eos> of its own


def test_word_level_unk_cut_rules():
    text = "a a a a b b b c c d\n"  # a:4 b:3 c:2 d:1 <eos>:1
    v = Vocab.from_text(text, "word", min_freq=2)
    assert v.itos == (UNK, EOS, "a", "b", "c")  # <eos> is special: never cut by min_freq
    assert v.encode("d e a") == [v.unk_id, v.unk_id, v.stoi["a"]]
    assert v.decode(v.encode("d a\n")) == "<unk> a\n"
    v = Vocab.from_text(text, "word", max_size=4)  # max_size counts the specials
    assert len(v) == 4 and v.itos == (UNK, EOS, "a", "b")
    v = Vocab.from_text(text, "word", max_size=4, min_freq=4)
    assert v.itos == (UNK, EOS, "a")
    with pytest.raises(RnnkitError, match="max_size"):
        Vocab.from_text(text, "word", max_size=2)
    with pytest.raises(RnnkitError, match="min_freq"):
        Vocab.from_text(text, "word", min_freq=5)


def test_word_level_literal_specials_are_the_specials():
    # PTB writes rare words as "<unk>" in its text: that must be our <unk>, not a new word.
    v = Vocab.from_text("the <unk> cat <unk> <unk>\n", "word")
    assert v.itos.count(UNK) == 1 and v.itos == (UNK, EOS, "cat", "the")
    assert v.encode("<unk> <eos>") == [v.unk_id, v.eos_id]


def test_char_level_has_no_specials_and_names_unknown_characters():
    v = Vocab.from_text("hello world\n", "char")
    assert v.specials == () and v.unk_id is None and len(v) == 9
    with pytest.raises(RnnkitError, match=r"'é' \(U\+00E9\) at character 4 of the text"):
        v.encode("hell\u00e9")
    with pytest.raises(RnnkitError, match=r"U\+1F600"):
        v.encode("😀")
    with pytest.raises(RnnkitError, match=r"'z' \(U\+007A\) at character 3 of the text"):
        v.encode("lolz")  # ASCII text takes another (faster) path: same error


def test_char_encode_fast_and_general_paths_agree():
    text = "".join(chr(c) for c in range(32, 127)) + "\n"
    small = Vocab.from_text(text, "char")  # < 255 tokens: ASCII goes through bytes.translate
    large = Vocab.from_text(text + "".join(map(chr, range(0x100, 0x200))), "char")
    assert len(large) > 255
    for v in (small, large):
        ids = v.encode(text)
        assert ids == [v.stoi[c] for c in text] and v.decode(ids) == text
    with_unk = Vocab.from_text("aaab", "char", unk=True)
    assert with_unk.encode("abz\n") == [1, 2, 0, 0]  # ASCII: unknowns → <unk> on the fast path


def test_char_level_unk_on_request_or_when_cut():
    v = Vocab.from_text("aaab", "char", unk=True)
    assert v.itos == (UNK, "a", "b")
    assert v.encode("abz😀") == [1, 2, 0, 0]
    assert v.decode([1, 0, 2]) == "a\ufffdb"
    cut = Vocab.from_text("aaabbc", "char", min_freq=2)  # drops 'c' → <unk> added
    assert cut.itos == (UNK, "a", "b")
    cut = Vocab.from_text("aaabbc", "char", max_size=2)  # <unk> + 1 character: 2 in all
    assert cut.itos == (UNK, "a") and cut.encode("abc") == [1, 0, 0]
    with pytest.raises(RnnkitError, match="unk=False"):
        Vocab.from_text("aaabbc", "char", min_freq=2, unk=False)
    with pytest.raises(RnnkitError, match="unk=False"):
        Vocab.from_text("aaabbc", "char", max_size=2, unk=False)


def test_char_level_max_size_unk_false_exact_fit():
    # Without a cut, unk=False and max_size >= the number of characters is fine.
    assert Vocab.from_text("abc", "char", max_size=3, unk=False).itos == ("a", "b", "c")
    assert Vocab.from_text("abc", "char", max_size=3).itos == ("a", "b", "c")


@pytest.mark.parametrize(
    "text",
    [
        UNICODE_TEXT,
        "👩\u200d👩\u200d👧",  # one grapheme, five code points
        "e\u0301\u0301",  # stacked combining marks stay as they are (no normalisation)
        "\u00e9 vs e\u0301",  # NFC and NFD spellings stay distinct
        "\U0010ffff\U00010000\x7f\x80",
    ],
)
def test_unicode_round_trip_char_level(text):
    v = Vocab.from_text(text, "char")
    ids = v.encode(text)
    assert len(ids) == len(text)  # one id per code point, never per byte
    assert v.decode(ids) == text
    assert v.decode(np.array(ids)) == text and v.decode(torch.tensor(ids)) == text
    assert Vocab.from_text(text, "char").itos == v.itos


def test_unicode_word_level_round_trip():
    text = "東京 タワー café\nnaïve 👍🏽 e\u0301\n"
    v = Vocab.from_text(text, "word")
    assert v.decode(v.encode(text)) == text


def test_encode_array_dtype_and_decode_range():
    v = Vocab.from_text("abc", "char")
    arr = v.encode_array("cab", dtype=np.uint16)
    assert arr.dtype == np.uint16 and arr.tolist() == [2, 0, 1]
    assert v.encode("") == [] and v.decode([]) == ""
    with pytest.raises(RnnkitError, match="out of range"):
        v.decode([0, 3])
    with pytest.raises(RnnkitError, match="out of range"):
        v.decode([-1])
    assert v.decode([np.int64(2), np.uint16(0)]) == "ca"
    with pytest.raises(RnnkitError, match="integers"):
        v.decode([1.0])


def test_counts_match_tokens():
    text = UNICODE_TEXT * 3
    v = Vocab.from_text(text, "char")
    counts = Counter(text)
    ranked = [t for t in v.itos]
    assert [counts[t] for t in ranked] == sorted(counts.values(), reverse=True)
