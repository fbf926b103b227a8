"""Tagged sentences as a tagger's inputs: word, casing and character ids, tag ids, batches.

A sentence of T words becomes one (T, 2 + W) int64 array: the word id (the word looked up by
:func:`word_key`: lower-cased and with digits as 0 when asked), its casing class
(:data:`CASINGS`, what that folding loses) and the ids of its first W characters (0-padded; a
longer word keeps its first and last halves, where prefixes and suffixes are). The word and
char vocabularies put ``<pad>`` (id 0) and ``<unk>`` (id 1) first. :class:`TagBatches` pads and
buckets those arrays (:class:`~rnnkit.data.padded.PaddedBatches`) and splits the columns again.

The checks here name file and line: span tags of no known scheme, a tag a model lacks, a scheme
asked of plain tags.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import torch

from rnnkit.data.conll import TaggedCorpus, TaggedSentence
from rnnkit.data.padded import PaddedBatches
from rnnkit.data.tag_schemes import convert_tags, is_span_tag
from rnnkit.data.vocab import LabelVocab, Vocab
from rnnkit.errors import RnnkitError

PAD_ID, UNK_ID = 0, 1  # of the word and char vocabularies (built with these specials first)
# Reimers & Gurevych (2017)'s casing classes; 0 pads.
CASINGS = (
    "<pad>",
    "numeric",
    "mostly_numeric",
    "lower",
    "upper",
    "initial_upper",
    "has_digit",
    "other",
)
_DIGIT = re.compile(r"\d")


def casing_of(token: str) -> int:
    """The :data:`CASINGS` id of a non-empty token: 'Paris' → initial_upper, '1999' → numeric."""
    digits = sum(ch.isdigit() for ch in token)
    if token.isdigit():
        return 1
    if digits / len(token) > 0.5:
        return 2
    if token.islower():
        return 3
    if token.isupper():
        return 4
    if token[0].isupper():
        return 5
    return 6 if digits else 7


def word_key(token: str, lowercase: bool, zero_digits: bool) -> str:
    """How a word is looked up in the word vocabulary."""
    if lowercase:
        token = token.lower()
    return _DIGIT.sub("0", token) if zero_digits else token


def _clip(token: str, width: int) -> str:
    return token if len(token) <= width else token[: width - width // 2] + token[-(width // 2) :]


class SentenceEncoder:
    """Token lists → (T, 2 + W) int64 arrays: word id, casing id, W char ids."""

    def __init__(
        self, words: Vocab, chars: Vocab, lowercase: bool, zero_digits: bool, max_word_length: int
    ) -> None:
        if (words.pad_id, words.unk_id, chars.pad_id, chars.unk_id) != (0, 1, 0, 1):
            raise RnnkitError("tagger vocabularies must start with <pad>, <unk>")
        self.words, self.chars = words, chars
        self.lowercase, self.zero_digits, self.width = lowercase, zero_digits, max_word_length
        self._char_rows: dict[str, np.ndarray] = {}  # a corpus repeats its words: encode once

    def _char_row(self, token: str) -> np.ndarray:
        row = self._char_rows.get(token)
        if row is None:
            ids = self.chars.encode_tokens(list(_clip(token, self.width)))
            row = np.zeros(self.width, dtype=np.int64)
            row[: len(ids)] = ids
            self._char_rows[token] = row
        return row

    def encode(self, tokens: list[str]) -> np.ndarray:
        """(T, 2 + W) ids of one sentence's tokens."""
        out = np.zeros((len(tokens), 2 + self.width), dtype=np.int64)
        keys = [word_key(t, self.lowercase, self.zero_digits) for t in tokens]
        out[:, 0] = self.words.encode_tokens(keys)
        out[:, 1] = [casing_of(t) for t in tokens]
        for i, t in enumerate(tokens):
            out[i, 2:] = self._char_row(t)
        return out


class TagBatches:
    """Padded, length-bucketed sentence batches with the encoded columns split into ``words``
    (B, T), ``casing`` (B, T) and ``chars`` (B, T, W); also ``lengths`` (B,), ``index`` (B,)
    and, with tags, ``targets`` (B, T), -1 on padding. Arguments as :class:`PaddedBatches`."""

    stateful = False

    def __init__(self, encoded: list[np.ndarray], targets: list | None, batch_size: int, **kw):
        self.padded = PaddedBatches(encoded, targets, batch_size, pad_value=PAD_ID, **kw)

    def num_batches(self) -> int:
        return self.padded.num_batches()

    def batch(self, epoch: int, index: int) -> dict[str, torch.Tensor]:
        b = self.padded.batch(epoch, index)
        x = b.pop("inputs")
        return {"words": x[..., 0], "casing": x[..., 1], "chars": x[..., 2:], **b}


# ---- tags --------------------------------------------------------------------------------------


def line_of(corpus: TaggedCorpus, s: TaggedSentence, i: int) -> int:
    """The file line of word ``i`` of ``s`` (CoNLL-U: of its sentence's first word)."""
    return s.line + i if corpus.format == "conll" else s.line


def first_tag(corpus: TaggedCorpus, test: Callable[[str], bool]) -> tuple[str, int] | None:
    """The first tag that passes ``test``, and its line; None when none does."""
    for s in corpus.sentences:
        for i, tag in enumerate(s.tags):
            if test(tag):
                return tag, line_of(corpus, s, i)
    return None


def check_tags(corpus: TaggedCorpus, scheme: str = "") -> None:
    """Span tags of no known scheme (BILOU's ``U-PER``, ``L-PER`` beside ``B-PER``), or a
    ``scheme`` asked of tags that are not span tags, are errors naming file and line."""
    if corpus.scheme is not None:
        return
    spans = first_tag(corpus, lambda t: t != "O" and is_span_tag(t))
    other = first_tag(corpus, lambda t: not is_span_tag(t))
    if spans and other and re.fullmatch(r"[A-Z]-.+", other[0]):
        raise RnnkitError(
            f"{corpus.path}:{other[1]}: tag {other[0]!r} is in no known tag scheme: span tags "
            f"({spans[0]!r} at line {spans[1]}) must be IOB1, BIO or BIOES (O, B-, I-, E-, S-)"
        )
    if scheme and other:
        raise RnnkitError(
            f"{corpus.path}:{other[1]}: tag {other[0]!r} is not a span tag, so it has no "
            f"{scheme} scheme to convert to: leave out --scheme for plain tags"
        )


def tags_in(corpus: TaggedCorpus, scheme: str) -> list[list[str]]:
    """The corpus's tags in ``scheme`` (converted when both are span schemes and differ)."""
    if not scheme or corpus.scheme is None or corpus.scheme == scheme:
        return corpus.tags
    out = []
    for s in corpus.sentences:
        try:
            out.append(convert_tags(s.tags, corpus.scheme, scheme))
        except RnnkitError as e:
            raise RnnkitError(f"{corpus.path}:{s.line}: {e}") from None
    return out


def encode_tags(
    corpus: TaggedCorpus, tags: list[list[str]], vocab: LabelVocab, whose: str
) -> list[np.ndarray]:
    """Tag id arrays of the corpus's sentences (``tags``: theirs, maybe converted); a tag
    ``vocab`` lacks is an error naming file, line and ``whose`` tags the vocab holds."""
    out = []
    for s, seq in zip(corpus.sentences, tags, strict=True):
        ids = [vocab.stoi.get(t, -1) for t in seq]
        if -1 in ids:
            i = ids.index(-1)
            raise RnnkitError(
                f"{corpus.path}:{line_of(corpus, s, i)}: tag {seq[i]!r} is not one of the tags "
                f"of {whose} ({', '.join(vocab.itos[:12])}{' ...' if len(vocab) > 12 else ''})"
            )
        out.append(np.array(ids, dtype=np.int64))
    return out
