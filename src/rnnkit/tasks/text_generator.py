"""Prediction and generation with a trained language model, on the CPU step engine.

.. code-block:: python

    gen = TextGenerator.load("runs/shakespeare")
    "".join(gen.sample("ROMEO:", 200, temperature=0.8))   # streamed token by token
    gen.beam("ROMEO:", length=40, width=8)               # [(text, log-prob)]
    gen.predict("To be or not to b", top=3)              # [('e', 0.97), ...]
    gen.suggest("To be or not to b", top=3)              # whole-word completions

Every method runs on :class:`rnnkit.inference.StepEngine` (NumPy, fused weights) and the shared
:mod:`rnnkit.decoding`; the torch model is only read once, to build the engine.
"""

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from rnnkit.checkpoint import load_model
from rnnkit.data import Vocab
from rnnkit.data.text import space_between
from rnnkit.decoding import PAD, beam_search, greedy, sample
from rnnkit.errors import RnnkitError
from rnnkit.low_precision import engine_for
from rnnkit.models.language_model import LanguageModel
from rnnkit.tasks.lm import LM_TASK, load_vocab
from rnnkit.tasks.run import check_task


class TextGenerator:
    """Prediction and generation with a trained language model, on the CPU step engine.

    Args:
        model: a :class:`LanguageModel` (its weights are copied into the engine; the model
            itself is left where it is, on any device).
        vocab: the vocabulary it was trained with.
        engine: "fp32" (exact, the default), or "int8" / "bf16": weights stored in fewer
            bytes, faster at batch 1, not exact (see :mod:`rnnkit.low_precision`).
    """

    def __init__(self, model: LanguageModel, vocab: Vocab, engine: str = "fp32") -> None:
        if model.config.vocab_size != len(vocab):
            raise RnnkitError(
                f"the model predicts {model.config.vocab_size} tokens but the vocabulary has "
                f"{len(vocab)}"
            )
        self.model = model
        self.vocab = vocab
        self.engine = engine_for(model, engine)

    @classmethod
    def load(cls, path: str | Path, engine: str = "fp32") -> "TextGenerator":
        """From a run directory (uses ``best/``, else ``last/``) or a checkpoint directory;
        ``engine`` as in the constructor."""
        ckpt = check_task(LM_TASK, path)
        model = load_model(ckpt, map_location="cpu", expected_type=LanguageModel.model_type)
        return cls(model, load_vocab(ckpt), engine)

    # ---- the prompt -------------------------------------------------------------------------

    def _start_ids(self, prime: str) -> list[int]:
        ids = self.vocab.encode_array(prime, where="the prime").tolist() if prime else []
        if ids:
            return ids
        # Nothing to condition on: start as at a line break (word level: after <eos>).
        if self.vocab.eos_id is not None:
            return [self.vocab.eos_id]
        return [self.vocab.stoi.get("\n", 0)]

    def prime(self, prime: str, batch: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Log-probs (batch, V) of the token after ``prime`` and the engine state after it."""
        ids = np.asarray(self._start_ids(prime), dtype=np.int64)
        return self.engine.prime(np.broadcast_to(ids, (batch, len(ids))).copy())

    def _text(self, tokens: Iterable[int], prime: str) -> Iterator[str]:
        """The text of each token as it continues ``prime``: at word level a space goes
        between two words, none after a line break (``<eos>``) or after a prime ending in one."""
        previous = None if not prime or prime[-1].isspace() else prime.split()[-1]
        for token in tokens:
            text = self.vocab.decode([token])
            if self.vocab.level != "char":
                spaced = (
                    space_between(previous, text)
                    if self.vocab.level == "word"
                    else (previous is not None and previous != "\n" and text != "\n")
                )
                previous = text
                text = " " + text if spaced else text
            yield text

    # ---- generation -------------------------------------------------------------------------

    def sample(
        self,
        prime: str = "",
        length: int = 200,
        *,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        greedy: bool = False,
        seed: int | None = None,
        stop: str | None = None,
    ) -> Iterator[str]:
        """Stream the continuation of ``prime``, one token's text at a time.

        ``greedy`` (or temperature 0) takes the most probable token; ``stop`` ends the text
        after the first occurrence of that string in the generated text. Memory is constant
        in ``length``.
        """
        if length < 1:
            raise RnnkitError(f"length must be >= 1 token, got {length}")
        log_probs, state = self.prime(prime)
        stream = sample(
            self.engine,
            state,
            log_probs,
            length,
            temperature=0.0 if greedy else temperature,
            top_k=top_k,
            top_p=top_p,
            rng=np.random.default_rng(seed),
        )
        tokens = (int(t[0]) for t in stream if t[0] != PAD)
        tail = ""  # the last len(stop) characters, to find a stop string cut between tokens
        for piece in self._text(tokens, prime):
            if stop:
                tail += piece
                at = tail.find(stop)
                if at >= 0:  # keep the piece up to the end of the stop string
                    yield piece[: len(piece) - (len(tail) - at - len(stop))]
                    return
                tail = tail[-len(stop) :]
            yield piece

    def beam(
        self,
        prime: str = "",
        length: int = 50,
        width: int = 8,
        *,
        n_best: int = 1,
        length_penalty: float = 0.0,
    ) -> list[tuple[str, float]]:
        """The ``n_best`` most probable continuations of ``prime`` (text, log-probability).

        At word level a continuation ends at ``<eos>`` (the line break is not in the text).
        """
        if length < 1:
            raise RnnkitError(f"length must be >= 1 token, got {length}")
        log_probs, state = self.prime(prime)
        eos = self.vocab.eos_id
        hyps = beam_search(
            self.engine,
            state,
            log_probs,
            length,
            width,
            n_best=n_best,
            stop_tokens=[] if eos is None else [eos],
            length_penalty=length_penalty,
        )[0]
        out = []
        for h in hyps:
            tokens = h.tokens[:-1] if h.tokens and h.tokens[-1] == eos else h.tokens
            out.append(("".join(self._text(tokens, prime)), float(h.log_prob)))
        return out

    def predict(self, prefix: str = "", top: int = 5) -> list[tuple[str, float]]:
        """The ``top`` most likely next tokens after ``prefix``, with their probabilities."""
        if top < 1:
            raise RnnkitError(f"top must be >= 1, got {top}")
        log_probs, _ = self.prime(prefix)
        lp = log_probs[0]
        best = np.argsort(-lp, kind="stable")[:top]
        return [(self.vocab.itos[i], float(np.exp(lp[i]))) for i in best]

    def suggest(self, text: str, top: int = 3, max_chars: int = 24) -> list[tuple[str, float]]:
        """Whole-word suggestions for what is being typed: ``top`` (word, probability) pairs.

        After a space (or at the start) these are the most likely next words. Inside a word
        they complete it: at word level, the vocabulary's words that start with the typed part,
        ranked by the model given the words before; at char level, each of the ``top`` most
        likely next characters followed by the greedy continuation up to the end of the word.
        The probability is the model's for the suggestion's first new token (the word at word
        level, the next character at char level).
        """
        if top < 1:
            raise RnnkitError(f"top must be >= 1, got {top}")
        word_start = (
            len(text) - len(text.split()[-1]) if text and not text[-1].isspace() else len(text)
        )
        context, partial = text[:word_start], text[word_start:]
        if self.vocab.level != "char":
            log_probs, _ = self.prime(context)
            lp = log_probs[0]
            ids = [
                i
                for i, w in enumerate(self.vocab.itos)
                if w.startswith(partial) and not (w.startswith("<") and w.endswith(">"))
            ]
            ids.sort(key=lambda i: -lp[i])
            return [(self.vocab.itos[i], float(np.exp(lp[i]))) for i in ids[:top]]
        log_probs, state = self.prime(text)
        lp = log_probs[0]
        firsts = [i for i in np.argsort(-lp, kind="stable") if self._in_word(i)][:top]
        if not firsts:
            return []
        rows = np.asarray(firsts, dtype=np.int64)
        log_probs, state = self.engine.step(
            rows, self.engine.reorder(state, np.zeros(len(rows), np.int64))
        )
        words = [partial + self.vocab.itos[i] for i in firsts]
        scores = [float(lp[i]) for i in firsts]
        done = [False] * len(rows)
        for tokens in greedy(
            self.engine, state, log_probs, max_chars, stop_when=lambda r, t: not self._in_word(t)
        ):
            for r, t in enumerate(tokens):
                if t != PAD and not done[r]:
                    if self._in_word(int(t)):
                        words[r] += self.vocab.itos[int(t)]
                    else:
                        done[r] = True
        return [(w, float(np.exp(s))) for w, s in zip(words, scores, strict=True)]

    def _in_word(self, token: int) -> bool:
        t = self.vocab.itos[token]
        return len(t) == 1 and (t.isalnum() or t == "_")
