"""Vocabularies with chosen specials (classification, translation) and label vocabularies."""

from collections import Counter

import pytest

from rnnkit.data.vocab import PAD, UNK, LabelVocab, Vocab
from rnnkit.errors import RnnkitError


def test_specials_come_first_and_survive_a_round_trip():
    v = Vocab.build(Counter(["a", "b", "b", "c", "c", "c"]), "word", specials=(PAD, UNK))
    assert v.itos == (PAD, UNK, "c", "b", "a")
    assert (v.pad_id, v.unk_id, v.bos_id, v.eos_id) == (0, 1, None, None)
    assert v.encode_tokens(["c", "zzz", "a"]).tolist() == [2, 1, 4]
    back = Vocab.from_dict(v.to_dict())
    assert back == v and back.specials == (PAD, UNK)
    counts = Counter(["a", "b", "b", "c", "c", "c"])
    capped = Vocab.build(counts, "word", max_size=3, specials=(PAD, UNK))
    assert capped.itos == (PAD, UNK, "c")


def test_specials_are_checked():
    with pytest.raises(RnnkitError, match="specials must be among"):
        Vocab(["<mask>", "a"], "word", specials=["<mask>"])
    with pytest.raises(RnnkitError, match="come first"):
        Vocab(["a", PAD], "word", specials=[PAD])
    no_unk = Vocab([PAD, "a"], "word", specials=[PAD])
    with pytest.raises(RnnkitError, match="token 'b' in line 3 is not in the vocabulary"):
        no_unk.encode_tokens(["a", "b"], "line 3")


def test_label_vocab_sorts_numbers_as_numbers_and_names_unknown_classes():
    labels = LabelVocab.build(["10", "2", "1", "2"])
    assert labels.itos == ("1", "2", "10")
    assert LabelVocab.build(["pos", "neg"]).itos == ("neg", "pos")
    assert labels.encode(["10", "1"]).tolist() == [2, 0]
    with pytest.raises(RnnkitError, match=r"class '3' at f.txt:7 was never seen in training"):
        labels.encode(["1", "3"], ["f.txt:6", "f.txt:7"])
    assert LabelVocab.from_dict(labels.to_dict()) == labels
    with pytest.raises(RnnkitError, match="not an rnnkit label vocab"):
        LabelVocab.from_dict({"labels": ["a"]})
