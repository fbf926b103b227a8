"""Translating with a trained encoder–decoder: decoding, scores, attention, BLEU on a test set.

.. code-block:: python

    tr = Translator.load("runs/m30k")
    tr.translate(["Ein Mann fährt Fahrrad."])[0].text            # greedy
    tr.translate(texts, method="beam", beam_width=5, n_best=3, length_penalty=1.0)
    tr.evaluate(("test.de", "test.en"), method="beam")          # {"bleu", "chrf", ...}

Sentences are batched (sorted by length, ``batch_size`` at a time) and each batch is encoded
once: :class:`DecoderStepper` keeps the encoder memory (outputs, attention keys already
projected, mask) in the decoder state and runs one-token steps in ``torch.inference_mode``,
so the shared searches of :mod:`rnnkit.decoding` (greedy, sampling, beam, exhaustive) drive
it. A row's output is at most ``max_len_a · S + max_len_b`` tokens for a source of S tokens
(beam and exhaustive search take the longest source of the batch). The attention of a
translation comes from one teacher-forced pass over it (the same weights the search saw).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.checkpoint import load_model
from rnnkit.data.padded import pad_sequences
from rnnkit.decoding import beam_search, collect, exhaustive_search, sample
from rnnkit.errors import RnnkitError
from rnnkit.metrics.translation import corpus_scores
from rnnkit.models.seq2seq import DecoderState, Seq2Seq, reorder_state
from rnnkit.tasks import run
from rnnkit.tasks.seq2seq import SEQ2SEQ_TASK, Seq2SeqDataConfig, Sides

METHODS = ("greedy", "sample", "beam", "exhaustive")
logger = logging.getLogger("rnnkit")


class DecoderStepper:
    """A :class:`rnnkit.decoding.Stepper` over a :class:`Seq2Seq`'s decoder: NumPy token ids
    in, NumPy log-probabilities out, the torch state (encoder memory included) in between.
    Call it inside ``torch.inference_mode()``."""

    def __init__(self, model: Seq2Seq) -> None:
        self.model = model
        self.device = next(model.parameters()).device

    def start(self, source: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, DecoderState]:
        """Encode a padded batch (B, S) once; the log-probs (B, V) of the first token and the
        state after ``<bos>``."""
        src = torch.from_numpy(source).to(self.device)
        state = self.model.encode(src, torch.from_numpy(lengths))
        bos = np.full(len(source), self.model.config.bos_id, dtype=np.int64)
        return self.step(bos, state)

    def step(self, tokens: np.ndarray, state: DecoderState) -> tuple[np.ndarray, DecoderState]:
        log_probs, new, _ = self.model.decode_step(torch.from_numpy(tokens).to(self.device), state)
        return log_probs.cpu().numpy(), new

    def reorder(self, state: DecoderState, index: np.ndarray) -> DecoderState:
        return reorder_state(state, torch.from_numpy(np.asarray(index, np.int64)).to(self.device))


@dataclass
class Translation:
    """One source sentence's translation.

    ``score`` is log P(output + ``<eos>`` | source) (None when not computed), ``alternatives``
    the n-best list as (text, score) best first, ``attention`` the (T + 1, S) weights (rows:
    the output tokens and ``<eos>``; columns: the source tokens) when asked for, ``truncated``
    the source's original token count when it was cut to the maximum length (else 0).
    """

    source: str
    text: str
    tokens: list[str]
    source_tokens: list[str]
    score: float | None = None
    alternatives: list[tuple[str, float]] = field(default_factory=list)
    attention: np.ndarray | None = None
    truncated: int = 0


class Translator:
    """A trained translation model, for :meth:`translate` and :meth:`evaluate`."""

    def __init__(self, model: Seq2Seq, saved: run.Saved) -> None:
        self.model = model.eval()
        self.saved = saved
        self.data_config: Seq2SeqDataConfig = saved.data
        self.sides = Sides.from_extras(saved.extras, str(saved.path))
        self.text = self.sides.target_text()
        self.stepper = DecoderStepper(self.model)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Translator:
        """From a run directory (``best/``, else ``last/``) or a checkpoint directory; another
        task's checkpoint is an error naming it."""
        saved = run.load_saved(SEQ2SEQ_TASK, path)
        return cls(load_model(saved.path, map_location=device), saved)  # type: ignore[arg-type]

    # ---- inputs ------------------------------------------------------------------------------

    def _sources(self, texts, where, max_source_length, refuse_long):
        """Token ids of each source, cut to the maximum length (or refused, naming it)."""
        limit = (
            self.data_config.max_source_length if max_source_length is None else max_source_length
        )
        tokens, ids, cut = [], [], []
        for i, text in enumerate(texts):
            name = where[i] if where else f"input {i + 1}"
            toks = self.sides.source_tokenizer.tokenize(text.strip())
            if not toks:
                raise RnnkitError(f"{name} is empty: nothing to translate")
            n = len(toks)
            if limit and n > limit:
                if refuse_long:
                    raise RnnkitError(
                        f"{name}: the source has {n} tokens, more than the maximum length "
                        f"{limit}; shorten it or allow truncation"
                    )
                logger.warning(
                    "%s: the source has %d tokens, more than the maximum length %d: "
                    "translated its first %d",
                    name,
                    n,
                    limit,
                    limit,
                )
                toks = toks[:limit]
            tokens.append(toks)
            ids.append(self.sides.source_vocab.encode_tokens(toks, name))
            cut.append(n if limit and n > limit else 0)
        return tokens, ids, cut

    # ---- translation -------------------------------------------------------------------------

    def translate(
        self,
        texts: list[str],
        *,
        method: str = "greedy",
        beam_width: int = 5,
        n_best: int = 1,
        length_penalty: float = 0.0,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
        max_len_a: float = 2.0,
        max_len_b: int = 10,
        max_source_length: int | None = None,
        refuse_long: bool = False,
        batch_size: int = 32,
        scores: bool = False,
        attention: bool = False,
        replace_unk: bool = False,
        where: list[str] | None = None,
    ) -> list[Translation]:
        """Translate ``texts`` (one sentence each), in order.

        method: 'greedy', 'sample' (temperature, top_k, top_p, seed), 'beam' (beam_width,
        length_penalty: GNMT's α), or 'exhaustive' (tiny vocabularies only). n_best: that many
        alternatives per sentence (beam, exhaustive, sample). max_len_a/b: at most a·S + b
        output tokens. max_source_length: longer sources are cut with a warning (None: the
        training limit, 0: none), or refused with ``refuse_long``. scores/attention: compute
        log P and the attention weights (one teacher-forced pass). replace_unk: each ``<unk>``
        becomes the source word it attends to most (Luong et al. 2015; word models).
        ``where`` names each text in messages ("file:3").
        """
        self._check_options(method, n_best, batch_size, max_len_a, max_len_b, replace_unk)
        if not texts:
            raise RnnkitError("nothing to translate: give at least one sentence")
        src_tokens, src_ids, cut = self._sources(texts, where, max_source_length, refuse_long)
        order = np.argsort([len(x) for x in src_ids], kind="stable")
        results: list[Translation | None] = [None] * len(texts)
        rng = np.random.default_rng(seed)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                source, lengths = pad_sequences([src_ids[i] for i in rows], self._pad)
                limits = (lengths * max_len_a + max_len_b).astype(np.int64).clip(min=1)
                hyps = self._search(
                    source,
                    lengths,
                    limits,
                    method,
                    beam_width,
                    n_best,
                    length_penalty,
                    temperature,
                    top_k,
                    top_p,
                    rng,
                )
                need_pass = scores or attention or replace_unk
                for j, i in enumerate(rows):
                    results[i] = self._result(
                        texts[i],
                        src_tokens[i],
                        source[j : j + 1, : lengths[j]],  # no padding: (1, S_j) attention
                        lengths[j : j + 1],
                        hyps[j],
                        need_pass,
                        attention,
                        replace_unk,
                        cut[i],
                    )
        return results  # type: ignore[return-value]

    @property
    def _pad(self) -> int:
        return int(self.sides.source_vocab.pad_id)

    def _check_options(self, method, n_best, batch_size, a, b, replace_unk) -> None:
        if method not in METHODS:
            raise RnnkitError(f"method must be one of {list(METHODS)}, got {method!r}")
        if n_best < 1 or batch_size < 1:
            raise RnnkitError(f"n_best and batch_size must be >= 1, got {n_best}, {batch_size}")
        if n_best > 1 and method == "greedy":
            raise RnnkitError(
                "greedy decoding gives one translation: n_best needs beam, exhaustive or sample"
            )
        if a < 0 or b < 0 or (a == 0 and b < 1):
            raise RnnkitError(f"max_len_a and max_len_b must allow one token, got {a}, {b}")
        if replace_unk and self.sides.target_tokenizer.kind != "word":
            raise RnnkitError(
                "replace_unk copies source words: it needs a word-level model "
                f"(this one is {self.sides.target_tokenizer.kind})"
            )
        if replace_unk and self.model.attn is None:
            raise RnnkitError("replace_unk follows the attention: this model has none")

    def _search(
        self, source, lengths, limits, method, width, n_best, alpha, temp, top_k, top_p, rng
    ) -> list[list[tuple[list[int], float | None]]]:
        """Each row's hypotheses: (token ids with ``<eos>`` when reached, score or None)."""
        eos = self.model.config.eos_id
        log_probs, state = self.stepper.start(source, lengths)
        if method in ("beam", "exhaustive"):
            search = beam_search if method == "beam" else exhaustive_search
            extra = {"beam_width": width} if method == "beam" else {}
            found = search(
                self.stepper,
                state,
                log_probs,
                int(limits.max()),
                n_best=n_best,
                stop_tokens=[eos],
                length_penalty=alpha,
                **extra,
            )
            return [[(h.tokens, h.log_prob) for h in row] for row in found]
        count = n_best if method == "sample" else 1
        emitted = np.zeros(len(source) * count, dtype=np.int64)
        row_limit = np.repeat(limits, count)

        def long_enough(row: int, token: int) -> bool:
            emitted[row] += 1
            return bool(emitted[row] >= row_limit[row])

        stream = sample(
            self.stepper,
            state,
            log_probs,
            int(limits.max()),
            temperature=0.0 if method == "greedy" else temp,
            top_k=top_k,
            top_p=top_p,
            rng=rng,
            num_samples=count,
            stop_tokens=[eos],
            stop_when=long_enough,
        )
        rows = collect(stream)
        return [[(rows[b * count + s], None) for s in range(count)] for b in range(len(source))]

    def _forced(self, source, lengths, ids: list[int]) -> tuple[float, np.ndarray | None]:
        """log P(ids | source) and the attention (T, S) by one teacher-forced pass."""
        c = self.model.config
        y = torch.tensor([ids], dtype=torch.int64)
        prev = torch.cat([torch.tensor([[c.bos_id]]), y[:, :-1]], 1).to(self.stepper.device)
        logits, alpha = self.model(
            torch.from_numpy(source).to(prev.device), torch.from_numpy(lengths), prev
        )
        lp = torch.log_softmax(logits.float(), -1)[0].gather(1, y.T.to(prev.device)).sum()
        return float(lp), None if alpha is None else alpha[0].float().cpu().numpy()

    def _result(
        self, text, src_tokens, source, lengths, hyps, need_pass, attention, replace_unk, cut
    ) -> Translation:
        eos, unk = self.model.config.eos_id, self.sides.target_vocab.unk_id
        outs = []
        for ids, score in hyps:
            full = ids if ids and ids[-1] == eos else [*ids, eos]
            weights = None
            if need_pass:
                forced, weights = self._forced(source, lengths, full)
                score = forced if score is None else score
            tokens = []
            for t, i in enumerate(full[:-1]):
                if i in self.text.skip:
                    continue
                if replace_unk and weights is not None and i == unk:
                    tokens.append(src_tokens[int(weights[t].argmax())])
                else:
                    tokens.append(self.sides.target_vocab.itos[i])
            outs.append((self.sides.target_tokenizer.detokenize(tokens), tokens, score, weights))
        best_text, best_tokens, best_score, best_weights = outs[0]
        return Translation(
            source=text,
            text=best_text,
            tokens=best_tokens,
            source_tokens=src_tokens,
            score=best_score,
            alternatives=[(o[0], o[2]) for o in outs] if len(outs) > 1 else [],
            attention=best_weights if attention else None,
            truncated=cut,
        )

    # ---- evaluation --------------------------------------------------------------------------

    def evaluate(self, data: Any, **options: Any) -> dict[str, Any]:
        """BLEU and chrF (sacreBLEU, detokenised, cased) and the exact-match rate of the
        translations of ``data``'s sources against its targets. ``data`` as for training (two
        files, or one TSV read with the run's column settings); ``options`` go to
        :meth:`translate`."""
        pairs = self.data_config.read(data)
        t0 = time.perf_counter()
        out = self.translate(pairs.sources, where=pairs.where, **options)
        seconds = time.perf_counter() - t0
        hyps = [t.text for t in out]
        result = corpus_scores(hyps, pairs.targets)
        exact = sum(h == r for h, r in zip(hyps, pairs.targets, strict=True))
        return {
            "bleu": result["bleu"],
            "chrf": result["chrf"],
            "exact_match": exact / len(pairs),
            "num_sentences": len(pairs),
            "skipped_empty": pairs.skipped,
            "truncated": sum(1 for t in out if t.truncated),
            "method": options.get("method", "greedy"),
            "sentences_per_second": len(pairs) / max(seconds, 1e-9),
            **{k: result[k] for k in ("bleu_details", "bleu_signature", "chrf_signature")},
            "hypotheses": hyps,
        }


def save_attention_png(path: str | Path, translation: Translation, title: str = "") -> None:
    """The attention of one translation as a heatmap: source tokens along x, output tokens
    (and ``<eos>``) down y."""
    if translation.attention is None:
        raise RnnkitError("this translation has no attention weights (attention=True)")
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise RnnkitError(
            "attention heatmaps need matplotlib: pip install 'rnnkit[plot]'"
        ) from None
    weights = translation.attention
    rows = [*translation.tokens, "<eos>"][: weights.shape[0]]
    cols = translation.source_tokens[: weights.shape[1]]
    fig = Figure(figsize=(1.5 + 0.32 * len(cols), 1.2 + 0.32 * len(rows)), layout="tight")
    ax = fig.subplots()
    ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(cols)), [_shown(t) for t in cols], rotation=90)
    ax.set_yticks(range(len(rows)), [_shown(t) for t in rows])
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    if title:
        ax.set_title(title, fontsize=9)
    fig.savefig(path, dpi=100)


def _shown(token: str) -> str:
    return "␣" if token == " " else token
