"""A character language model trained with ``rnnkit lm`` as the scorer of CTC beam search.

Shallow fusion: the recogniser's beam search (:func:`rnnkit.ctc_decoding.prefix_beam_search`)
asks, for each prefix it keeps, P_LM(next character | prefix); :class:`CharLMScorer` answers
from a char-level ``rnnkit lm`` model run on the NumPy step engine
(:class:`rnnkit.inference.StepEngine`), one batched step per frame for the new prefixes. The
empty prefix is conditioned as the start of a line, and the end of a transcript is scored as a
line break when the LM's vocabulary has one.

The recogniser's characters map to the LM's by identity; one the LM has never seen maps to
its ``<unk>`` (an LM trained with ``--no-unk`` refuses such an alphabet).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.ctc_decoding import Context
from rnnkit.errors import RnnkitError
from rnnkit.tasks.text_generator import TextGenerator


class CharLMScorer:
    """A :class:`rnnkit.ctc_decoding.LabelScorer` over labels 1..C = ``alphabet`` (0 the blank)."""

    def __init__(self, generator: TextGenerator, alphabet: str, where: str = "the LM") -> None:
        vocab = generator.vocab
        if vocab.level != "char":
            raise RnnkitError(
                f"{where} is a {vocab.level}-level language model: fusion with a recogniser "
                "needs a character-level one (rnnkit lm train --level char)"
            )
        ids = [0]  # the blank's entry: never read
        for ch in alphabet:
            i = vocab.stoi.get(ch, vocab.unk_id)
            if i is None:
                raise RnnkitError(
                    f"{where} has never seen the character {ch!r} of the recogniser's "
                    "alphabet and has no <unk>: train it on text with that character"
                )
            ids.append(i)
        self.generator = generator
        self.ids = np.asarray(ids, dtype=np.int64)
        self.end_id = vocab.stoi.get("\n")

    @classmethod
    def load(cls, lm: Any, alphabet: str) -> CharLMScorer:
        """From a run or checkpoint of ``rnnkit lm`` (or a :class:`TextGenerator`)."""
        if isinstance(lm, CharLMScorer):
            return lm
        if isinstance(lm, TextGenerator):
            return cls(lm, alphabet)
        return cls(TextGenerator.load(Path(lm)), alphabet, where=f"the LM {lm}")

    def _contexts(self, log_probs: np.ndarray, states: np.ndarray) -> list[Context]:
        labels = log_probs[:, self.ids]
        ends = log_probs[:, self.end_id] if self.end_id is not None else np.zeros(len(states))
        return [Context(states[i], labels[i], float(ends[i])) for i in range(len(states))]

    def initial(self) -> Context:
        log_probs, state = self.generator.prime("")
        return self._contexts(log_probs, state)[0]

    def extend(self, contexts: Sequence[Context], labels: Sequence[int]) -> list[Context]:
        states = np.stack([c.state for c in contexts])
        tokens = self.ids[np.asarray(labels, dtype=np.int64)]
        log_probs, new = self.generator.engine.step(tokens, states)
        return self._contexts(log_probs, new)
