"""Span metrics: conlleval counting, summable counts, strict mode; checked against seqeval."""

import random

import pytest

from rnnkit.data.conll import read_tagged
from rnnkit.data.tag_schemes import convert_tags, extract_spans
from rnnkit.errors import RnnkitError
from rnnkit.metrics import (
    SpanCounter,
    add_counts,
    scores_from_counts,
    span_counts,
    span_scores,
    token_counts,
)

CONLL_TAGS = ["O"] + [f"{p}-{t}" for t in ("PER", "ORG", "LOC", "MISC") for p in "BI"]


def random_tags(rng: random.Random, tags: list[str], n: int) -> tuple[list, list]:
    """n random gold sentences (ill-formed ones included) and a predicted copy, 40% changed."""
    gold = [[rng.choice(tags) for _ in range(rng.randint(1, 12))] for _ in range(n)]
    pred = [[t if rng.random() < 0.6 else rng.choice(tags) for t in g] for g in gold]
    return gold, pred


def perturb(rng: random.Random, gold: list[list[str]], rate: float = 0.1) -> list[list[str]]:
    return [[t if rng.random() > rate else rng.choice(CONLL_TAGS) for t in g] for g in gold]


# ---- hand-checked cases ----------------------------------------------------------------------


def test_scores_hand_example():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "B-ORG"]]
    s = span_scores(gold, pred)
    # gold spans PER, LOC, ORG; pred spans PER, ORG, ORG, ORG; correct PER and ORG(0,1).
    assert s["precision"] == pytest.approx(2 / 4)
    assert s["recall"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert (s["support"], s["num_tokens"], s["num_sentences"]) == (3, 6, 2)
    assert s["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert s["per_type"]["ORG"]["precision"] == pytest.approx(1 / 3)
    assert s["per_type"]["ORG"]["recall"] == 1.0
    assert s["per_type"]["PER"]["f1"] == 1.0
    assert list(s["per_type"]) == ["LOC", "ORG", "PER"]


def test_spans_are_read_the_conlleval_way_across_schemes():
    # IOB1 gold and BIO prediction of the same entities: every span matches.
    gold = [["I-PER", "I-PER", "B-PER", "O", "I-LOC"]]
    pred = [["B-PER", "I-PER", "B-PER", "O", "B-LOC"]]
    s = span_scores(gold, pred)
    assert (s["f1"], s["accuracy"]) == (1.0, pytest.approx(3 / 5))
    # An ill-formed prediction still opens a span (conlleval, seqeval's default mode) ...
    assert span_counts([["O", "B-PER"]], [["O", "I-PER"]]) == {"PER": (1, 1, 1)}
    # ... which strict mode does not count.
    assert span_counts([["O", "B-PER"]], [["O", "I-PER"]], strict=True, scheme="BIO") == {
        "PER": (0, 0, 1)
    }


def test_spans_never_cross_sentences():
    gold = [["B-PER"], ["I-PER"]]
    assert span_counts(gold, gold) == {"PER": (2, 2, 2)}


def test_empty_and_all_outside():
    s = span_scores([["O", "O"]], [["O", "O"]])
    assert (s["f1"], s["precision"], s["recall"], s["accuracy"]) == (0.0, 0.0, 0.0, 1.0)
    assert s["per_type"] == {}
    s = span_scores([], [])
    assert (s["accuracy"], s["num_sentences"], s["num_tokens"]) == (0.0, 0, 0)


def test_counts_add_up_over_batches():
    rng = random.Random(1)
    gold, pred = random_tags(rng, CONLL_TAGS, 300)
    counter = SpanCounter()
    total: dict = {}
    for i in range(0, 300, 64):
        counter.update(gold[i : i + 64], pred[i : i + 64])
        total = add_counts(total, span_counts(gold[i : i + 64], pred[i : i + 64]))
    whole = span_scores(gold, pred)
    assert counter.scores() == whole
    assert total == span_counts(gold, pred)
    assert scores_from_counts(total, *token_counts(gold, pred), num_sentences=300) == whole
    assert whole["num_sentences"] == 300


def test_scheme_checks_prefixes_and_strict_needs_a_scheme():
    with pytest.raises(RnnkitError, match="pred sentence 1: tag 'E-PER' is not a BIO tag"):
        span_counts([["O"], ["O"]], [["O"], ["E-PER"]], scheme="BIO")
    with pytest.raises(RnnkitError, match="strict span matching needs scheme='BIO' or 'BIOES'"):
        span_counts([["O"]], [["O"]], strict=True)
    with pytest.raises(RnnkitError, match="strict span matching needs"):
        SpanCounter(strict=True, scheme="IOB1")
    with pytest.raises(RnnkitError, match="unknown tag scheme"):
        span_scores([["O"]], [["O"]], scheme="BILOU")


def test_bad_input_errors():
    with pytest.raises(RnnkitError, match="gold has 2 sentences but pred has 1"):
        span_scores([["O"], ["O"]], [["O"]])
    with pytest.raises(RnnkitError, match="sentence 1: gold has 2 tags but pred has 1"):
        span_scores([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(RnnkitError, match="gold sentence 0: tag 'NN' is not a span tag"):
        span_scores([["NN"]], [["O"]])
    with pytest.raises(RnnkitError, match="list of tag sequences"):
        span_scores(["B-PER", "O"], ["B-PER", "O"])


# ---- against seqeval ---------------------------------------------------------------------------


def seqeval_report(gold, pred, **kwargs) -> dict:
    metrics = pytest.importorskip("seqeval.metrics")
    return metrics.classification_report(gold, pred, output_dict=True, zero_division=0, **kwargs)


def assert_same_as_seqeval(ours: dict, report: dict) -> None:
    micro = report.pop("micro avg")
    for key in ("macro avg", "weighted avg"):
        report.pop(key)
    assert ours["precision"] == pytest.approx(micro["precision"], abs=1e-12)
    assert ours["recall"] == pytest.approx(micro["recall"], abs=1e-12)
    assert ours["f1"] == pytest.approx(micro["f1-score"], abs=1e-12)
    assert ours["support"] == micro["support"]
    assert set(ours["per_type"]) == set(report)
    for typ, theirs in report.items():
        mine = ours["per_type"][typ]
        assert mine["support"] == theirs["support"], typ
        for k, k2 in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            assert mine[k] == pytest.approx(theirs[k2], abs=1e-12), (typ, k)


@pytest.mark.parametrize("prefixes", ["BI", "BIES"], ids=["IOB1-and-BIO-tags", "BIOES-tags"])
def test_random_sequences_match_seqeval_default_mode(prefixes):
    sl = pytest.importorskip("seqeval.metrics.sequence_labeling")
    rng = random.Random(len(prefixes))
    tags = ["O", "O"] + [f"{p}-{t}" for p in prefixes for t in ("PER", "LOC", "geo-loc")]
    tags += list(prefixes)  # bare prefixes: untyped chunks
    gold, pred = random_tags(rng, tags, 3000)
    for seq in gold[:1000]:  # span by span (seqeval's end is inclusive)
        assert extract_spans(seq) == [(t, s, e + 1) for t, s, e in sl.get_entities(seq)]
    ours = span_scores(gold, pred)
    assert_same_as_seqeval(ours, seqeval_report(gold, pred))
    from seqeval.metrics import accuracy_score

    assert ours["accuracy"] == pytest.approx(accuracy_score(gold, pred), abs=1e-12)


@pytest.mark.parametrize("scheme", ["BIO", "BIOES"])
def test_random_sequences_match_seqeval_strict_mode(scheme):
    seqeval_scheme = pytest.importorskip("seqeval.scheme")
    rng = random.Random(7)
    prefixes = scheme.replace("O", "")
    tags = ["O"] + [f"{p}-{t}" for p in prefixes for t in ("PER", "LOC")] + list(prefixes)
    gold, pred = random_tags(rng, tags, 3000)
    ours = span_scores(gold, pred, strict=True, scheme=scheme)
    cls = seqeval_scheme.IOB2 if scheme == "BIO" else seqeval_scheme.IOBES
    assert_same_as_seqeval(ours, seqeval_report(gold, pred, mode="strict", scheme=cls))
    assert ours["support"] > 0


def test_conll2003_valid_gold_vs_perturbed(shared_data):
    gold = read_tagged(shared_data / "conll2003" / "valid.txt").tags
    exact = span_scores(gold, gold)
    assert (exact["f1"], exact["accuracy"], exact["support"]) == (1.0, 1.0, 5942)
    assert {t: v["support"] for t, v in exact["per_type"].items()} == {
        "LOC": 1837,
        "MISC": 922,
        "ORG": 1341,
        "PER": 1842,
    }
    pred = perturb(random.Random(3), gold)
    ours = span_scores(gold, pred)
    assert 0.3 < ours["f1"] < 0.95 and 0.85 < ours["accuracy"] < 0.95
    assert_same_as_seqeval(ours, seqeval_report(gold, pred))
    # Strict BIOES on the same data, converted.
    seqeval_scheme = pytest.importorskip("seqeval.scheme")
    gold_e = [convert_tags(g, "BIO", "BIOES") for g in gold]
    pred_e = [[("S" + t[1:] if t[0] == "B" else t) for t in p] for p in pred]  # ill-formed too
    ours = span_scores(gold_e, pred_e, strict=True, scheme="BIOES")
    report = seqeval_report(gold_e, pred_e, mode="strict", scheme=seqeval_scheme.IOBES)
    assert_same_as_seqeval(ours, report)
