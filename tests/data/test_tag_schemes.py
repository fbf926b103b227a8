"""Span tag schemes: parsing, conlleval span reading, strict spans, detection, conversion."""

import random

import pytest

from rnnkit.data.tag_schemes import (
    SCHEMES,
    check_scheme,
    convert_tags,
    detect_scheme,
    extract_spans,
    extract_spans_strict,
    parse_tag,
    tags_from_spans,
)
from rnnkit.errors import RnnkitError

TYPES = ["PER", "LOC", "geo-loc"]


def random_spans(rng: random.Random, length: int) -> list[tuple[str, int, int]]:
    """Ordered, non-overlapping spans, often adjacent and of the same type (IOB1's B- case)."""
    spans, i = [], 0
    while i < length:
        if rng.random() < 0.4:
            i += 1
            continue
        end = min(length, i + rng.randint(1, 4))
        spans.append((rng.choice(TYPES), i, end))
        i = end
    return spans


def test_parse_tag_types_and_errors():
    assert parse_tag("O") == ("O", "")
    assert parse_tag("B-PER") == ("B", "PER")
    assert parse_tag("I-geo-loc") == ("I", "geo-loc")  # the type is all after the first hyphen
    assert parse_tag("S") == ("S", "_")  # bare prefix: single-type chunking
    for bad in ["NN", "PER", "O-PER", "B-", "X-PER", "b-PER", "BPER", ""]:
        with pytest.raises(RnnkitError, match="not a span tag"):
            parse_tag(bad)


def test_check_scheme_aliases_and_unknown():
    assert [check_scheme(s) for s in ["iob1", "IOB2", "bio", "IOBES", "bioes"]] == [
        "IOB1",
        "BIO",
        "BIO",
        "BIOES",
        "BIOES",
    ]
    with pytest.raises(RnnkitError, match="unknown tag scheme 'BILOU'.*IOB1, BIO.*BIOES"):
        check_scheme("BILOU")
    with pytest.raises(RnnkitError, match="unknown tag scheme"):
        convert_tags(["O"], "BIO", "IOE2")


def test_extract_spans_conlleval_reading():
    # Well-formed in each scheme: the spans are the entities.
    assert extract_spans(["I-PER", "I-PER", "B-PER", "O", "I-LOC"]) == [
        ("PER", 0, 2),
        ("PER", 2, 3),
        ("LOC", 4, 5),
    ]
    assert extract_spans(["B-PER", "E-PER", "S-PER", "O", "B-LOC", "I-LOC", "E-LOC"]) == [
        ("PER", 0, 2),
        ("PER", 2, 3),
        ("LOC", 4, 7),
    ]
    # Ill-formed: I- opens a span, a type change splits one, E- and S- close one.
    assert extract_spans(["O", "I-PER", "I-LOC"]) == [("PER", 1, 2), ("LOC", 2, 3)]
    assert extract_spans(["E-PER", "I-PER"]) == [("PER", 0, 1), ("PER", 1, 2)]
    assert extract_spans(["B", "I", "O"]) == [("_", 0, 2)]
    assert extract_spans([]) == []


def test_extract_spans_strict_keeps_well_formed_only():
    tags = ["O", "I-PER", "B-PER", "I-PER", "E-PER", "B-LOC", "S-LOC", "B-X", "I-X"]
    assert extract_spans_strict(tags, "BIOES") == [("PER", 2, 5), ("LOC", 6, 7)]
    bio = ["I-PER", "B-PER", "I-PER", "I-LOC", "B-LOC", "B-LOC"]
    assert extract_spans_strict(bio, "BIO") == [("PER", 1, 3), ("LOC", 4, 5), ("LOC", 5, 6)]
    with pytest.raises(RnnkitError, match="'S-LOC' is not a BIO tag"):
        extract_spans_strict(["S-LOC"], "BIO")
    with pytest.raises(RnnkitError, match="BIO or BIOES.*not IOB1"):
        extract_spans_strict(["I-LOC"], "IOB1")


def test_convert_known_example_all_directions():
    forms = {
        "IOB1": ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-PER"],
        "BIO": ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-PER"],
        "BIOES": ["B-PER", "E-PER", "S-PER", "O", "S-LOC", "S-PER"],
    }
    for src, tags in forms.items():
        for dst, expected in forms.items():
            assert convert_tags(tags, src, dst) == expected, (src, dst)


def test_convert_round_trip_random_exact():
    rng = random.Random(0)
    for _ in range(2000):
        length = rng.randint(0, 15)
        spans = random_spans(rng, length)
        forms = {s: tags_from_spans(spans, length, s) for s in SCHEMES}
        for src in SCHEMES:
            assert extract_spans(forms[src]) == spans
            for dst in SCHEMES:
                assert convert_tags(forms[src], src, dst) == forms[dst]
                assert convert_tags(convert_tags(forms[src], src, dst), dst, src) == forms[src]


def test_convert_repairs_ill_formed_the_conlleval_way():
    assert convert_tags(["O", "I-PER", "I-LOC"], "BIO", "BIOES") == ["O", "S-PER", "S-LOC"]
    assert convert_tags(["O", "B-PER"], "IOB1", "IOB1") == ["O", "B-PER"]  # same: untouched
    assert convert_tags(["O", "B-PER"], "IOB1", "BIO") == ["O", "B-PER"]
    assert convert_tags(["B-PER", "I-PER"], "BIO", "IOB1") == ["I-PER", "I-PER"]


def test_convert_rejects_tags_of_another_scheme():
    with pytest.raises(RnnkitError, match="'E-PER' is not a BIO tag"):
        convert_tags(["B-PER", "E-PER"], "BIO", "BIOES")
    with pytest.raises(RnnkitError, match="'NN' is not a span tag"):
        convert_tags(["NN"], "BIO", "BIOES")


def test_detect_scheme():
    assert detect_scheme([["I-PER", "I-PER", "O"], ["O", "I-LOC", "B-LOC"]]) == "IOB1"
    assert detect_scheme([["B-PER", "I-PER", "O"], ["B-LOC"]]) == "BIO"
    assert detect_scheme([["B-PER", "E-PER"], ["O"]]) == "BIOES"
    assert detect_scheme([["S-PER"]]) == "BIOES"
    assert detect_scheme(["B-PER", "I-PER"]) == "BIO"  # one sequence
    assert detect_scheme([["DT", "NN"], ["VB"]]) is None  # parts of speech
    assert detect_scheme([["O", "O"]]) is None
    assert detect_scheme([]) is None
    # A few ill-formed tags in a BIO corpus do not make it IOB1, nor the reverse.
    assert detect_scheme([["B-PER"]] * 5 + [["O", "I-PER"]]) == "BIO"
    assert detect_scheme([["I-PER"]] * 5 + [["O", "B-PER"]]) == "IOB1"
