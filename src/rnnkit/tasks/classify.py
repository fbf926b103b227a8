"""Sequence classification end to end: text (sentiment, topic) or measured series, one label each.

.. code-block:: python

    from rnnkit.tasks.classify import (ClassifyDataConfig, Classifier, cross_validate,
                                       evaluate_classifier, train_classifier)
    train_classifier("sst/stsa.binary.train", "runs/sst",
                     data_config=ClassifyDataConfig(val="sst/stsa.binary.dev"))
    evaluate_classifier("runs/sst", "sst/stsa.binary.test")   # {"accuracy": ..., ...}
    Classifier.load("runs/sst").predict(["a gorgeous , witty film"])

The data formats are those of :func:`rnnkit.data.labeled.read_labeled` (class directories,
``LABEL=PATH`` pairs, CSV/TSV, UCR/UEA ``.ts``/``.tsv``), detected or named. Text becomes word or
character ids (a vocabulary built on the training split, ``<pad>`` and ``<unk>`` first); a
series is z-normalised per series and channel (as the UCR archive's baselines are). Without
``val``, a stratified ``val_fraction`` of the training data is held out, drawn from the seed.
A run directory is the same as every task's (see :mod:`rnnkit.tasks.run`): ``best/``,
``last/``, ``log.csv``; checkpoints also hold ``vocab.json``, ``labels.json`` and ``dataset.json``
(a digest of the training data, so that resume refuses other data).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.checkpoint import load_model
from rnnkit.data.labeled import (
    FORMATS,
    LabeledData,
    read_labeled,
    stratified_folds,
    stratified_split,
)
from rnnkit.data.padded import PaddedBatches
from rnnkit.data.text import LEVELS, split_text
from rnnkit.data.vocab import PAD, UNK, LabelVocab, Vocab
from rnnkit.errors import RnnkitError
from rnnkit.jsonfile import write_json_atomic
from rnnkit.models.classifier import ClassifierConfig, SequenceClassifier, confusion_scores
from rnnkit.models.recurrent import check_field_types
from rnnkit.tasks import run
from rnnkit.training import TrainConfig, TrainResult


@dataclass
class ClassifyDataConfig:
    """How labelled files become batches. Every field is also a flag of ``rnnkit classify``."""

    format: str = field(
        default="auto",
        metadata={"help": "input format (auto: detected)", "choices": ["auto", *FORMATS]},
    )
    text_column: str = field(
        default="", metadata={"help": "CSV/TSV: the text column, a name or a number from 1"}
    )
    label_column: str = field(
        default="", metadata={"help": "CSV/TSV: the label column, a name or a number from 1"}
    )
    delimiter: str = field(
        default="", metadata={"help": "CSV/TSV delimiter: a character or tab/comma/space/..."}
    )
    val: str = field(
        default="", metadata={"help": "validation data (same format); default: a held-out part"}
    )
    val_fraction: float = field(
        default=0.1, metadata={"help": "without --val: stratified fraction held out"}
    )
    level: str = field(default="word", metadata={"help": "text tokens", "choices": list(LEVELS)})
    lowercase: bool = field(default=True, metadata={"help": "fold text to lower case"})
    max_vocab: int = field(
        default=50000, metadata={"help": "cap the vocabulary, specials included (0 = no cap)"}
    )
    # Words seen once are mostly noise to a classifier (SST-2: test 0.789 with them, 0.823
    # without); they become <unk>, which the model then learns.
    min_freq: int = field(default=2, metadata={"help": "drop tokens seen fewer times"})
    max_length: int = field(
        default=400,
        metadata={"help": "text: keep the first N tokens of each example (0 = all)"},
    )
    normalize: bool = field(
        default=True, metadata={"help": "series: z-normalise each series and channel"}
    )
    class_weights: str = field(
        default="none",
        metadata={
            "help": "balanced: weight the loss by inverse class frequency (unbalanced data)",
            "choices": ["none", "balanced"],
        },
    )
    batch_size: int = field(default=32, metadata={"help": "examples per batch"})
    epoch_batches: int = field(
        default=50,
        metadata={
            "help": "an epoch is at least this many batches: small data are read several "
            "times over per epoch (1 = one pass)"
        },
    )

    def __post_init__(self) -> None:
        check_field_types(self)
        if not 0.0 <= self.val_fraction < 1.0:
            raise RnnkitError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        for name in ("batch_size", "min_freq", "epoch_batches"):
            if getattr(self, name) < 1:
                raise RnnkitError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_vocab", "max_length"):
            if getattr(self, name) < 0:
                raise RnnkitError(f"{name} must be >= 0 (0 = no limit), got {getattr(self, name)}")

    def read(self, paths: Any, min_classes: int = 2) -> LabeledData:
        """The labelled examples at ``paths`` (or ``paths`` itself when already read)."""
        if isinstance(paths, LabeledData):
            return paths
        return read_labeled(
            paths,
            format=self.format,
            text_column=self.text_column or None,
            label_column=self.label_column or None,
            delimiter=self.delimiter or None,
            min_classes=min_classes,
        )


# ---- encoding ----------------------------------------------------------------------------------


def _tokens(text: str, config: ClassifyDataConfig) -> list[str]:
    tokens = split_text(text, config.level, config.lowercase)
    return tokens[: config.max_length] if config.max_length else tokens


def build_token_vocab(data: LabeledData, config: ClassifyDataConfig) -> Vocab:
    """The vocabulary of the training texts: ``<pad>``, ``<unk>``, then tokens by count."""
    counts = Counter(t for text in data.inputs for t in _tokens(text, config))
    level = "char" if config.level == "char" else "word"
    return Vocab.build(
        counts, level, config.max_vocab or None, config.min_freq, specials=(PAD, UNK)
    )


def encode_inputs(
    data: LabeledData, config: ClassifyDataConfig, vocab: Vocab | None
) -> list[np.ndarray]:
    """Each example as ids (T_i,) (text) or a float32 (T_i, C) array (series)."""
    if data.kind == "text":
        out = []
        for text, where in zip(data.inputs, data.where, strict=True):
            ids = vocab.encode_tokens(_tokens(text, config), where)  # type: ignore[union-attr]
            if len(ids) == 0:
                raise RnnkitError(f"{where}: the example has no tokens")
            out.append(ids)
        return out
    if not config.normalize:
        return [np.asarray(x, dtype=np.float32) for x in data.inputs]
    normalized = []
    for x in data.inputs:
        x = np.asarray(x, dtype=np.float64)
        std = x.std(axis=0)
        normalized.append(
            ((x - x.mean(axis=0)) / np.where(std > 1e-8, std, 1.0)).astype(np.float32)
        )
    return normalized


def _digest(data: LabeledData) -> str:
    h = hashlib.sha256()
    for x, label in zip(data.inputs, data.labels, strict=True):
        h.update(x.encode("utf-8") if isinstance(x, str) else np.ascontiguousarray(x).tobytes())
        h.update(b"\0" + label.encode("utf-8") + b"\0")
    return h.hexdigest()


class Passes:
    """An epoch of ``passes`` passes over ``source`` (each a new order): what makes an epoch of
    50 training series (GunPoint: 2 batches a pass) as long as one of thousands of sentences."""

    stateful = False

    def __init__(self, source: PaddedBatches, passes: int) -> None:
        self.source, self.passes = source, passes

    def num_batches(self) -> int:
        return self.passes * self.source.num_batches()

    def batch(self, epoch: int, index: int) -> dict[str, torch.Tensor]:
        n = self.source.num_batches()
        return self.source.batch(epoch * self.passes + index // n, index % n)


def _balanced_weights(labels: np.ndarray, k: int) -> tuple[float, ...]:
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    return tuple(float(w) for w in len(labels) / (k * np.maximum(counts, 1)))


# ---- the task ----------------------------------------------------------------------------------


class ClassifyTask:
    """The classifier as the run lifecycle (:mod:`rnnkit.tasks.run`) sees it."""

    name = "classify"
    what = "a sequence classifier"
    model_class = SequenceClassifier
    data_config_class = ClassifyDataConfig
    # best/ by the mean probability of the true class: it rises while accuracy ties, which on
    # a small validation set (UCR ItalyPowerDemand: 7 series) picked the first epoch that got
    # them all right (test 0.917) instead of a later, surer one (0.957).
    default_train = TrainConfig(epochs=15, lr=2e-3, monitor="val_expected_accuracy", log_every=20)

    def prepare(self, data, out, model: ClassifierConfig, dc: ClassifyDataConfig, train, saved):
        full = dc.read(data)
        if dc.val:
            train_data, val_data = full, dc.read(dc.val, min_classes=1)
        elif dc.val_fraction > 0:
            tr, va = stratified_split(full.labels, dc.val_fraction, train.seed)
            train_data, val_data = full.subset(tr), full.subset(va)
        else:
            train_data, val_data = full, None
        vocab = None
        if saved is not None:
            labels = LabelVocab.from_dict(saved.extras["labels.json"])
            if "vocab.json" in saved.extras:
                vocab = Vocab.from_dict(saved.extras["vocab.json"])
            kind = saved.extras["dataset.json"]["kind"]
            if kind != full.kind:
                raise RnnkitError(
                    f"{saved.path} classifies {kind}, but {full.source} holds {full.kind}"
                )
            if saved.resume and saved.extras["dataset.json"]["digest"] != _digest(train_data):
                raise RnnkitError(
                    f"{full.source} is not the data the run in {out} was trained on (its "
                    "examples differ); resume needs the same data and seed"
                )
        else:
            labels = LabelVocab.build(train_data.labels)
            vocab = build_token_vocab(train_data, dc) if train_data.kind == "text" else None
        y_train = labels.encode(train_data.labels, train_data.where)
        x_train = encode_inputs(train_data, dc, vocab)
        model = dataclasses.replace(
            model,
            input_kind="tokens" if full.kind == "text" else "series",
            vocab_size=len(vocab) if vocab else 0,
            input_channels=0 if vocab else int(x_train[0].shape[1]),
            num_classes=len(labels),
            pad_id=vocab.pad_id if vocab else 0,
            class_weights=_balanced_weights(y_train, len(labels))
            if dc.class_weights == "balanced"
            else (),
        )
        pad = vocab.pad_id if vocab else 0.0
        train_src = PaddedBatches(
            x_train, y_train, dc.batch_size, seed=train.seed, pad_value=pad, name=full.source
        )
        train_src = Passes(train_src, -(-dc.epoch_batches // train_src.num_batches()))
        val_src = None
        if val_data is not None:
            val_src = PaddedBatches(
                encode_inputs(val_data, dc, vocab),
                labels.encode(val_data.labels, val_data.where),
                dc.batch_size,
                shuffle=False,
                pad_value=pad,
                name="the validation data",
            )
        extras = {
            "labels.json": labels.to_dict(),
            "dataset.json": {
                "kind": full.kind,
                "digest": _digest(train_data),
                "num_train": len(train_data),
                "num_val": len(val_data) if val_data is not None else 0,
            },
        }
        if vocab is not None:
            extras["vocab.json"] = vocab.to_dict()
        return run.Prepared(model, train_src, val_src, extras)


CLASSIFY_TASK = ClassifyTask()


def train_classifier(
    data: Any,
    out: str | Path,
    model: ClassifierConfig | None = None,
    data_config: ClassifyDataConfig | None = None,
    train: TrainConfig | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
) -> TrainResult:
    """Train a classifier on labelled files (or a :class:`LabeledData`) into ``out``.

    ``resume``, ``overwrite`` and ``train.init_from`` work as for every task
    (:func:`rnnkit.tasks.run.train`). ``train`` defaults to :attr:`ClassifyTask.default_train`
    (15 epochs, Adam 2e-3, best checkpoint by validation expected accuracy: the mean
    probability of the true class).
    """
    if train is None and not resume:
        train = CLASSIFY_TASK.default_train
    return run.train(
        CLASSIFY_TASK, data, out, model, data_config, train, resume=resume, overwrite=overwrite
    )


# ---- using a trained classifier ----------------------------------------------------------------


@dataclass
class Prediction:
    """One input's label, the probability of every class, and (attention pooling) the weight of
    each token."""

    label: str
    probabilities: dict[str, float]
    tokens: list[str] | None = None
    weights: list[float] | None = None


class Classifier:
    """A trained classifier for evaluation and prediction (on the CPU, or ``device``)."""

    def __init__(self, model: SequenceClassifier, saved: run.Saved) -> None:
        self.model = model.eval()
        self.saved = saved
        self.data_config: ClassifyDataConfig = saved.data
        self.labels = LabelVocab.from_dict(saved.extras["labels.json"])
        vocab = saved.extras.get("vocab.json")
        self.vocab = Vocab.from_dict(vocab) if vocab is not None else None

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Classifier:
        """From a run directory (``best/``, else ``last/``) or a checkpoint directory."""
        saved = run.load_saved(CLASSIFY_TASK, path)
        model = load_model(saved.path, map_location=device)
        return cls(model, saved)  # type: ignore[arg-type]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def _logits(self, inputs: list[np.ndarray], batch_size: int) -> tuple[np.ndarray, list]:
        """(N, K) log-probabilities and, with attention pooling, each input's weights."""
        pad = self.vocab.pad_id if self.vocab else 0.0
        source = PaddedBatches(inputs, None, batch_size, shuffle=False, bucket=True, pad_value=pad)
        out = np.zeros((len(inputs), len(self.labels)), dtype=np.float64)
        weights: list = [None] * len(inputs)
        for i in range(source.num_batches()):
            b = source.batch(0, i)
            x, lengths = b["inputs"].to(self.device), b["lengths"]
            pooled, w = self.model.encode(x, lengths)
            logp = torch.log_softmax(self.model.head(pooled).float(), -1)
            out[b["index"].numpy()] = logp.cpu().numpy()
            if w is not None:
                for row, j in enumerate(b["index"].tolist()):
                    weights[j] = w[row, : int(lengths[row])].cpu().tolist()
        return out, weights

    def evaluate(self, data: Any, batch_size: int = 64) -> dict[str, Any]:
        """Accuracy, macro-F1, per-class scores and the confusion matrix on labelled ``data``
        (paths in the training format, or a :class:`LabeledData`)."""
        examples = self.data_config.read(data, min_classes=1)
        self._check_kind(examples.kind, examples.source)
        truth = self.labels.encode(examples.labels, examples.where)
        logp, _ = self._logits(encode_inputs(examples, self.data_config, self.vocab), batch_size)
        K = len(self.labels)
        confusion = np.bincount(truth * K + logp.argmax(1), minlength=K * K).reshape(K, K)
        scores = confusion_scores(torch.from_numpy(confusion))
        per_class = {
            label: {
                "precision": scores["precision"][k],
                "recall": scores["recall"][k],
                "f1": scores["f1"][k],
                "support": scores["support"][k],
            }
            for k, label in enumerate(self.labels.itos)
        }
        return {
            "accuracy": scores["accuracy"],
            "macro_f1": scores["macro_f1"],
            "num_examples": len(examples),
            "per_class": per_class,
            "labels": list(self.labels.itos),
            "confusion_matrix": confusion.tolist(),
        }

    def predict(self, inputs: list, batch_size: int = 64) -> list[Prediction]:
        """Labels of raw texts (str) or series ((T, C) or (T,) arrays)."""
        if not inputs:
            raise RnnkitError("nothing to classify: give at least one input")
        kind = "text" if isinstance(inputs[0], str) else "series"
        self._check_kind(kind, "the input")
        where = [f"input {i + 1}" for i in range(len(inputs))]
        if kind == "text":
            for text, w in zip(inputs, where, strict=True):
                if not text.strip():
                    raise RnnkitError(f"{w} is empty: nothing to classify")
        else:
            inputs = [np.asarray(x, dtype=np.float32).reshape(len(x), -1) for x in inputs]
        examples = LabeledData(kind, list(inputs), [""] * len(inputs), where, "the input")
        encoded = encode_inputs(examples, self.data_config, self.vocab)
        logp, weights = self._logits(encoded, batch_size)
        out = []
        for i, row in enumerate(logp):
            probs = {
                label: float(np.exp(p)) for label, p in zip(self.labels.itos, row, strict=True)
            }
            tokens = _tokens(inputs[i], self.data_config) if kind == "text" else None
            out.append(Prediction(self.labels.itos[int(row.argmax())], probs, tokens, weights[i]))
        return out

    def _check_kind(self, kind: str, source: str) -> None:
        expected = "text" if self.vocab is not None else "series"
        if kind != expected:
            raise RnnkitError(f"{source} holds {kind}, but this classifier reads {expected}")


def evaluate_classifier(path: str | Path, data: Any, batch_size: int = 64) -> dict[str, Any]:
    """:meth:`Classifier.evaluate` of the run or checkpoint at ``path``."""
    return Classifier.load(path).evaluate(data, batch_size)


def cross_validate(
    data: Any,
    out: str | Path,
    model: ClassifierConfig | None = None,
    data_config: ClassifyDataConfig | None = None,
    train: TrainConfig | None = None,
    *,
    folds: int = 10,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Stratified K-fold cross-validation: fold k is the test set of a run trained on the
    others (which hold out their own ``val_fraction`` to pick ``best/``), in ``out/fold-k``.

    Returns (and writes to ``out/cv.json``) each fold's test scores and the mean ± standard
    deviation of accuracy and macro-F1: the protocol of sets without a fixed test split (MR,
    BBC Sport).
    """
    dc = data_config or ClassifyDataConfig()
    if dc.val:
        raise RnnkitError("cross-validation holds out its own folds: val does not apply")
    if folds < 2:
        raise RnnkitError(f"folds must be >= 2, got {folds}")
    train = train or CLASSIFY_TASK.default_train
    full = dc.read(data)
    out = Path(out)
    if (out / "cv.json").exists() and not overwrite:
        raise RnnkitError(f"{out} already holds a cross-validation: --overwrite replaces it")
    results = []
    for k, test_idx in enumerate(stratified_folds(full.labels, folds, train.seed)):
        rest = np.setdiff1d(np.arange(len(full)), test_idx)
        fold_dir = out / f"fold-{k + 1:02d}"
        fit = train_classifier(full.subset(rest), fold_dir, model, dc, train, overwrite=True)
        scores = Classifier.load(fold_dir).evaluate(full.subset(test_idx))
        results.append(
            {
                "fold": k + 1,
                "accuracy": scores["accuracy"],
                "macro_f1": scores["macro_f1"],
                "num_examples": scores["num_examples"],
                "steps": fit.steps,
                "seconds": round(fit.elapsed, 1),
            }
        )
    summary: dict[str, Any] = {"folds": results, "num_examples": len(full)}
    for metric in ("accuracy", "macro_f1"):
        values = np.array([r[metric] for r in results])
        summary[metric] = {"mean": float(values.mean()), "std": float(values.std(ddof=1))}
    write_json_atomic(out / "cv.json", summary)
    return summary
