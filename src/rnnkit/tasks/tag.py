"""Sequence tagging end to end: named entities, chunks or parts of speech, one tag per word.

.. code-block:: python

    from rnnkit.tasks.tag import TagDataConfig, TagPredictor, train_tagger
    train_tagger("conll2003/train.txt", "runs/ner",
                 data_config=TagDataConfig(val="conll2003/valid.txt"))
    tagger = TagPredictor.load("runs/ner")
    tagger.evaluate("conll2003/test.txt")            # {"f1": ..., "per_type": {...}, ...}
    tagger.predict(["John lives in New York"])[0].entities

The files are CoNLL column files or CoNLL-U (:func:`rnnkit.data.conll.read_tagged`). Span tags
(IOB1, BIO, BIOES) are detected; ``scheme`` converts them for training (the model learns and
predicts that scheme), and evaluation writes predictions back in each file's own scheme. Words
are looked up lower-cased with digits as 0 (by default) in a vocabulary of the training words
(``<pad>``, ``<unk>`` first, then by count); characters and a casing class keep what that
folding loses. Without ``val``, a ``val_fraction`` of the training sentences is held out, drawn
from the seed. Checkpoints hold ``vocab.json``, ``chars.json``, ``tags.json`` and
``dataset.json`` (a digest of the training data, so that resume refuses other data).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.checkpoint import load_model
from rnnkit.data.conll import FORMATS, TaggedCorpus, read_tagged, write_tagged
from rnnkit.data.tag_encoding import (
    UNK_ID,
    SentenceEncoder,
    TagBatches,
    check_tags,
    encode_tags,
    first_tag,
    line_of,
    tags_in,
    word_key,
)
from rnnkit.data.tag_schemes import (
    check_scheme,
    convert_tags,
    extract_spans,
    is_span_tag,
)
from rnnkit.data.vocab import PAD, UNK, LabelVocab, Vocab
from rnnkit.data.word_vectors import read_word_vectors
from rnnkit.errors import RnnkitError
from rnnkit.metrics.spans import scores_from_counts
from rnnkit.models.tagger import Tagger, TaggerConfig, tag_counts
from rnnkit.tasks import run
from rnnkit.training import TrainConfig, TrainResult


@dataclass
class TagDataConfig:
    """How tagged files become batches. Every field is also a flag of ``rnnkit tag``."""

    format: str = field(
        default="auto",
        metadata={
            "help": "conll (columns) or conllu (auto: detected)",
            "choices": ["auto", *FORMATS],
        },
    )
    token_column: str = field(
        default="",
        metadata={"help": "CoNLL: 0-based column of the words ('' = 0, the first); CoNLL-U: form"},
    )
    tag_column: str = field(
        default="",
        metadata={
            "help": "CoNLL: 0-based column of the tags ('' = -1, the last); CoNLL-U: upos or xpos"
        },
    )
    scheme: str = field(
        default="",
        metadata={
            "help": "train on span tags in this scheme (IOB1, BIO, BIOES), converted from the "
            "file's ('' = as the file has them)"
        },
    )
    val: str = field(
        default="", metadata={"help": "validation file (same format); default: a held-out part"}
    )
    val_fraction: float = field(
        default=0.1, metadata={"help": "without --val: fraction of the sentences held out"}
    )
    lowercase: bool = field(default=True, metadata={"help": "look words up lower-cased"})
    zero_digits: bool = field(default=True, metadata={"help": "look words up with digits as 0"})
    min_freq: int = field(default=1, metadata={"help": "words seen fewer times are <unk>"})
    max_vocab: int = field(
        default=0, metadata={"help": "cap the word vocabulary, specials included (0 = no cap)"}
    )
    max_word_length: int = field(
        default=20, metadata={"help": "characters kept per word (the first and last halves)"}
    )
    word_vectors: str = field(
        default="",
        metadata={
            "help": "pretrained vectors (GloVe/word2vec text) for the word embedding; their "
            "dimension must be --embedding-size"
        },
    )
    batch_size: int = field(default=32, metadata={"help": "sentences per batch"})

    def __post_init__(self) -> None:
        if self.scheme:
            self.scheme = check_scheme(self.scheme)
        if not 0.0 <= self.val_fraction < 1.0:
            raise RnnkitError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        for name in ("batch_size", "min_freq", "max_word_length"):
            if getattr(self, name) < 1:
                raise RnnkitError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_vocab < 0:
            raise RnnkitError(f"max_vocab must be >= 0 (0 = no cap), got {self.max_vocab}")

    def read(self, path: Any, **columns: Any) -> TaggedCorpus:
        """The tagged sentences of ``path`` (or ``path`` itself when already read), their tags
        checked to be plain tags or span tags of one known scheme."""
        if isinstance(path, TaggedCorpus):
            corpus = path
        else:
            corpus = read_tagged(
                path,
                format=self.format,
                token_column=columns.get("token_column", self.token_column) or None,
                tag_column=columns.get("tag_column", self.tag_column) or None,
            )
        check_tags(corpus, self.scheme)
        return corpus

    def encoder(self, words: Vocab, chars: Vocab) -> SentenceEncoder:
        """Sentences → the model's input ids, with these vocabularies."""
        return SentenceEncoder(words, chars, self.lowercase, self.zero_digits, self.max_word_length)


# ---- encoding ----------------------------------------------------------------------------------


def _digest(corpus: TaggedCorpus, scheme: str) -> str:
    h = hashlib.sha256(scheme.encode())
    for s in corpus.sentences:
        h.update("\0".join(s.tokens + ["\1"] + s.tags).encode("utf-8") + b"\2")
    return h.hexdigest()


def _vectors(path: str, words: Vocab, dim: int) -> tuple[np.ndarray, int]:
    """(V, dim) rows of ``words`` from a vectors file (a word, else its lower case), NaN rows
    for words it lacks; and how many it had."""
    wanted = {w for w in words.itos} | {w.lower() for w in words.itos}
    found = read_word_vectors(path, vocab=wanted, expected_dim=dim)
    index = {w: i for i, w in enumerate(found.words)}
    matrix = np.full((len(words), dim), np.nan, dtype=np.float32)
    hits = 0
    for k, w in enumerate(words.itos[2:], start=2):
        i = index.get(w, index.get(w.lower()))
        if i is not None:
            matrix[k] = found.matrix[i]
            hits += 1
    return matrix, hits


# ---- the task ----------------------------------------------------------------------------------


class TagTask:
    """The tagger as the run lifecycle (:mod:`rnnkit.tasks.run`) sees it."""

    name = "tag"
    what = "a sequence tagger"
    model_class = Tagger
    data_config_class = TagDataConfig
    default_train = TrainConfig(epochs=50, lr=2e-3, monitor="val_f1", log_every=100)

    def prepare(self, data, out, model: TaggerConfig, dc: TagDataConfig, train, saved):
        corpus = dc.read(data)
        scheme = saved.model.tag_scheme if saved else (dc.scheme or corpus.scheme or "")
        (train_part, train_tags), val = _split(corpus, scheme, dc, train.seed)
        vectors_found, vectors = 0, None
        if saved is not None:
            if saved.resume and saved.extras["dataset.json"]["digest"] != _digest(corpus, scheme):
                raise RnnkitError(
                    f"{corpus.path} is not the data the run in {out} was trained on (its "
                    "sentences differ); resume needs the same data and seed"
                )
            words, chars, tag_vocab = _saved_vocabs(saved)
            whose = f"the model at {saved.path}"
        else:
            counts = Counter(
                word_key(t, dc.lowercase, dc.zero_digits)
                for s in train_part.sentences
                for t in s.tokens
            )
            words = Vocab.build(
                counts, "word", dc.max_vocab or None, dc.min_freq, specials=(PAD, UNK)
            )
            char_counts = Counter(ch for s in train_part.sentences for t in s.tokens for ch in t)
            chars = Vocab.build(char_counts, "char", specials=(PAD, UNK))
            # A tag only the validation data has still gets an id (and is never predicted).
            tag_vocab = LabelVocab(sorted({t for seq in train_tags + val[1] for t in seq}))
            model = dataclasses.replace(
                model,
                vocab_size=len(words),
                char_vocab_size=len(chars),
                tags=tuple(tag_vocab.itos),
                tag_scheme=scheme,
                # The vocabulary is sorted by count: the words seen once come last.
                rare_from=next(
                    (k for k, w in enumerate(words.itos) if k > UNK_ID and counts[w] == 1),
                    len(words),
                ),
            )
            if dc.word_vectors:
                vectors, vectors_found = _vectors(dc.word_vectors, words, model.embedding_size)
            whose = "the training data"
        # Words are looked up the way the vocabulary was built.
        encoder = (saved.data if saved else dc).encoder(words, chars)
        sources = []
        for part, tags, shuffle in ((train_part, train_tags, True), (*val, False)):
            if part is None:
                sources.append(None)
                continue
            sources.append(
                TagBatches(
                    [encoder.encode(s.tokens) for s in part.sentences],
                    encode_tags(part, tags, tag_vocab, whose),
                    dc.batch_size,
                    seed=train.seed,
                    shuffle=shuffle,
                    name=part.path,
                )
            )
        extras = {
            "vocab.json": words.to_dict(),
            "chars.json": chars.to_dict(),
            "tags.json": tag_vocab.to_dict(),
            "dataset.json": {
                "digest": _digest(corpus, scheme),
                "format": corpus.format,
                "file_scheme": corpus.scheme,
                "num_train": len(train_part),
                "num_val": len(val[0]) if val[0] is not None else 0,
                "vectors_found": vectors_found,
            },
        }
        initialize = None
        if vectors is not None:
            initialize = lambda m: m.load_embeddings(vectors)  # noqa: E731
        return run.Prepared(model, sources[0], sources[1], extras, initialize)


def _split(corpus: TaggedCorpus, scheme: str, dc: TagDataConfig, seed: int) -> tuple:
    """((training sentences, their tags), (validation sentences or None, their tags)), the
    tags in ``scheme``: ``dc.val``, else a ``val_fraction`` drawn from ``seed``, else none."""
    tags = tags_in(corpus, scheme)
    if dc.val:
        val = dc.read(dc.val)
        return (corpus, tags), (val, tags_in(val, scheme))
    if dc.val_fraction == 0:
        return (corpus, tags), (None, [])
    if len(corpus) < 2:
        raise RnnkitError(
            f"{corpus.path} holds 1 sentence: nothing to hold out for validation (give --val "
            "FILE, or --val-fraction 0)"
        )
    order = np.random.default_rng(seed).permutation(len(corpus))
    n_val = max(1, round(dc.val_fraction * len(corpus)))
    rows = sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())
    return tuple((_subset(corpus, r), [tags[i] for i in r]) for r in rows)


def _saved_vocabs(saved: run.Saved) -> tuple[Vocab, Vocab, LabelVocab]:
    extras, at = saved.extras, saved.path
    return (
        Vocab.from_dict(extras["vocab.json"], f"{at}/vocab.json"),
        Vocab.from_dict(extras["chars.json"], f"{at}/chars.json"),
        LabelVocab.from_dict(extras["tags.json"], f"{at}/tags.json"),
    )


def _subset(corpus: TaggedCorpus, rows: list[int]) -> TaggedCorpus:
    return dataclasses.replace(corpus, sentences=[corpus.sentences[i] for i in rows])


TAG_TASK = TagTask()


def train_tagger(
    data: Any,
    out: str | Path,
    model: TaggerConfig | None = None,
    data_config: TagDataConfig | None = None,
    train: TrainConfig | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
) -> TrainResult:
    """Train a tagger on a CoNLL / CoNLL-U file (or a :class:`TaggedCorpus`) into ``out``.

    ``resume``, ``overwrite`` and ``train.init_from`` work as for every task
    (:func:`rnnkit.tasks.run.train`). ``train`` defaults to :attr:`TagTask.default_train`
    (Adam, best checkpoint by validation span F1).
    """
    if train is None and not resume:
        train = TAG_TASK.default_train
    return run.train(
        TAG_TASK, data, out, model, data_config, train, resume=resume, overwrite=overwrite
    )


# ---- using a trained tagger --------------------------------------------------------------------


@dataclass
class Entity:
    """A span of words: its type, text, character offsets [start, end) in the text and word
    offsets [first, last)."""

    type: str
    text: str
    start: int
    end: int
    first: int
    last: int


@dataclass
class TaggedText:
    """One input's words, their character offsets, their tags and the entities they form."""

    text: str
    tokens: list[str]
    offsets: list[tuple[int, int]]
    tags: list[str]
    entities: list[Entity]


@dataclass
class Evaluation:
    """Scores (the keys of ``eval --json``), the predictions in the file's own scheme, and the
    gold tags the model never saw: tag → (words, first line)."""

    scores: dict[str, Any]
    predictions: list[list[str]]
    unseen: dict[str, tuple[int, int]]


class TagPredictor:
    """A trained tagger for evaluation and prediction (on the CPU, or ``device``)."""

    def __init__(self, model: Tagger, saved: run.Saved) -> None:
        self.model = model.eval()
        self.saved = saved
        self.data_config: TagDataConfig = saved.data
        words, chars, _ = _saved_vocabs(saved)
        self.encoder = self.data_config.encoder(words, chars)
        self.tags: tuple[str, ...] = model.config.tags
        self.scheme: str = model.config.tag_scheme

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> TagPredictor:
        """From a run directory (``best/``, else ``last/``) or a checkpoint directory."""
        saved = run.load_saved(TAG_TASK, path)
        return cls(load_model(saved.path, map_location=device), saved)  # type: ignore[arg-type]

    @torch.no_grad()
    def tag(self, sentences: list[list[str]], batch_size: int = 64) -> list[list[str]]:
        """The tags (in the model's scheme) of tokenised sentences."""
        if batch_size < 1:
            raise RnnkitError(f"batch_size must be >= 1, got {batch_size}")
        encoded = [self.encoder.encode(tokens) for tokens in sentences]
        source = TagBatches(encoded, None, batch_size, shuffle=False, name="the input")
        device = next(self.model.parameters()).device
        out: list[list[str]] = [[] for _ in sentences]
        for k in range(source.num_batches()):
            b = source.batch(0, k)
            batch = {name: t.to(device) for name, t in b.items()}
            ids = self.model.tag(batch).cpu().tolist()
            for row, i in zip(ids, b["index"].tolist(), strict=True):
                out[i] = [self.tags[j] for j in row[: len(sentences[i])]]
        return out

    def evaluate_corpus(self, corpus: TaggedCorpus, batch_size: int = 64) -> Evaluation:
        """Tag a read corpus and score it against its tags (see :meth:`evaluate`)."""
        if self.scheme:
            other = first_tag(corpus, lambda t: not is_span_tag(t))
            if other:
                raise RnnkitError(
                    f"{corpus.path}:{other[1]}: tag {other[0]!r} is not a span tag, but this "
                    f"model tags spans ({self.scheme}): evaluate it on entity or chunk tags"
                )
        predicted = self.tag([s.tokens for s in corpus.sentences], batch_size)
        file_scheme = corpus.scheme if self.scheme else None
        if file_scheme and file_scheme != self.scheme:
            predicted = [convert_tags(p, self.scheme, file_scheme) for p in predicted]
        known = set(self.tags)
        unseen: dict[str, tuple[int, int]] = {}
        for s, model_tags in zip(corpus.sentences, tags_in(corpus, self.scheme), strict=True):
            for i, (tag, as_model) in enumerate(zip(s.tags, model_tags, strict=True)):
                if as_model not in known:
                    n, line = unseen.get(tag, (0, line_of(corpus, s, i)))
                    unseen[tag] = (n + 1, line)
        gold = corpus.tags
        counts = tag_counts(gold, predicted, bool(self.scheme))
        correct = sum(
            a == b for g, p in zip(gold, predicted, strict=True) for a, b in zip(g, p, strict=True)
        )
        full = scores_from_counts(counts, correct, corpus.num_tokens, len(corpus))
        keys = ("f1", "precision", "recall", "accuracy", "per_type", "num_sentences")
        return Evaluation({k: full[k] for k in keys}, predicted, unseen)

    def evaluate(
        self, data: Any, batch_size: int = 64, output: str | Path | None = None, **columns: Any
    ) -> dict[str, Any]:
        """Span F1, precision and recall (overall, micro; and per type), token accuracy and the
        number of sentences on a tagged file, conlleval's way; fractions in [0, 1]. Plain tags
        (parts of speech) count each word as a span of its tag. A gold tag the model never saw
        counts as wrong. ``output`` writes the file's lines with the predicted tag appended, in
        the file's scheme. ``columns``: token_column / tag_column for this file."""
        corpus = self.data_config.read(data, **columns)
        result = self.evaluate_corpus(corpus, batch_size)
        if output is not None:
            write_tagged(corpus, result.predictions, output)
        return result.scores

    def predict(
        self, texts: list[str] | list[list[str]], scheme: str = "", batch_size: int = 64
    ) -> list[TaggedText]:
        """Tag raw texts (split on whitespace) or tokenised sentences (lists of tokens; their
        offsets are those of the tokens joined by single spaces). Tags come in the model's
        scheme, or in ``scheme``."""
        if not texts:
            raise RnnkitError("nothing to tag: give at least one text")
        inputs = []
        for n, item in enumerate(texts, 1):
            if isinstance(item, str):
                found = [(m.group(), m.span()) for m in re.finditer(r"\S+", item)]
                text = item
            else:
                tokens = [str(t) for t in item]
                if any(not t or t != t.strip() or "\n" in t for t in tokens):
                    raise RnnkitError(f"input {n}: a token is empty or has surrounding spaces")
                text, starts = " ".join(tokens), np.cumsum([0] + [len(t) + 1 for t in tokens])
                found = [
                    (t, (int(a), int(a) + len(t))) for t, a in zip(tokens, starts, strict=False)
                ]
            if not found:
                raise RnnkitError(f"input {n} is empty: nothing to tag")
            inputs.append((text, [t for t, _ in found], [o for _, o in found]))
        target = check_scheme(scheme) if scheme else self.scheme
        if target and not self.scheme:
            raise RnnkitError(
                f"this model tags plain tags ({', '.join(self.tags[:5])} ...): a "
                "scheme does not apply"
            )
        out = []
        for (text, tokens, offsets), tags in zip(
            inputs, self.tag([tokens for _, tokens, _ in inputs], batch_size), strict=True
        ):
            if target != self.scheme:
                tags = convert_tags(tags, self.scheme, target)
            entities = []
            if self.scheme:
                for typ, a, b in extract_spans(tags):
                    start, end = offsets[a][0], offsets[b - 1][1]
                    entities.append(Entity(typ, text[start:end], start, end, a, b))
            out.append(TaggedText(text, tokens, offsets, tags, entities))
        return out


def evaluate_tagger(path: str | Path, data: Any, batch_size: int = 64) -> dict[str, Any]:
    """:meth:`TagPredictor.evaluate` of the run or checkpoint at ``path``."""
    return TagPredictor.load(path).evaluate(data, batch_size)
