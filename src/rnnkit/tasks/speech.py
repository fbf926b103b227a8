"""Speech to text end to end: train a CTC recogniser on a manifest, evaluate it, transcribe.

.. code-block:: python

    from rnnkit.tasks.speech import SpeechDataConfig, Transcriber, train_speech
    train_speech("corpus/train.tsv", "runs/asr", data_config=SpeechDataConfig(val="corpus/dev.tsv"))
    asr = Transcriber.load("runs/asr")
    asr.transcribe(["hello.wav"])                            # greedy CTC
    asr.transcribe(["hello.wav"], beam=8, lm="runs/charlm")  # prefix beam search + a char LM
    asr.evaluate("corpus/test.tsv")                          # {"cer": ..., "wer": ..., ...}

Data: manifests of (audio, transcript) rows (:func:`rnnkit.data.audio.read_manifest`);
transcripts are stripped, their runs of whitespace made one space, and (``lowercase``) folded
to lower case. The characters of the training transcripts are the model's alphabet. Without
``val``, a ``val_fraction`` of the training *sentences* is held out (every utterance of a
sentence goes to the same side, so validation never hears a sentence trained on).

Features (:mod:`rnnkit.data.features`) are computed once into ``<run>/features/`` and memory
mapped (:mod:`rnnkit.data.feature_cache`). A training or validation utterance whose transcript
needs more frames than it has under CTC is skipped and counted (a warning, and
``dataset.json``); a validation character outside the alphabet is dropped from the target and
counted. At evaluation such characters stay in the reference (the model cannot emit them: they
count as errors) and are reported as ``unknown_chars``; utterances too short for their
transcript are scored too and reported as ``too_long``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.checkpoint import load_model
from rnnkit.ctc_decoding import greedy_decode, prefix_beam_search
from rnnkit.data.audio import Utterance, read_manifest
from rnnkit.data.feature_cache import cached_features, compute_features
from rnnkit.data.padded import PaddedBatches
from rnnkit.errors import RnnkitError
from rnnkit.metrics.edit_distance import error_counts, error_rates
from rnnkit.models.speech import BLANK, SpeechConfig, SpeechRecognizer, ctc_frames_needed
from rnnkit.tasks import run
from rnnkit.training import TrainConfig, TrainResult

logger = logging.getLogger(__name__)

# Shallow fusion's defaults: LM weight and bonus per character (see Transcriber.decode).
LM_WEIGHT = 0.6
LM_BONUS = 2.0


@dataclass
class SpeechDataConfig:
    """How manifests become batches. Every field is also a flag of ``rnnkit speech train``."""

    val: str = field(
        default="", metadata={"help": "validation manifest; default: held-out sentences"}
    )
    val_fraction: float = field(
        default=0.1, metadata={"help": "without --val: fraction of the sentences held out"}
    )
    sample_rate: int = field(default=16000, metadata={"help": "Hz the model hears"})
    resample: bool = field(
        default=True, metadata={"help": "resample audio at another rate (else refuse it)"}
    )
    n_mels: int = field(default=80, metadata={"help": "mel bands per frame"})
    win_ms: float = field(default=25.0, metadata={"help": "analysis window, ms"})
    hop_ms: float = field(default=10.0, metadata={"help": "frame step, ms"})
    normalize: bool = field(
        default=True, metadata={"help": "per-utterance mean/variance normalisation"}
    )
    lowercase: bool = field(default=True, metadata={"help": "fold transcripts to lower case"})
    batch_size: int = field(default=16, metadata={"help": "utterances per batch"})

    def __post_init__(self) -> None:
        if not 0.0 <= self.val_fraction < 1.0:
            raise RnnkitError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        for name in ("sample_rate", "n_mels", "batch_size"):
            if getattr(self, name) < 1:
                raise RnnkitError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.win_ms <= 0 or self.hop_ms <= 0:
            raise RnnkitError(f"win_ms and hop_ms must be > 0, got {self.win_ms}, {self.hop_ms}")

    def feature_settings(self) -> dict[str, Any]:
        """What the features depend on (the feature cache's key)."""
        names = ("sample_rate", "resample", "n_mels", "win_ms", "hop_ms", "normalize")
        return {n: getattr(self, n) for n in names}

    def transcript(self, text: str) -> str:
        """A transcript as the model learns it: one space between words, maybe lower case."""
        text = " ".join(text.split())
        return text.lower() if self.lowercase else text


# ---- encoding ----------------------------------------------------------------------------------


@dataclass
class Encoded:
    """The utterances kept for training or validation and what was left out."""

    inputs: list[np.ndarray]
    targets: list[np.ndarray]
    too_long: int = 0
    unknown_chars: int = 0


def encode_split(
    utterances: Sequence[Utterance],
    features: Sequence[np.ndarray],
    alphabet: str,
    model: SpeechConfig,
    dc: SpeechDataConfig,
    name: str,
    validation: bool = False,
) -> Encoded:
    """Targets (L_i,) int64 labels 1..C of each utterance; characters outside ``alphabet`` are
    dropped and counted, utterances CTC cannot align to their frames skipped and counted."""
    index = {ch: i + 1 for i, ch in enumerate(alphabet)}
    out = Encoded([], [])
    first = None
    for u, x in zip(utterances, features, strict=True):
        text = dc.transcript(u.transcript)
        labels = [index[ch] for ch in text if ch in index]
        out.unknown_chars += len(text) - len(labels)
        steps = -(-len(x) // model.factor)
        if not labels or ctc_frames_needed(labels) > steps:
            out.too_long += 1
            first = first or f"{u.audio} ({u.where}): {len(labels)} characters, {steps} steps"
            continue
        out.inputs.append(x)
        out.targets.append(np.asarray(labels, dtype=np.int64))
    if out.too_long:
        logger.warning(
            "%s: skipped %d utterance(s) whose transcript is longer than CTC can align to its "
            "frames (first: %s); a smaller subsample_factor fits more",
            name,
            out.too_long,
            first,
        )
    if out.unknown_chars:
        logger.warning(
            "%s: %d transcript character(s) outside the model's alphabet were dropped",
            name,
            out.unknown_chars,
        )
    if not out.inputs:
        purpose = "validate on" if validation else "train on"
        raise RnnkitError(
            f"{name}: no utterance is left to {purpose} (every transcript is longer than CTC "
            f"can align to its frames at subsample factor {model.factor})"
        )
    return out


def _digest(utterances: Sequence[Utterance]) -> str:
    h = hashlib.sha256()
    for u in utterances:
        h.update(f"{u.audio.resolve()}\0{u.transcript}\0".encode())
    return h.hexdigest()


def split_by_sentence(
    utterances: list[Utterance], fraction: float, seed: int, dc: SpeechDataConfig
) -> tuple[list[Utterance], list[Utterance]]:
    """(train, val): a ``fraction`` of the distinct transcripts, drawn from ``seed``, with
    every utterance of each."""
    sentences = sorted({dc.transcript(u.transcript) for u in utterances})
    if len(sentences) < 2 or fraction <= 0:
        return utterances, []
    rng = np.random.default_rng(seed)
    n_val = min(max(1, round(fraction * len(sentences))), len(sentences) - 1)
    held = {sentences[i] for i in rng.permutation(len(sentences))[:n_val]}
    train = [u for u in utterances if dc.transcript(u.transcript) not in held]
    return train, [u for u in utterances if dc.transcript(u.transcript) in held]


# ---- the task ----------------------------------------------------------------------------------


class SpeechTask:
    """The recogniser as the run lifecycle (:mod:`rnnkit.tasks.run`) sees it."""

    name = "speech"
    what = "a speech recogniser"
    model_class = SpeechRecognizer
    data_config_class = SpeechDataConfig
    default_train = TrainConfig(epochs=30, lr=1e-3, monitor="val_cer", log_every=20)

    def prepare(self, data, out, model: SpeechConfig, dc: SpeechDataConfig, train, saved):
        manifest = Path(data)
        full = read_manifest(manifest)
        if dc.val:
            train_utts, val_utts = full, read_manifest(dc.val)
        else:
            train_utts, val_utts = split_by_sentence(full, dc.val_fraction, train.seed, dc)
        if saved is not None:
            alphabet = saved.model.alphabet
            if saved.resume and saved.extras["dataset.json"]["digest"] != _digest(train_utts):
                raise RnnkitError(
                    f"{manifest} is not the data the run in {out} was trained on (its "
                    "utterances differ); resume needs the same manifest and seed"
                )
        else:
            chars = {ch for u in train_utts for ch in dc.transcript(u.transcript)}
            alphabet = "".join(sorted(chars))
        model = dataclasses.replace(model, num_features=dc.n_mels, alphabet=alphabet)
        settings = dc.feature_settings()
        cache = Path(out) / "features"
        train_x = cached_features(train_utts, cache, "train", settings)
        train_enc = encode_split(train_utts, train_x, alphabet, model, dc, str(manifest))
        train_src = PaddedBatches(
            train_enc.inputs, train_enc.targets, dc.batch_size, seed=train.seed, name=str(manifest)
        )
        val_src, val_enc = None, None
        if val_utts:
            val_x = cached_features(val_utts, cache, "val", settings)
            val_name = dc.val or "the held-out sentences"
            val_enc = encode_split(val_utts, val_x, alphabet, model, dc, val_name, True)
            val_src = PaddedBatches(
                val_enc.inputs, val_enc.targets, dc.batch_size, shuffle=False, name=val_name
            )
        extras = {
            "dataset.json": {
                "digest": _digest(train_utts),
                "num_train": len(train_enc.inputs),
                "num_val": len(val_enc.inputs) if val_enc else 0,
                "skipped_too_long": train_enc.too_long + (val_enc.too_long if val_enc else 0),
                "unknown_chars": val_enc.unknown_chars if val_enc else 0,
            }
        }
        return run.Prepared(model, train_src, val_src, extras)


SPEECH_TASK = SpeechTask()


def train_speech(
    data: str | Path,
    out: str | Path,
    model: SpeechConfig | None = None,
    data_config: SpeechDataConfig | None = None,
    train: TrainConfig | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
) -> TrainResult:
    """Train a recogniser on the manifest ``data`` into ``out``.

    ``resume``, ``overwrite`` and ``train.init_from`` work as for every task
    (:func:`rnnkit.tasks.run.train`). ``train`` defaults to :attr:`SpeechTask.default_train`
    (30 epochs, Adam 1e-3, best checkpoint by validation CER).
    """
    if train is None and not resume:
        train = SPEECH_TASK.default_train
    return run.train(
        SPEECH_TASK, data, out, model, data_config, train, resume=resume, overwrite=overwrite
    )


# ---- using a trained recogniser ----------------------------------------------------------------


class Transcriber:
    """A trained recogniser for transcription and evaluation (on the CPU, or ``device``)."""

    def __init__(self, model: SpeechRecognizer, saved: run.Saved) -> None:
        self.model = model.eval()
        self.saved = saved
        self.data_config: SpeechDataConfig = saved.data
        self.alphabet = model.config.alphabet

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Transcriber:
        """From a run directory (``best/``, else ``last/``) or a checkpoint directory."""
        saved = run.load_saved(SPEECH_TASK, path)
        return cls(load_model(saved.path, map_location=device), saved)  # type: ignore[arg-type]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def log_probs(self, features: Sequence[np.ndarray], batch_size: int = 16) -> list[np.ndarray]:
        """Each utterance's (T'_i, C+1) CTC log-probabilities, from (T_i, n_mels) features."""
        source = PaddedBatches(list(features), None, batch_size, shuffle=False, name="the audio")
        out: list[Any] = [None] * len(features)
        for i in range(source.num_batches()):
            b = source.batch(0, i)
            logits, lengths = self.model(b["inputs"].float().to(self.device), b["lengths"])
            logp = torch.log_softmax(logits.float(), -1).cpu().numpy()
            for row, j in enumerate(b["index"].tolist()):
                out[j] = logp[row, : int(lengths[row])]
        return out

    def decode(
        self,
        log_probs: Sequence[np.ndarray],
        *,
        beam: int = 1,
        lm: Any = None,
        lm_weight: float = LM_WEIGHT,
        insertion_bonus: float | None = None,
    ) -> list[str]:
        """Texts of CTC outputs: greedy with ``beam`` 1, else prefix beam search, with shallow
        fusion of ``lm`` (a char-level ``rnnkit lm`` run or :class:`TextGenerator`).

        ``insertion_bonus`` (added per character) defaults to :data:`LM_BONUS` with an LM, 0
        without. The defaults are the best of a small grid on the synthetic corpus's dev set
        (benchmarks/speech_quality.py --tune); tune them for other data.
        """
        if beam < 1:
            raise RnnkitError(f"beam must be >= 1, got {beam}")
        if lm is not None and beam == 1:
            raise RnnkitError("a language model needs beam search: give a beam width above 1")
        if beam == 1:
            return [self.model.decode_labels(greedy_decode(row, BLANK)) for row in log_probs]
        scorer, bonus = None, 0.0
        if lm is not None:
            from rnnkit.tasks.lm_fusion import CharLMScorer

            scorer, bonus = CharLMScorer.load(lm, self.alphabet), LM_BONUS
        texts = []
        for row in log_probs:
            best = prefix_beam_search(
                row,
                beam,
                blank=BLANK,
                scorer=scorer,
                lm_weight=lm_weight if scorer else 0.0,
                insertion_bonus=insertion_bonus if insertion_bonus is not None else bonus,
            )
            texts.append(self.model.decode_labels(best[0][0]))
        return texts

    def transcribe(
        self, audio: Sequence[str | Path], *, batch_size: int = 16, **decoding: Any
    ) -> list[str]:
        """The text of each audio file (options of :meth:`decode`)."""
        if not audio:
            raise RnnkitError("nothing to transcribe: give at least one audio file")
        utts = [Utterance(Path(a), "", "") for a in audio]
        features = compute_features(utts, self.data_config.feature_settings())
        return self.decode(self.log_probs(features, batch_size), **decoding)

    def evaluate(
        self, manifest: str | Path, *, batch_size: int = 16, **decoding: Any
    ) -> dict[str, Any]:
        """CER and WER on a manifest (options of :meth:`decode`), and the counts behind them:
        ``num_utterances``, ``unknown_chars`` (reference characters outside the alphabet,
        counted as errors), ``too_long`` (utterances shorter than CTC needs; scored too)."""
        dc = self.data_config
        utts = read_manifest(manifest)
        refs = [dc.transcript(u.transcript) for u in utts]
        logp = self.log_probs(compute_features(utts, dc.feature_settings()), batch_size)
        hyps = self.decode(logp, **decoding)
        known = set(self.alphabet)
        unknown = sum(ch not in known for text in refs for ch in text)
        index = {ch: i + 1 for i, ch in enumerate(self.alphabet)}
        too_long = sum(
            ctc_frames_needed([index.get(ch, -1) for ch in text]) > len(lp)
            for text, lp in zip(refs, logp, strict=True)
        )
        if unknown:
            logger.warning(
                "%s: %d reference character(s) are outside the model's alphabet (counted as "
                "errors)",
                manifest,
                unknown,
            )
        counts = error_counts(refs, hyps)
        return {
            **error_rates(counts),
            "num_utterances": len(utts),
            "unknown_chars": unknown,
            "too_long": too_long,
            **counts,
        }
