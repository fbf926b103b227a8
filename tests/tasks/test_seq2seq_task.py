"""The translation task end to end in Python: data → run directory → exact resume, and the
Translator's searches, truncation, attention and <unk> replacement."""

import itertools
import logging
import random

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rnnkit.data.parallel import ParallelData
from rnnkit.errors import RnnkitError
from rnnkit.models.seq2seq import Seq2SeqConfig
from rnnkit.tasks.seq2seq import Seq2SeqDataConfig, train_seq2seq
from rnnkit.tasks.translator import Translator, save_attention_png
from rnnkit.training import TrainConfig

WORDS = "red blue green cat dog sat ran big small house".split()  # noqa: SIM905
SMALL = Seq2SeqConfig(hidden_size=16, embedding_size=8, num_layers=1, dropout=0.1)


def pairs(n=120, seed=0) -> ParallelData:
    """Sentences and their reversal in upper case: a task an encoder–decoder can learn."""
    rng = random.Random(seed)
    src, tgt = [], []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 7))]
        src.append(" ".join(words))
        tgt.append(" ".join(w.upper() for w in reversed(words)) + " .")
    return ParallelData(src, tgt, [f"toy:{i + 1}" for i in range(n)], "toy")


def train_config(**changes) -> TrainConfig:
    base = dict(
        epochs=2, lr=5e-3, threads=1, device="cpu", progress=False, log_every=5, monitor="val_bleu"
    )
    return TrainConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("s2s") / "run"
    dc = Seq2SeqDataConfig(batch_size=16, max_source_length=6, val_fraction=0.1)
    result = train_seq2seq(pairs(), out, SMALL, dc, train_config())
    return out, result


def test_run_reports_bleu_and_the_length_filter(trained, caplog):
    out, result = trained
    assert {"val_loss", "val_accuracy", "val_bleu", "val_exact_match"} <= set(result.last_metrics)
    assert result.monitor == "val_bleu" and (out / "best" / "tokenizers.json").exists()
    from rnnkit.checkpoint import load_extra_file

    report = load_extra_file(out / "best", "dataset.json")
    dropped = report["length_filter"]["source_too_long"]
    assert dropped > 0 and report["num_train"] == 108 - dropped  # 120 pairs, 12 validate
    assert report["length_filter"]["message"].startswith(f"toy: dropped {dropped} of 108 pairs")


def test_resume_is_exact(tmp_path):
    """Scheduled sampling draws coins and reads the step: a run cut in two and resumed ends
    with the same weights as one uninterrupted run."""
    model = Seq2SeqConfig(
        **{
            **SMALL.__dict__,
            "teacher_forcing": 0.9,
            "sampling_schedule": "linear",
            "sampling_steps": 10,
        }
    )
    dc = Seq2SeqDataConfig(batch_size=16)
    train_seq2seq(pairs(60), tmp_path / "a", model, dc, train_config(max_steps=8))
    train_seq2seq(pairs(60), tmp_path / "b", model, dc, train_config(max_steps=4))
    train_seq2seq(pairs(60), tmp_path / "b", train=train_config(max_steps=8), resume=True)
    a = load_file(tmp_path / "a" / "last" / "model.safetensors")
    b = load_file(tmp_path / "b" / "last" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(RnnkitError, match="is not the data the run .* was trained on"):
        train_seq2seq(
            pairs(60, seed=1), tmp_path / "b", train=train_config(max_steps=9), resume=True
        )


def test_subword_shared_vocabulary(tmp_path):
    model = Seq2SeqConfig(
        **{**SMALL.__dict__, "share_embeddings": True, "tie_embeddings": True, "attention": "dot"}
    )
    dc = Seq2SeqDataConfig(tokenizer="subword", subword_vocab_size=40, batch_size=32)
    train_seq2seq(pairs(), tmp_path / "r", model, dc, train_config(epochs=1))
    tr = Translator.load(tmp_path / "r")
    assert tr.sides.shared and tr.sides.source_vocab == tr.sides.target_vocab
    assert tr.sides.source_tokenizer.kind == "subword"
    assert isinstance(tr.translate(["red cat"])[0].text, str)


def test_translate_searches(trained):
    out, _ = trained
    tr = Translator.load(out)
    texts = ["red cat sat", "dog", "big small house ran"]
    greedy = tr.translate(texts, batch_size=2, scores=True)
    assert [t.source for t in greedy] == texts  # order kept across length-sorted batches
    assert all(t.score is not None and t.score <= 0 for t in greedy)
    beam = tr.translate(texts, method="beam", beam_width=4, n_best=3)
    assert all(len(t.alternatives) == 3 for t in beam)
    assert all(a[1] >= b[1] for t in beam for a, b in itertools.pairwise(t.alternatives))
    s1 = tr.translate(texts, method="sample", seed=5, n_best=2)
    s2 = tr.translate(texts, method="sample", seed=5, n_best=2)
    assert [t.alternatives for t in s1] == [t.alternatives for t in s2]
    short = tr.translate(texts, max_len_a=0, max_len_b=1)
    assert all(len(t.tokens) <= 1 for t in short)
    with pytest.raises(RnnkitError, match="n_best needs beam"):
        tr.translate(texts, n_best=2)
    with pytest.raises(RnnkitError, match="input 1 is empty"):
        tr.translate(["  "])


def test_long_sources_are_cut_with_a_warning_or_refused(trained, caplog):
    tr = Translator.load(trained[0])
    long = " ".join(["red"] * 9)
    with caplog.at_level(logging.WARNING, logger="rnnkit"):
        out = tr.translate(["dog", long], where=["f:1", "f:2"])
    assert out[1].truncated == 9 and len(out[1].source_tokens) == 6  # the training limit
    assert "f:2: the source has 9 tokens, more than the maximum length 6" in caplog.text
    with pytest.raises(RnnkitError, match="f:2: the source has 9 tokens"):
        tr.translate(["dog", long], where=["f:1", "f:2"], refuse_long=True)
    assert tr.translate([long], max_source_length=0)[0].truncated == 0


def test_attention_and_replace_unk(trained, tmp_path):
    tr = Translator.load(trained[0])
    with torch.no_grad():  # make <unk> the model's only word: each becomes a source word
        tr.model.out.bias[tr.sides.target_vocab.unk_id] = 100.0
    out = tr.translate(
        ["zebra red okapi"], attention=True, replace_unk=True, max_len_a=0, max_len_b=2
    )[0]
    weights = out.attention
    assert weights.shape == (3, 3)  # 2 outputs + <eos>, 3 source words
    np.testing.assert_allclose(weights.sum(1), 1.0, rtol=1e-5)
    assert out.tokens == [out.source_tokens[int(weights[t].argmax())] for t in range(2)]
    plain = tr.translate(["zebra red okapi"], max_len_a=0, max_len_b=2)[0]
    assert plain.tokens == ["<unk>", "<unk>"]
    save_attention_png(tmp_path / "a.png", out)
    assert (tmp_path / "a.png").stat().st_size > 1000


def test_evaluate(trained):
    tr = Translator.load(trained[0])
    res = tr.evaluate(pairs(10, seed=3))
    assert res["num_sentences"] == 10 and len(res["hypotheses"]) == 10
    assert {"bleu", "chrf", "exact_match", "bleu_signature"} <= set(res)
