"""The CTC recogniser: shapes under each subsampling, padding, the loss and its metrics."""

import pytest
import torch

from rnnkit.errors import RnnkitError
from rnnkit.models.speech import SpeechConfig, SpeechRecognizer, ctc_frames_needed


def model(**kw):
    base = dict(hidden_size=8, num_layers=2, num_features=6, alphabet="ab ", dropout=0.0)
    return SpeechRecognizer(SpeechConfig(**{**base, **kw}))


@pytest.mark.parametrize(
    "subsample, factor, steps",
    [("none", 3, [7, 5]), ("stack", 2, [4, 3]), ("stack", 3, [3, 2]), ("conv", 3, [3, 2])],
)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_shapes_and_output_lengths(subsample, factor, steps, cell):
    m = model(subsample=subsample, subsample_factor=factor, cell=cell)
    logits, lengths = m(torch.randn(2, 7, 6), torch.tensor([7, 5]))
    assert logits.shape == (2, steps[0], 4)  # 3 characters + the blank
    assert lengths.tolist() == steps


@pytest.mark.parametrize("subsample", ["stack", "conv"])
def test_zero_padding_never_changes_an_utterances_outputs(subsample):
    m = model(subsample=subsample, subsample_factor=2).eval()
    short = torch.randn(1, 5, 6)  # odd: its last step reads one padded frame either way
    alone, n = m(short, torch.tensor([5]))
    padded = torch.cat([short, torch.zeros(1, 6, 6)], 1)  # PaddedBatches pads with 0
    both, lengths = m(torch.cat([padded, torch.randn(1, 11, 6)]), torch.tensor([5, 11]))
    assert lengths.tolist() == [3, 6] and n.tolist() == [3]
    torch.testing.assert_close(both[0, :3], alone[0])


def batch():
    targets = torch.tensor([[1, 2, 3, 1], [2, 2, -1, -1]])
    return {"inputs": torch.randn(2, 12, 6), "lengths": torch.tensor([12, 9]), "targets": targets}


def test_loss_per_character_trains_and_eval_adds_error_counts():
    m = model(spec_time_masks=2, spec_freq_masks=1)
    out = m.compute_loss(batch())
    assert out.num_tokens == 6 and out.metrics == {} and out.loss.dim() == 0
    out.loss.backward()
    assert all(p.grad is not None for p in m.parameters())
    m.eval()
    with torch.no_grad():
        out = m.compute_loss(batch())
    assert set(out.metrics) == {"char_errors", "chars", "word_errors", "words"}
    assert out.metrics["chars"] == 6 and out.metrics["words"] == 3  # "ab a", "bb"
    rates = m.summarize_metrics(dict(out.metrics), 6)
    assert set(rates) == {"cer", "wer"} and rates["cer"] >= 0


def test_an_overfit_batch_decodes_its_targets():
    torch.manual_seed(0)
    m = model(hidden_size=16, spec_time_masks=0, spec_freq_masks=0)
    b = batch()
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    for _ in range(40):
        opt.zero_grad()
        m.compute_loss(b).loss.backward()
        opt.step()
    m.eval()
    with torch.no_grad():
        logits, lengths = m(b["inputs"], b["lengths"])
        texts = m.greedy_transcripts(torch.log_softmax(logits, -1), lengths)
        metrics = m.compute_loss(b).metrics
    assert texts == ["ab a", "bb"]
    assert m.summarize_metrics(dict(metrics), 6) == {"cer": 0.0, "wer": 0.0}


def test_frames_needed_counts_a_blank_between_repeats():
    assert ctc_frames_needed([1, 2, 3]) == 3
    assert ctc_frames_needed([1, 1, 2, 2, 2]) == 8
    assert ctc_frames_needed([]) == 0


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"subsample": "pool"}, "subsample must be one of"),
        ({"subsample_factor": 0}, "subsample_factor must be >= 1"),
        ({"spec_time_width": -1}, "spec_time_width must be >= 0"),
        ({"alphabet": "aba"}, "alphabet holds a character twice"),
    ],
)
def test_bad_configs(kw, match):
    with pytest.raises(RnnkitError, match=match):
        SpeechConfig(**kw)


def test_a_model_needs_features_and_characters():
    with pytest.raises(RnnkitError, match="num_features"):
        SpeechRecognizer(SpeechConfig(alphabet="ab"))
    with pytest.raises(RnnkitError, match="alphabet is empty"):
        SpeechRecognizer(SpeechConfig(num_features=4))
    with pytest.raises(RnnkitError, match=r"features must have shape \(B, T, 6\)"):
        model()(torch.randn(2, 5, 4))
