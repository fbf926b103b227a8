"""The sequence classifier: shapes for every pooling, padding never changes an example's
logits, attention weights are a distribution over the real steps, metrics from confusion."""

import pytest
import torch

from rnnkit.errors import RnnkitError
from rnnkit.models.classifier import ClassifierConfig, SequenceClassifier, confusion_scores

V, K = 20, 3


def make(pooling="max", **kw):
    torch.manual_seed(0)
    cfg = dict(vocab_size=V, num_classes=K, hidden_size=8, embedding_size=6, dropout=0.0)
    return SequenceClassifier(ClassifierConfig(pooling=pooling, **{**cfg, **kw})).eval()


@pytest.mark.parametrize("pooling", ["final", "mean", "max", "attention"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_padding_never_changes_an_examples_logits(pooling, cell):
    model = make(pooling, cell=cell, num_layers=2)
    short = torch.randint(1, V, (1, 4))
    alone = model(short, torch.tensor([4]))
    padded = torch.cat([short, torch.zeros(1, 6, dtype=torch.long)], 1)
    batch = torch.cat([padded, torch.randint(1, V, (1, 10))])
    together = model(batch, torch.tensor([4, 10]))
    assert together.shape == (2, K)
    torch.testing.assert_close(together[:1], alone, rtol=1e-5, atol=1e-6)


def test_attention_weights_are_a_distribution_over_real_steps():
    model = make("attention")
    x = torch.randint(1, V, (3, 7))
    _, w = model.encode(x, torch.tensor([7, 3, 1]))
    assert w.shape == (3, 7)
    torch.testing.assert_close(w.sum(1), torch.ones(3))
    assert (w[1, 3:] == 0).all() and w[2, 0] == 1


def test_series_input_and_loss_metrics():
    model = make("final", input_kind="series", vocab_size=0, input_channels=2)
    batch = {
        "inputs": torch.randn(4, 5, 2),
        "lengths": torch.tensor([5, 5, 2, 3]),
        "targets": torch.tensor([0, 1, 2, 1]),
    }
    out = model.compute_loss(batch)
    assert out.loss.dim() == 0 and out.num_tokens == 4
    confusion = out.metrics["confusion"]
    assert confusion.shape == (K, K) and confusion.sum() == 4
    assert confusion.sum(1).tolist() == [1, 2, 1]  # rows are the true classes
    with pytest.raises(RnnkitError, match=r"series inputs must have shape \(B, T, C\)"):
        model(torch.randn(4, 5))


def test_confusion_scores():
    s = confusion_scores(torch.tensor([[3, 1], [0, 4]]))
    assert s["accuracy"] == pytest.approx(7 / 8)
    f1_a, f1_b = 2 * 1 * 0.75 / 1.75, 2 * 0.8 * 1 / 1.8
    assert s["macro_f1"] == pytest.approx((f1_a + f1_b) / 2)
    assert s["support"] == [4, 4]


def test_config_errors():
    with pytest.raises(RnnkitError, match="pooling must be one of"):
        ClassifierConfig(pooling="sum")
    with pytest.raises(RnnkitError, match="num_classes must be >= 2"):
        SequenceClassifier(ClassifierConfig(vocab_size=5, num_classes=1))
    with pytest.raises(RnnkitError, match="hidden_size must be int"):
        ClassifierConfig(hidden_size="big")
