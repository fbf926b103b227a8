"""Span tag schemes (named entities, chunks): IOB1, BIO and BIOES; detection and conversion.

A span tag is ``O`` (outside any span) or a prefix and a type, ``B-PER``: the type is all that
follows the first hyphen (``B-geo-loc`` has type ``geo-loc``, as in conlleval); a bare prefix
(``B``, for single-type chunking) has type ``_``, as in seqeval. The schemes:

* **IOB1** (CoNLL-2003 as distributed): ``I-X`` on every token of an entity, its first one
  included; ``B-X`` only on the first token of an entity that directly follows another entity
  of the same type (``I-PER I-PER B-PER``: two people).
* **BIO** (alias IOB2): ``B-X`` on the first token of every entity, ``I-X`` on the others.
* **BIOES** (alias IOBES): ``B-X`` first, ``I-X`` middle, ``E-X`` last, ``S-X`` alone.

Spans are read the conlleval way (:func:`extract_spans`, exactly seqeval's default mode): it
accepts every sequence, ill-formed ones included (``O I-PER`` opens a span). A conversion goes
through spans, so well-formed tags convert back exactly, and ill-formed ones come out repaired
the way conlleval reads them.
"""

from collections.abc import Iterable, Sequence
from functools import lru_cache

from rnnkit.errors import RnnkitError

SCHEMES = ("IOB1", "BIO", "BIOES")
ALIASES = {"IOB1": "IOB1", "BIO": "BIO", "IOB2": "BIO", "BIOES": "BIOES", "IOBES": "BIOES"}
PREFIXES = {"IOB1": "BIO", "BIO": "BIO", "BIOES": "BIOES"}  # prefixes each scheme may use
UNTYPED = "_"  # the type of a bare prefix such as "B"

Span = tuple[str, int, int]  # (type, start, end): the span is tags[start:end]


def check_scheme(name: str) -> str:
    """The canonical name ("IOB1", "BIO" or "BIOES") of a scheme name or alias, any case."""
    canonical = ALIASES.get(str(name).upper())
    if canonical is None:
        raise RnnkitError(
            f"unknown tag scheme {name!r}: known schemes are IOB1, BIO (alias IOB2) and "
            "BIOES (alias IOBES)"
        )
    return canonical


@lru_cache(maxsize=4096)
def parse_tag(tag: str) -> tuple[str, str]:
    """(prefix, type) of a span tag: ``"B-PER"`` → ``("B", "PER")``, ``"O"`` → ``("O", "")``."""
    if tag == "O":
        return "O", ""
    if tag[:1] in ("B", "I", "E", "S") and (len(tag) == 1 or (tag[1] == "-" and len(tag) > 2)):
        return tag[0], tag[2:] or UNTYPED
    raise RnnkitError(
        f"tag {tag!r} is not a span tag: expected O or B-, I-, E-, S- and a type (e.g. B-PER)"
    )


def is_span_tag(tag: str) -> bool:
    """Whether ``tag`` is O or a B-/I-/E-/S- tag (see :func:`parse_tag`)."""
    try:
        parse_tag(tag)
    except RnnkitError:
        return False
    return True


# The conlleval rules as seqeval's default mode has them (conlleval itself predates S-, and
# reads E-X B-X as one chunk): prev → current tag pairs that close / open a chunk.
_ENDS = {("B", "B"), ("B", "S"), ("B", "O"), ("I", "B"), ("I", "S"), ("I", "O")}
_STARTS = {("E", "E"), ("E", "I"), ("S", "E"), ("S", "I"), ("O", "E"), ("O", "I")}


def extract_spans(tags: Sequence[str]) -> list[Span]:
    """The spans of one tag sequence, read the conlleval way (any scheme, any sequence).

    Returns (type, start, end) with end exclusive, in order. Equal to seqeval's default
    ``get_entities`` (whose end is inclusive) on every sequence of O/B/I/E/S tags.
    """
    spans: list[Span] = []
    prev_p, prev_t, start = "O", "", 0
    for i, tag in enumerate(tags):
        p, t = parse_tag(tag)
        if prev_p != "O" and (prev_p in "ES" or (prev_p, p) in _ENDS or prev_t != t):
            spans.append((prev_t, start, i))
        if p != "O" and (p in "BS" or (prev_p, p) in _STARTS or prev_t != t):
            start = i
        prev_p, prev_t = p, t
    if prev_p != "O":
        spans.append((prev_t, start, len(tags)))
    return spans


def extract_spans_strict(tags: Sequence[str], scheme: str) -> list[Span]:
    """The well-formed spans of one tag sequence under a BIO or BIOES scheme (seqeval's strict
    mode): BIO spans are ``B-X I-X*``; BIOES spans are ``B-X I-X* E-X`` or ``S-X``. Anything
    else (``O I-PER``, a ``B-X`` with no ``E-X``) is no span at all.
    """
    scheme = check_scheme(scheme)
    if scheme == "IOB1":
        raise RnnkitError(
            "strict span matching needs the BIO or BIOES scheme, not IOB1 (where no sequence "
            "is ill-formed): convert the tags with convert_tags(tags, 'IOB1', 'BIO')"
        )
    parsed = [_parse_in(tag, scheme) for tag in tags]
    spans: list[Span] = []
    i, n = 0, len(parsed)
    while i < n:
        p, t = parsed[i]
        if p == "S":
            spans.append((t, i, i + 1))
        if p != "B":
            i += 1
            continue
        j = i + 1
        last = "B"
        while j < n and last in "BI" and parsed[j][1] == t and parsed[j][0] in "IE":
            last = parsed[j][0]
            j += 1
        if scheme == "BIO" or last == "E":
            spans.append((t, i, j))
        i = j
    return spans


def tags_from_spans(spans: Iterable[Span], length: int, scheme: str) -> list[str]:
    """The tags of ``length`` tokens holding ``spans`` (ordered, not overlapping) in ``scheme``."""
    scheme = check_scheme(scheme)
    tags = ["O"] * length
    prev_type, prev_end = None, -1
    for typ, start, end in spans:
        suffix = "" if typ == UNTYPED else "-" + typ
        inside = "I" + suffix
        tags[start:end] = [inside] * (end - start)
        if scheme == "BIO":
            tags[start] = "B" + suffix
        elif scheme == "BIOES":
            if end - start == 1:
                tags[start] = "S" + suffix
            else:
                tags[start], tags[end - 1] = "B" + suffix, "E" + suffix
        elif prev_end == start and prev_type == typ:  # IOB1: B only to split two entities
            tags[start] = "B" + suffix
        prev_type, prev_end = typ, end
    return tags


def convert_tags(tags: Sequence[str], from_scheme: str, to_scheme: str) -> list[str]:
    """One sentence's tags converted between IOB1, BIO and BIOES (length unchanged).

    Exact both ways for well-formed tags; ill-formed ones are read the conlleval way
    (:func:`extract_spans`). A tag whose prefix ``from_scheme`` does not use (``E-PER`` in
    BIO) raises :class:`RnnkitError`.
    """
    source, target = check_scheme(from_scheme), check_scheme(to_scheme)
    for tag in tags:
        _parse_in(tag, source)
    if source == target:
        return list(tags)
    return tags_from_spans(extract_spans(tags), len(tags), target)


def detect_scheme(sequences: Iterable[Sequence[str]] | Sequence[str]) -> str | None:
    """The scheme of some tag sequences (one per sentence, or a single one): "IOB1", "BIO",
    "BIOES", or None for tags that are not span tags (parts of speech) or only ``O``.

    E-/S- prefixes mean BIOES. Otherwise the way entities open decides: BIO opens each with
    B-, IOB1 with I- (B- only after an entity of the same type); the more frequent wins, so a
    few ill-formed tags do not flip a corpus.
    """
    seqs = list(sequences)
    if seqs and isinstance(seqs[0], str):
        seqs = [seqs]
    prefixes: set[str] = set()
    opened_by = {"B": 0, "I": 0}  # entities whose first tag has this prefix
    for seq in seqs:
        prev_p, prev_t = "O", ""
        for tag in seq:
            if not is_span_tag(tag):
                return None
            p, t = parse_tag(tag)
            prefixes.add(p)
            if p in opened_by and (prev_p == "O" or prev_t != t):
                opened_by[p] += 1
            prev_p, prev_t = p, t
    if prefixes & {"E", "S"}:
        return "BIOES"
    if not prefixes - {"O"}:
        return None
    return "IOB1" if opened_by["I"] > opened_by["B"] else "BIO"


def _parse_in(tag: str, scheme: str) -> tuple[str, str]:
    p, t = parse_tag(tag)
    if p != "O" and p not in PREFIXES[scheme]:
        raise RnnkitError(
            f"tag {tag!r} is not a {scheme} tag: {scheme} uses the prefixes "
            f"{', '.join(PREFIXES[scheme])} and O"
        )
    return p, t
