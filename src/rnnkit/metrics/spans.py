"""Span-level precision, recall and F1 (named entities, chunks), as CoNLL's conlleval counts
them, and token accuracy.

A predicted span counts as correct when a gold span has the same type, start and end. Spans
are read the conlleval way by default (:func:`~rnnkit.data.tag_schemes.extract_spans`: exactly
seqeval's default mode, and conlleval's own reading for IOB1 and BIO tags), so ``O I-PER`` is
a span; ``strict=True`` counts only well-formed spans of a BIO or BIOES ``scheme`` (seqeval's
``mode="strict"``). Spans never cross sentences. Accuracy is over tokens, whole tags compared.

Every score is a fraction in [0, 1] (conlleval prints percentages); a ratio with nothing to
divide by is 0, as in conlleval. Counts add up, so a trainer can score an epoch batch by batch::

    counter = SpanCounter()
    for gold, pred in batches:          # lists of tag sequences, one per sentence
        counter.update(gold, pred)
    counter.scores()["f1"]
"""

from collections.abc import Sequence

from rnnkit.data.tag_schemes import (
    PREFIXES,
    Span,
    check_scheme,
    extract_spans,
    extract_spans_strict,
    parse_tag,
)
from rnnkit.errors import RnnkitError

Tags = Sequence[Sequence[str]]  # one tag sequence per sentence
Counts = dict[str, tuple[int, int, int]]  # span type → (correct, predicted, gold)


def span_counts(
    gold: Tags, pred: Tags, *, strict: bool = False, scheme: str | None = None
) -> Counts:
    """Per span type: (correct, predicted, gold) span counts over all sentences.

    ``gold`` and ``pred`` hold one tag sequence per sentence, of equal lengths. ``scheme``,
    when given, also checks that every tag uses that scheme's prefixes; ``strict`` needs it.
    Types that occur in neither are absent; keys are sorted.
    """
    _check_pairs(gold, pred)
    scheme = _check_mode(strict, scheme)
    counts: dict[str, list[int]] = {}
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        g_spans = set(_spans(g, strict, scheme, "gold", i))
        p_spans = set(_spans(p, strict, scheme, "pred", i))
        for k, spans in ((2, g_spans), (1, p_spans), (0, g_spans & p_spans)):
            for typ, _, _ in spans:
                counts.setdefault(typ, [0, 0, 0])[k] += 1
    return {typ: tuple(counts[typ]) for typ in sorted(counts)}


def token_counts(gold: Tags, pred: Tags) -> tuple[int, int]:
    """(tokens whose predicted tag equals the gold tag, tokens) over all sentences."""
    _check_pairs(gold, pred)
    correct = sum(
        a == b for g, p in zip(gold, pred, strict=True) for a, b in zip(g, p, strict=True)
    )
    return correct, sum(len(g) for g in gold)


def add_counts(a: Counts, b: Counts) -> Counts:
    """The sum of two :func:`span_counts` results, type by type."""
    out = {typ: tuple(a.get(typ, (0, 0, 0))) for typ in sorted(set(a) | set(b))}
    for typ, c in b.items():
        out[typ] = tuple(x + y for x, y in zip(out[typ], c, strict=True))
    return out


def scores_from_counts(
    counts: Counts, tokens_correct: int = 0, tokens_total: int = 0, num_sentences: int = 0
) -> dict:
    """Scores from summed counts: the dict :func:`span_scores` returns.

    ``{"f1", "precision", "recall", "accuracy", "support", "num_tokens", "num_sentences",
    "per_type": {type: {"precision", "recall", "f1", "support"}}}``, the overall scores
    micro-averaged over types, support = number of gold spans; fractions in [0, 1].
    """
    per_type = {}
    for typ, (correct, predicted, gold) in sorted(counts.items()):
        per_type[typ] = {**_prf(correct, predicted, gold), "support": gold}
    correct, predicted, gold = (sum(c[k] for c in counts.values()) for k in range(3))
    return {
        **_prf(correct, predicted, gold),
        "accuracy": tokens_correct / tokens_total if tokens_total else 0.0,
        "support": gold,
        "num_tokens": tokens_total,
        "num_sentences": num_sentences,
        "per_type": per_type,
    }


def span_scores(gold: Tags, pred: Tags, *, strict: bool = False, scheme: str | None = None) -> dict:
    """Span precision/recall/F1 (overall and per type) and token accuracy, conlleval's way.

    See :func:`scores_from_counts` for the dict and :func:`span_counts` for the arguments.
    """
    counter = SpanCounter(strict=strict, scheme=scheme)
    counter.update(gold, pred)
    return counter.scores()


class SpanCounter:
    """Span and token counts summed over calls to :meth:`update` (e.g. batches of an epoch)."""

    def __init__(self, *, strict: bool = False, scheme: str | None = None) -> None:
        self.scheme = _check_mode(strict, scheme)
        self.strict = strict
        self.counts: Counts = {}
        self.tokens_correct = 0
        self.tokens_total = 0
        self.num_sentences = 0

    def update(self, gold: Tags, pred: Tags) -> None:
        """Add the counts of more sentences: one gold and one predicted tag sequence each."""
        counts = span_counts(gold, pred, strict=self.strict, scheme=self.scheme)
        correct, total = token_counts(gold, pred)
        self.counts = add_counts(self.counts, counts)
        self.tokens_correct += correct
        self.tokens_total += total
        self.num_sentences += len(gold)

    def scores(self) -> dict:
        """The scores of everything added so far (see :func:`scores_from_counts`)."""
        return scores_from_counts(
            self.counts, self.tokens_correct, self.tokens_total, self.num_sentences
        )


def _prf(correct: int, predicted: int, gold: int) -> dict[str, float]:
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"f1": f1, "precision": precision, "recall": recall}


def _check_mode(strict: bool, scheme: str | None) -> str | None:
    if scheme is not None:
        scheme = check_scheme(scheme)
    if strict and scheme not in ("BIO", "BIOES"):
        raise RnnkitError(
            f"strict span matching needs scheme='BIO' or 'BIOES', got {scheme!r} (IOB1 tags: "
            "convert them to BIO first, see rnnkit.data.tag_schemes.convert_tags)"
        )
    return scheme


def _check_pairs(gold: Tags, pred: Tags) -> None:
    for name, seqs in (("gold", gold), ("pred", pred)):
        if len(seqs) and isinstance(seqs[0], str):
            raise RnnkitError(
                f"{name} must be a list of tag sequences, one per sentence, not a list of tags"
            )
    if len(gold) != len(pred):
        raise RnnkitError(f"gold has {len(gold)} sentences but pred has {len(pred)}")
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if len(g) != len(p):
            raise RnnkitError(f"sentence {i}: gold has {len(g)} tags but pred has {len(p)}")


def _spans(tags: Sequence[str], strict: bool, scheme: str | None, side: str, i: int) -> list[Span]:
    try:
        if strict:
            return extract_spans_strict(tags, scheme)
        if scheme is not None:
            allowed = PREFIXES[scheme]
            for tag in tags:
                if tag != "O" and parse_tag(tag)[0] not in allowed:
                    raise RnnkitError(f"tag {tag!r} is not a {scheme} tag")
        return extract_spans(tags)
    except RnnkitError as e:
        raise RnnkitError(f"{side} sentence {i}: {e}") from None
