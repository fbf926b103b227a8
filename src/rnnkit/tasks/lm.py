"""Language modelling end to end: train on any text, then predict and generate.

.. code-block:: python

    from rnnkit.tasks.lm import LMDataConfig, train_language_model
    from rnnkit.tasks.text_generator import TextGenerator
    from rnnkit.models.language_model import LMConfig
    from rnnkit.training import TrainConfig

    train_language_model("input.txt", "runs/shakespeare", LMConfig(hidden_size=512),
                         LMDataConfig(level="char"), TrainConfig(max_minutes=30))
    gen = TextGenerator.load("runs/shakespeare")
    print("".join(gen.sample("ROMEO:", length=200, temperature=0.8)))
    gen.predict("To be or not to b", top=3)   # [('e', 0.97), ...]

A run directory holds ``best/`` and ``last/`` checkpoints (each with config.json, vocab.json,
data.json, model.safetensors, trainer state), ``data/`` (the corpus encoded once, memory
mapped), ``log.csv`` and ``loss_curve.png``. Three ways to start a run:

* fresh: a new vocabulary from the data, a new model;
* ``resume=True``: continue the run in ``out`` exactly (same model, vocabulary, data position,
  optimiser and RNG state), e.g. after Ctrl-C or with a larger ``max_steps``;
* ``TrainConfig(init_from=ckpt)``: a new run (new optimiser, step 0) that starts from the
  weights of ``ckpt``, with its vocabulary and model shape: fine-tuning on other text.
"""

import dataclasses
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit.checkpoint import load_extra_file, load_model, resolve_checkpoint
from rnnkit.data import (
    StreamBatches,
    Vocab,
    WindowBatches,
    build_vocab,
    corpus_files,
    encode_corpus,
    eval_batches,
    prepare_corpus,
)
from rnnkit.errors import RnnkitError
from rnnkit.models.language_model import LanguageModel, LMConfig
from rnnkit.models.recurrent import check_field_types
from rnnkit.tasks import run
from rnnkit.training import TrainConfig, TrainResult


@dataclass
class LMDataConfig:
    """How text becomes batches. Every field is also a flag of ``rnnkit lm train``."""

    level: str = field(
        default="char",
        metadata={
            "help": "tokens: characters, words (punctuation split off), or whitespace-separated "
            "words (text tokenised already, e.g. Penn Treebank)",
            "choices": ["char", "word", "whitespace"],
        },
    )
    seq_length: int = field(default=100, metadata={"help": "T, steps of truncated BPTT per batch"})
    # Small batches: on a CPU more, smaller updates per minute beat fewer large ones
    # (Tiny Shakespeare, 2x256, 3 minutes: batch 64 1.602, 32 1.544, 16 1.486, 8 1.492 nats/char
    # in benchmarks/lm_quality.py). On a GPU raise it.
    batch_size: int = field(default=16, metadata={"help": "B, sequences per batch"})
    val_fraction: float = field(
        default=0.1, metadata={"help": "last fraction of the corpus kept for validation"}
    )
    stateful: bool = field(
        default=True,
        metadata={"help": "carry state across batches (contiguous streams) or random windows"},
    )
    shift_streams: bool = field(
        default=False,
        metadata={
            "help": "stateful: start the streams up to seq_length tokens later each epoch, so "
            "the BPTT cuts fall elsewhere every epoch"
        },
    )
    max_vocab: int = field(default=0, metadata={"help": "cap the vocabulary (0 = no cap)"})
    min_freq: int = field(default=1, metadata={"help": "drop tokens seen fewer times"})
    unk: bool = field(
        default=True,
        metadata={
            "help": "char level: an <unk> token, so text with characters never seen in "
            "training can still be scored and continued (word levels always have one)"
        },
    )

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.level not in ("char", "word", "whitespace"):
            raise RnnkitError(f"level must be char, word or whitespace, got {self.level!r}")
        for name in ("seq_length", "batch_size", "min_freq"):
            if getattr(self, name) < 1:
                raise RnnkitError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_vocab < 0:
            raise RnnkitError(f"max_vocab must be >= 0 (0 = no cap), got {self.max_vocab}")
        if not 0.0 < self.val_fraction < 1.0:
            raise RnnkitError(f"val_fraction must be in (0, 1), got {self.val_fraction}")


# ---- what a checkpoint holds ------------------------------------------------------------------


def load_configs(path: str | Path) -> tuple[LMConfig, LMDataConfig, TrainConfig | None]:
    """The model, data and training configs saved in a checkpoint (or a run's ``best``/``last``).

    Start from them to change a few fields: ``dataclasses.replace(train, max_steps=5000)``.
    """
    saved = run.load_saved(LM_TASK, path)
    return saved.model, saved.data, saved.train


def load_vocab(path: str | Path) -> Vocab:
    """The vocabulary saved in a checkpoint (or a run's ``best``/``last``)."""
    ckpt = run.check_task(LM_TASK, path)
    return Vocab.from_dict(load_extra_file(ckpt, "vocab.json"), source=str(ckpt / "vocab.json"))


last_checkpoint = run.last_checkpoint


# ---- training ---------------------------------------------------------------------------------


class LanguageModelTask:
    """The language model as the run lifecycle (:mod:`rnnkit.tasks.run`) sees it."""

    name = "lm"
    what = "a language model"
    model_class = LanguageModel
    data_config_class = LMDataConfig
    # `rnnkit lm train FILE --max-minutes M` with no other flag: Adam with a cosine decay over
    # the time budget (or the epochs, whichever ends the run first), bf16 where the hardware
    # has it. Measured in benchmarks/lm_quality.py shakespeare (the recipe 'defaults').
    default_train = TrainConfig(
        lr=3e-3, lr_schedule="cosine", min_lr=1e-4, epochs=50, precision="auto"
    )

    def prepare(self, data, out: Path, model: LMConfig, data_config: LMDataConfig, train, saved):
        files = corpus_files(data, exclude=[out])  # the run may live inside the data folder
        vocab = None
        if saved is not None:
            vocab = Vocab.from_dict(saved.extras["vocab.json"], source=f"{saved.path}/vocab.json")
            if saved.resume:
                d = saved.data
                fresh = build_vocab(files, d.level, d.max_vocab or None, d.min_freq, _unk(d))
                if fresh != vocab:
                    raise RnnkitError(
                        f"{data} is not the data the run in {out} was trained on: its vocabulary "
                        f"differs ({_vocab_difference(fresh, vocab)}); resume needs the same data"
                    )
            elif data_config.level != vocab.level:
                raise RnnkitError(
                    f"init_from {saved.path} is a {vocab.level}-level model, the data config "
                    f"says level={data_config.level!r}"
                )
        vocab, train_tokens, val_tokens = prepare_corpus(
            files,
            data_config.level,
            out / "data",
            data_config.val_fraction,
            max_size=data_config.max_vocab or None,
            min_freq=data_config.min_freq,
            vocab=vocab,
            unk=_unk(data_config),
        )
        train_src, val_src = _sources(train_tokens, val_tokens, data_config, train.seed)
        return run.Prepared(
            dataclasses.replace(model, vocab_size=len(vocab)),
            train_src,
            val_src,
            {"vocab.json": vocab.to_dict()},
        )


LM_TASK = LanguageModelTask()


def _unk(data: LMDataConfig) -> bool | None:
    """What Vocab.build's ``unk`` is for this config: True adds <unk> at char level; without it
    (False) a cut of characters needs one anyway (None)."""
    return True if data.unk or data.level != "char" else None


def train_language_model(
    data: str | Path,
    out: str | Path,
    model: LMConfig | None = None,
    data_config: LMDataConfig | None = None,
    train: TrainConfig | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
) -> TrainResult:
    """Train a language model on a text file or a directory of them; checkpoints go to ``out``.

    With ``resume=True`` the run in ``out`` continues exactly where it stopped; ``model`` and
    ``data_config`` default to the saved ones (and may not differ from them), ``train`` to the
    saved training config (give one to change e.g. ``max_steps``: see :func:`load_configs`).
    With ``train.init_from`` the model shape and vocabulary come from that checkpoint.
    An ``out`` that already holds a run is refused unless ``overwrite=True``. ``train``
    defaults to :attr:`LanguageModelTask.default_train`.
    """
    return run.train(
        LM_TASK, data, out, model, data_config, train, resume=resume, overwrite=overwrite
    )


def _vocab_difference(new: Vocab, old: Vocab) -> str:
    added = sorted(set(new.itos) - set(old.itos))
    gone = sorted(set(old.itos) - set(new.itos))
    parts = [f"{len(new)} tokens, the run's {len(old)}"]
    if added:
        parts.append(f"new: {', '.join(map(repr, added[:5]))}{' ...' if len(added) > 5 else ''}")
    if gone:
        parts.append(f"missing: {', '.join(map(repr, gone[:5]))}{' ...' if len(gone) > 5 else ''}")
    if not added and not gone:
        parts.append("the same tokens in another order: their counts differ")
    return "; ".join(parts)


def _sources(train_tokens, val_tokens, data: LMDataConfig, seed: int):
    if data.stateful:
        train = StreamBatches(
            train_tokens,
            data.batch_size,
            data.seq_length,
            "the training data",
            shift_seed=seed if data.shift_streams else None,
        )
    else:
        train = WindowBatches(
            train_tokens, data.batch_size, data.seq_length, seed, name="the training data"
        )
    val = eval_batches(val_tokens, data.batch_size, data.seq_length)
    return train, val


# ---- evaluation -------------------------------------------------------------------------------


def evaluate_language_model(
    path: str | Path, data: str | Path, batch_size: int = 0, seq_length: int = 0
) -> dict:
    """Loss of a trained model on a text: nats/token, bits/token (= bits/char at char level),
    perplexity, how many tokens were scored (all but the first), and how many of them the
    vocabulary did not know (``unknown_tokens``, ``unknown_rate``: scored as ``<unk>``).

    The text is read as ``batch_size`` streams of ``seq_length`` tokens at a time with the
    state carried (default: the training sizes; a stream starts from a zero state, so fewer
    streams give a slightly lower loss).
    """
    if batch_size < 0 or seq_length < 0:
        raise RnnkitError(
            f"batch_size and seq_length must be >= 0 (0 = as trained), got {batch_size} "
            f"and {seq_length}"
        )
    ckpt = resolve_checkpoint(path)
    _, saved, _ = load_configs(ckpt)
    model = load_model(ckpt, map_location="cpu", expected_type=LanguageModel.model_type)
    vocab = load_vocab(ckpt)
    with tempfile.TemporaryDirectory() as tmp:
        tokens = np.array(encode_corpus(corpus_files(data), vocab, Path(tmp) / "tokens.bin").tokens)
    if len(tokens) < 2:
        raise RnnkitError(
            f"{data} holds {len(tokens)} token{'s' if len(tokens) != 1 else ''}: at least 2 "
            "are needed to score one"
        )
    unknown = int((tokens[1:] == vocab.unk_id).sum()) if vocab.unk_id is not None else 0
    nats = _total_loss(
        model, tokens, batch_size or saved.batch_size, seq_length or saved.seq_length
    )
    loss = nats / (len(tokens) - 1)
    bits = loss / math.log(2)
    return {
        "loss": loss,
        "bits_per_token": bits,
        "bits_per_char" if vocab.level == "char" else "bits_per_word": bits,
        "perplexity": math.exp(loss),
        "tokens": len(tokens) - 1,
        "unknown_tokens": unknown,
        "unknown_rate": unknown / (len(tokens) - 1),
        "level": vocab.level,
    }


@torch.no_grad()
def _total_loss(model: LanguageModel, tokens: np.ndarray, batch_size: int, seq_length: int):
    """Summed cross-entropy (nats) of predicting tokens[1:] from what precedes each.

    The n predictions are cut into B contiguous streams of L = n // B (B at most n // T, so a
    stream holds T tokens at least), read T at a time with the state carried; the n - B·L left
    over continue the last stream. Every token is scored once.
    """
    model.eval()
    ids = torch.from_numpy(tokens.astype(np.int64))
    n, T = len(ids) - 1, seq_length
    B = max(1, min(batch_size, n // T))
    L = n // B
    x, y = ids[: B * L].view(B, L), ids[1 : B * L + 1].view(B, L)
    total, state = torch.zeros((), dtype=torch.float64), None
    for t in range(0, L, T):
        logits, state = model(x[:, t : t + T], state)
        total += F.cross_entropy(logits.flatten(0, 1), y[:, t : t + T].flatten(), reduction="sum")
    if n > B * L:  # the tail: state (num_layers, B, N) keeps only its last row, the last stream
        state = tuple(s[:, -1:] for s in state) if isinstance(state, tuple) else state[:, -1:]
        logits, _ = model(ids[None, B * L : n], state)
        total += F.cross_entropy(logits[0], ids[B * L + 1 :], reduction="sum")
    return float(total)
