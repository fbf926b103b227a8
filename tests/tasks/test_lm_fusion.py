"""A char-level rnnkit lm model as the scorer of CTC beam search."""

import numpy as np
import pytest
import torch

from rnnkit.ctc_decoding import prefix_beam_search
from rnnkit.data import Vocab
from rnnkit.errors import RnnkitError
from rnnkit.models.language_model import LanguageModel, LMConfig
from rnnkit.tasks.lm_fusion import CharLMScorer
from rnnkit.tasks.text_generator import TextGenerator


def generator(text="ab ba\nbab a\n", level="char", unk=True):
    torch.manual_seed(0)
    vocab = Vocab.from_text(text, level, unk=unk if level == "char" else None)
    config = LMConfig(vocab_size=len(vocab), hidden_size=8, num_layers=1, embedding_size=0)
    return TextGenerator(LanguageModel(config).eval(), vocab)


def test_contexts_are_the_lms_next_character_log_probs():
    gen = generator()
    scorer = CharLMScorer(gen, " ab")
    start = scorer.initial()
    lp, _ = gen.prime("")
    ids = [gen.vocab.stoi[c] for c in " ab"]
    np.testing.assert_allclose(start.log_probs[1:], lp[0, ids], rtol=1e-5)
    assert start.end == pytest.approx(float(lp[0, gen.vocab.stoi["\n"]]))
    after_a, after_b = scorer.extend([start, start], [2, 3])  # "a", "b"
    for ctx, prefix in ((after_a, "a"), (after_b, "b")):
        lp, _ = gen.prime("\n" + prefix)  # the empty prefix is a line's start
        np.testing.assert_allclose(ctx.log_probs[1:], lp[0, ids], rtol=1e-4, atol=1e-6)


def test_unseen_characters_map_to_unk_or_are_refused():
    scorer = CharLMScorer(generator(), " abz")
    vocab = scorer.generator.vocab
    assert scorer.ids[4] == vocab.unk_id
    with pytest.raises(RnnkitError, match="never seen the character 'z'"):
        CharLMScorer(generator(unk=False), " abz")
    with pytest.raises(RnnkitError, match="word-level language model"):
        CharLMScorer(generator("ab ba\n", "word"), " ab")


def test_fusion_with_a_real_lm_runs_in_beam_search():
    scorer = CharLMScorer(generator(), " ab")
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (12, 4))
    lp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    plain = prefix_beam_search(lp, 4, n_best=4)
    fused = prefix_beam_search(lp, 4, scorer=scorer, lm_weight=1.0, n_best=4)
    assert len(fused) == 4 and all(0 < label <= 3 for labels, _ in fused for label in labels)
    assert [s for _, s in fused] != [s for _, s in plain]
