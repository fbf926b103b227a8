"""Log-mel features against librosa, per-utterance normalisation, SpecAugment masks."""

import numpy as np
import pytest
import torch

from rnnkit.data.features import (
    frame_sizes,
    log_mel,
    mel_filterbank,
    mel_power,
    normalize_utterance,
    num_frames,
    spec_augment,
)
from rnnkit.errors import RnnkitError


def noise_and_tones(seconds=1.0, rate=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 300 * t) + 0.2 * np.sin(2 * np.pi * 2500 * t)
    return (x + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def test_frame_sizes_and_counts():
    assert frame_sizes(16000, 25, 10) == (512, 400, 160)
    assert frame_sizes(8000, 25, 10) == (256, 200, 80)
    assert num_frames(511, 512, 160) == 0
    assert num_frames(512, 512, 160) == 1
    assert num_frames(16000, 512, 160) == 97
    with pytest.raises(RnnkitError, match="too short"):
        frame_sizes(16000, 0.01, 10)


@pytest.mark.parametrize("rate, n_mels", [(16000, 80), (8000, 40), (22050, 64)])
def test_filterbank_and_mel_spectrogram_match_librosa(rate, n_mels):
    librosa = pytest.importorskip("librosa")
    n_fft, win, hop = frame_sizes(rate, 25, 10)
    ours = mel_filterbank(rate, n_fft, n_mels)
    ref = librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=n_mels)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-7)
    x = noise_and_tones(rate=rate)
    ref_mel = librosa.feature.melspectrogram(
        y=x, sr=rate, n_fft=n_fft, hop_length=hop, win_length=win, center=False, n_mels=n_mels
    ).T
    ours_mel = mel_power(x, rate, n_mels)
    assert ours_mel.shape == ref_mel.shape == (num_frames(len(x), n_fft, hop), n_mels)
    np.testing.assert_allclose(np.log(ours_mel + 1e-6), np.log(ref_mel + 1e-6), atol=2e-3)


def test_a_tone_lights_the_band_of_its_frequency():
    rate = 16000
    t = np.arange(rate) / rate
    fb = mel_filterbank(rate, 512, 40)
    centres = np.fft.rfftfreq(512, 1 / rate)[fb.argmax(1)]
    for freq in (250.0, 1000.0, 4000.0):
        features = log_mel(np.sin(2 * np.pi * freq * t), rate, 40, normalize=False)
        band = int(features.mean(0).argmax())
        assert abs(centres[band] - freq) <= 0.15 * freq + 40, (freq, centres[band])


def test_normalisation_per_band():
    features = log_mel(noise_and_tones(), 16000, 40)
    assert features.dtype == np.float32 and features.shape == (97, 40)
    np.testing.assert_allclose(features.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(features.std(0), 1, atol=1e-3)
    constant = normalize_utterance(np.ones((5, 3)))
    assert np.array_equal(constant, np.zeros((5, 3), np.float32))


def test_shorter_than_one_frame_or_not_mono_is_an_error():
    with pytest.raises(RnnkitError, match="511 samples are shorter than one 512-sample frame"):
        log_mel(np.zeros(511), 16000)
    with pytest.raises(RnnkitError, match="must be mono"):
        log_mel(np.zeros((1000, 2)), 16000)


def test_spec_augment_masks_stay_within_limits_and_repeat_with_the_seed():
    x = torch.ones(3, 50, 20)
    lengths = torch.tensor([50, 30, 10])
    masks = dict(freq_masks=2, freq_width=4, time_masks=2, time_width=6)
    y = spec_augment(x, lengths, **masks, generator=torch.Generator().manual_seed(1))
    assert torch.equal(x, torch.ones(3, 50, 20))  # a new tensor
    for b in range(3):
        zero_bands = (y[b] == 0).all(0)  # channels masked at every frame
        assert int(zero_bands.sum()) <= 8
        zero_frames = (y[b] == 0).all(1)
        assert int(zero_frames.sum()) <= 12
        assert not zero_frames[int(lengths[b]) :].any()  # never beyond the length
    assert (y == 0).any()
    z = spec_augment(x, lengths, **masks, generator=torch.Generator().manual_seed(1))
    assert torch.equal(y, z)
    off = spec_augment(x, lengths, freq_masks=0, time_masks=0)
    assert torch.equal(off, x)
