"""Translation (encoder–decoder) end to end: sentence pairs in, a trained :class:`Seq2Seq` out.

.. code-block:: python

    from rnnkit.tasks.seq2seq import Seq2SeqDataConfig, train_seq2seq
    from rnnkit.tasks.translator import Translator
    train_seq2seq(("multi30k/train.de", "multi30k/train.en"), "runs/m30k",
                  data_config=Seq2SeqDataConfig(val_source="multi30k/val.de",
                                                val_target="multi30k/val.en", source_lang="de"))
    Translator.load("runs/m30k").translate(["Ein Hund läuft."], method="beam", beam_width=5)

Data is two parallel files or one TSV file (:mod:`rnnkit.data.parallel`); without validation
files a ``val_fraction`` of the pairs is held out (drawn from the seed). Sentences are split by
the ``tokenizer`` (:mod:`rnnkit.data.tokenizers`: Moses words, characters, or SentencePiece
subwords trained here on the training text), training pairs longer than the limits are
dropped with a report saying how many and why, and each side gets a vocabulary with
``<pad> <unk> <bos> <eos>`` first (one joint vocabulary with ``share_embeddings``).

Validation measures the loss, token accuracy and BLEU: each validation batch is translated
greedily and scored by sacreBLEU against the raw reference text (detokenised, cased), summed
as n-gram counts over the set, so ``val_bleu`` is corpus BLEU and is the default ``monitor``.
The run directory is every task's (:mod:`rnnkit.tasks.run`); checkpoints also hold
``tokenizers.json``, ``vocab.json`` and ``dataset.json`` (a digest of the training pairs, so
that resume refuses other data, and the length-filter report).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.data.padded import PaddedBatches
from rnnkit.data.parallel import LengthFilter, ParallelData, read_parallel, split_held_out
from rnnkit.data.tokenizers import KINDS, TextTokenizer
from rnnkit.data.vocab import BOS, EOS, PAD, UNK, Vocab
from rnnkit.errors import RnnkitError
from rnnkit.metrics.translation import require_sacrebleu
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.tasks import run
from rnnkit.training import TrainConfig, TrainResult

SPECIALS = (PAD, UNK, BOS, EOS)
logger = logging.getLogger("rnnkit")


@dataclass
class Seq2SeqDataConfig:
    """How sentence pairs become batches. Every field is also a flag of ``rnnkit seq2seq``."""

    source_column: int = field(default=1, metadata={"help": "TSV: the source column, from 1"})
    target_column: int = field(default=2, metadata={"help": "TSV: the target column, from 1"})
    delimiter: str = field(default="tab", metadata={"help": "TSV: the column separator"})
    val_source: str = field(
        default="", metadata={"help": "validation source file, or a TSV of validation pairs"}
    )
    val_target: str = field(default="", metadata={"help": "validation target file"})
    val_fraction: float = field(
        default=0.05, metadata={"help": "without --val-source: fraction of pairs held out"}
    )
    tokenizer: str = field(
        default="word", metadata={"help": "how sentences are split", "choices": list(KINDS)}
    )
    source_lang: str = field(default="en", metadata={"help": "source language (Moses rules)"})
    target_lang: str = field(default="en", metadata={"help": "target language (Moses rules)"})
    lowercase: bool = field(default=False, metadata={"help": "fold both sides to lower case"})
    subword_vocab_size: int = field(
        default=8000, metadata={"help": "subword: pieces per SentencePiece model"}
    )
    max_vocab: int = field(
        default=30000, metadata={"help": "cap each vocabulary, specials included (0 = no cap)"}
    )
    min_freq: int = field(default=1, metadata={"help": "drop tokens seen fewer times"})
    max_source_length: int = field(
        default=100, metadata={"help": "drop training pairs with longer sources (0 = keep)"}
    )
    max_target_length: int = field(
        default=100, metadata={"help": "drop training pairs with longer targets (0 = keep)"}
    )
    max_length_ratio: float = field(
        default=0.0,
        metadata={
            "help": "drop training pairs whose side lengths differ more than this factor (0 = keep)"
        },
    )
    batch_size: int = field(default=64, metadata={"help": "sentence pairs per batch"})

    def __post_init__(self) -> None:
        if not 0.0 <= self.val_fraction < 1.0:
            raise RnnkitError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.tokenizer not in KINDS:
            raise RnnkitError(f"tokenizer must be one of {list(KINDS)}, got {self.tokenizer!r}")
        for name in ("batch_size", "min_freq", "subword_vocab_size"):
            if getattr(self, name) < 1:
                raise RnnkitError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_vocab", "max_source_length", "max_target_length", "max_length_ratio"):
            if getattr(self, name) < 0:
                raise RnnkitError(f"{name} must be >= 0 (0 = no limit), got {getattr(self, name)}")
        if self.val_target and not self.val_source:
            raise RnnkitError("val_target needs val_source (the validation source file)")

    def read(self, data: Any) -> ParallelData:
        """Pairs from ``data``: a :class:`ParallelData`, a (source, target) pair of files, a
        dict with 'source' and 'target', or one TSV file."""
        if isinstance(data, ParallelData):
            return data
        if isinstance(data, dict):
            data = (data.get("source"), data.get("target"))
        if isinstance(data, tuple | list):
            if len(data) != 2 or data[0] is None:
                raise RnnkitError("parallel data is a (source file, target file) pair")
            source, target = data[0], data[1] or None
        else:
            source, target = data, None
        delimiter = {"tab": "\t", "comma": ",", "space": " "}.get(self.delimiter, self.delimiter)
        return read_parallel(
            source,
            target,
            source_column=self.source_column,
            target_column=self.target_column,
            delimiter=delimiter,
        )

    def read_validation(self) -> ParallelData | None:
        if not self.val_source:
            return None
        return self.read((self.val_source, self.val_target or None))


class TargetText:
    """Token ids of the target side → text: specials left out, tokens detokenised."""

    def __init__(self, vocab: Vocab, tokenizer: TextTokenizer) -> None:
        self.vocab, self.tokenizer = vocab, tokenizer
        self.skip = {vocab.pad_id, vocab.bos_id, vocab.eos_id}

    def tokens(self, ids: list[int]) -> list[str]:
        return [self.vocab.itos[i] for i in ids if i not in self.skip]

    def __call__(self, ids: list[int]) -> str:
        return self.tokenizer.detokenize(self.tokens(ids))


class TranslationBatches:
    """:class:`PaddedBatches` of (source ids, target ids + ``<eos>``) pairs, plus what the model
    reads besides: the global ``step`` (for scheduled sampling; a function of (epoch, index),
    so resume stays exact) and, for validation, the raw references and the detokeniser."""

    stateful = False

    def __init__(
        self,
        batches: PaddedBatches,
        references: list[str] | None = None,
        detokenize: TargetText | None = None,
    ) -> None:
        self.batches, self.references, self.detokenize = batches, references, detokenize

    def num_batches(self) -> int:
        return self.batches.num_batches()

    def batch(self, epoch: int, index: int) -> dict[str, Any]:
        b: dict[str, Any] = self.batches.batch(epoch, index)
        b["step"] = torch.tensor(epoch * self.num_batches() + index)
        if self.references is not None:
            b["references"] = [self.references[i] for i in b["index"].tolist()]
            b["detokenize"] = self.detokenize
        return b


# ---- tokenizers and vocabularies ---------------------------------------------------------------


@dataclass
class Sides:
    """Both sides' tokenizers and vocabularies (one shared vocabulary with share_embeddings)."""

    source_tokenizer: TextTokenizer
    target_tokenizer: TextTokenizer
    source_vocab: Vocab
    target_vocab: Vocab
    shared: bool = False

    def to_extras(self) -> dict[str, Any]:
        return {
            "tokenizers.json": {
                "source": self.source_tokenizer.to_dict(),
                "target": self.target_tokenizer.to_dict(),
            },
            "vocab.json": {
                "shared": self.shared,
                "source": self.source_vocab.to_dict(),
                "target": self.target_vocab.to_dict(),
            },
        }

    @classmethod
    def from_extras(cls, extras: dict[str, Any], where: str) -> Sides:
        try:
            tok, voc = extras["tokenizers.json"], extras["vocab.json"]
            return cls(
                TextTokenizer.from_dict(tok["source"], f"{where}/tokenizers.json"),
                TextTokenizer.from_dict(tok["target"], f"{where}/tokenizers.json"),
                Vocab.from_dict(voc["source"], f"{where}/vocab.json"),
                Vocab.from_dict(voc["target"], f"{where}/vocab.json"),
                bool(voc.get("shared")),
            )
        except (KeyError, TypeError):
            raise RnnkitError(
                f"{where} lacks the tokenizers.json / vocab.json of a translation model"
            ) from None

    def target_text(self) -> TargetText:
        return TargetText(self.target_vocab, self.target_tokenizer)


def build_tokenizers(
    data: ParallelData, dc: Seq2SeqDataConfig, shared: bool
) -> tuple[TextTokenizer, TextTokenizer]:
    """Source and target tokenizers; subword models are trained on ``data`` (one joint model
    for a shared vocabulary)."""

    def make(texts: list[str], lang: str) -> TextTokenizer:
        return TextTokenizer.train(dc.tokenizer, texts, lang, dc.lowercase, dc.subword_vocab_size)

    if shared and dc.tokenizer == "subword":
        joint = make(data.sources + data.targets, dc.source_lang)
        return joint, TextTokenizer("subword", dc.target_lang, dc.lowercase, joint.spm_model)
    return make(data.sources, dc.source_lang), make(data.targets, dc.target_lang)


def build_vocabs(
    src: list[list[str]], tgt: list[list[str]], level: str, dc: Seq2SeqDataConfig, shared: bool
) -> tuple[Vocab, Vocab]:
    """The vocabularies of the tokenised training pairs, ``<pad> <unk> <bos> <eos>`` first."""

    def build(counts: Counter) -> Vocab:
        return Vocab.build(counts, level, dc.max_vocab or None, dc.min_freq, specials=SPECIALS)

    src_counts = Counter(t for s in src for t in s)
    tgt_counts = Counter(t for s in tgt for t in s)
    if shared:
        joint = build(src_counts + tgt_counts)
        return joint, joint
    return build(src_counts), build(tgt_counts)


def _digest(data: ParallelData) -> str:
    h = hashlib.sha256()
    for s, t in zip(data.sources, data.targets, strict=True):
        h.update(s.encode("utf-8") + b"\t" + t.encode("utf-8") + b"\n")
    return h.hexdigest()


def _encode(tokens: list[list[str]], vocab: Vocab, where: list[str], eos: bool) -> list:
    extra = [vocab.eos_id] if eos else []
    return [
        np.concatenate([vocab.encode_tokens(t, w), np.asarray(extra, np.int64)])
        for t, w in zip(tokens, where, strict=True)
    ]


def _tokenized(
    data: ParallelData, source: TextTokenizer, target: TextTokenizer
) -> tuple[list, list, ParallelData]:
    """Both sides' tokens; a pair whose tokenisation leaves a side empty is skipped."""
    src = [source.tokenize(s) for s in data.sources]
    tgt = [target.tokenize(t) for t in data.targets]
    keep = [i for i in range(len(src)) if src[i] and tgt[i]]
    if len(keep) < len(src):
        logger.warning("%s: skipped %d pairs with no tokens", data.name, len(src) - len(keep))
        data = data.subset(keep)
        src, tgt = [src[i] for i in keep], [tgt[i] for i in keep]
    return src, tgt, data


# ---- the task ----------------------------------------------------------------------------------


class Seq2SeqTask:
    """The encoder–decoder as the run lifecycle (:mod:`rnnkit.tasks.run`) sees it."""

    name = "seq2seq"
    what = "a translation model"
    model_class = Seq2Seq
    data_config_class = Seq2SeqDataConfig
    # Validation decodes greedily for BLEU: a few seconds per thousand sentences at these sizes,
    # small next to an epoch, so BLEU picks best/ by default.
    default_train = TrainConfig(epochs=10, lr=1e-3, grad_clip=1.0, monitor="val_bleu")

    def prepare(self, data, out, model: Seq2SeqConfig, dc: Seq2SeqDataConfig, train, saved):
        require_sacrebleu()
        full = dc.read(data)
        val_data = dc.read_validation()
        if val_data is not None:
            train_data = full
        elif dc.val_fraction > 0:
            tr, va = split_held_out(len(full), dc.val_fraction, train.seed)
            train_data, val_data = full.subset(tr), full.subset(va)
        else:
            train_data = full
        for note in full.notes + (val_data.notes if val_data is not None else []):
            logger.warning(note)
        sides = None
        if saved is not None:
            sides = Sides.from_extras(saved.extras, str(saved.path))
            src_tok, tgt_tok = sides.source_tokenizer, sides.target_tokenizer
            if model.share_embeddings and not sides.shared:
                raise RnnkitError(f"{saved.path} has two vocabularies: share_embeddings needs one")
            if saved.resume and saved.extras["dataset.json"]["digest"] != _digest(train_data):
                raise RnnkitError(
                    f"{full.name} is not the data the run in {out} was trained on (its pairs "
                    "differ); resume needs the same data and seed"
                )
        else:
            src_tok, tgt_tok = build_tokenizers(train_data, dc, model.share_embeddings)
        src, tgt, kept_data = _tokenized(train_data, src_tok, tgt_tok)
        limits = LengthFilter(dc.max_source_length, dc.max_target_length, dc.max_length_ratio)
        kept, report = limits.apply([len(s) for s in src], [len(t) for t in tgt], full.name)
        if report["message"]:
            logger.warning(report["message"])
        src, tgt = [src[i] for i in kept], [tgt[i] for i in kept]
        where = [kept_data.where[i] for i in kept]
        if sides is None:
            shared = model.share_embeddings
            vocabs = build_vocabs(src, tgt, src_tok.vocab_level, dc, shared)
            sides = Sides(src_tok, tgt_tok, *vocabs, shared)
        sv, tv = sides.source_vocab, sides.target_vocab
        model = dataclasses.replace(
            model,
            source_vocab_size=len(sv),
            target_vocab_size=len(tv),
            pad_id=tv.pad_id,
            bos_id=tv.bos_id,
            eos_id=tv.eos_id,
        )
        train_src = TranslationBatches(
            PaddedBatches(
                _encode(src, sv, where, eos=False),
                _encode(tgt, tv, where, eos=True),
                dc.batch_size,
                seed=train.seed,
                pad_value=sv.pad_id,
                name=full.name,
            )
        )
        val_src = None
        if val_data is not None:
            vs, vt, val_data = _tokenized(val_data, src_tok, tgt_tok)
            val_src = TranslationBatches(
                PaddedBatches(
                    _encode(vs, sv, val_data.where, eos=False),
                    _encode(vt, tv, val_data.where, eos=True),
                    dc.batch_size,
                    shuffle=False,
                    pad_value=sv.pad_id,
                    name="the validation data",
                ),
                references=list(val_data.targets),
                detokenize=sides.target_text(),
            )
        extras = {
            **sides.to_extras(),
            "dataset.json": {
                "digest": _digest(train_data),
                "num_train": len(src),
                "num_val": len(val_data) if val_data is not None else 0,
                "skipped_empty": full.skipped,
                "length_filter": report,
            },
        }
        return run.Prepared(model, train_src, val_src, extras)


SEQ2SEQ_TASK = Seq2SeqTask()


def train_seq2seq(
    data: Any,
    out: str | Path,
    model: Seq2SeqConfig | None = None,
    data_config: Seq2SeqDataConfig | None = None,
    train: TrainConfig | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
) -> TrainResult:
    """Train an encoder–decoder on sentence pairs (see :meth:`Seq2SeqDataConfig.read` for the
    forms of ``data``) into ``out``. ``train`` defaults to :attr:`Seq2SeqTask.default_train`
    (10 epochs, Adam 1e-3, gradient norm clipped at 1, best checkpoint by validation BLEU);
    ``resume``, ``overwrite`` and ``train.init_from`` work as for every task."""
    if train is None and not resume:
        train = SEQ2SEQ_TASK.default_train
    return run.train(
        SEQ2SEQ_TASK, data, out, model, data_config, train, resume=resume, overwrite=overwrite
    )
