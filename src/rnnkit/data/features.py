r"""Spectral vectors for speech: log-mel filterbanks, per-utterance normalisation, SpecAugment.

The recogniser reads a sequence of spectral vectors, one every ``hop_ms`` (10 ms):

1. frames of ``n_fft`` samples every ``hop`` samples (no padding at the ends), each multiplied
   by a periodic Hann window of ``win_ms`` (25 ms) centred in the frame;
2. the power spectrum ``|rfft(frame)|²`` (n_fft/2 + 1 bins);
3. ``n_mels`` triangular filters evenly spaced on the Slaney mel scale, each normalised to unit
   area (librosa's default filterbank);
4. ``log(mel + 1e-6)``;
5. per utterance, each band shifted to mean 0 and scaled to variance 1 over time, so that the
   loudness and the microphone of a recording matter less.

Steps 1–3 are librosa's ``melspectrogram(center=False)``, written in NumPy so that the speech
extra needs no librosa (numba, scipy, scikit-learn); the tests check it against librosa.
A file shorter than one frame (n_fft samples, 32 ms at 16 kHz) has no features: an error.

:func:`spec_augment` masks random bands of channels and stretches of time during training
(Park et al. 2019, without time warping), in place of the zero mean of the normalised features.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from rnnkit.errors import RnnkitError

LOG_FLOOR = 1e-6


def frame_sizes(sample_rate: int, win_ms: float, hop_ms: float) -> tuple[int, int, int]:
    """(n_fft, win_length, hop_length) in samples: n_fft is the power of two ≥ the window."""
    win = round(sample_rate * win_ms / 1000)
    hop = round(sample_rate * hop_ms / 1000)
    if win < 2 or hop < 1:
        raise RnnkitError(
            f"a {win_ms} ms window every {hop_ms} ms at {sample_rate} Hz is too short: "
            "expected at least 2 samples per window and 1 per hop"
        )
    return 1 << (win - 1).bit_length(), win, hop


def num_frames(num_samples: int, n_fft: int, hop: int) -> int:
    """Frames of ``num_samples`` samples: 0 when shorter than one frame."""
    return 0 if num_samples < n_fft else 1 + (num_samples - n_fft) // hop


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    log_mel = 15.0 + np.log(np.maximum(hz, 1e-12) / 1000.0) / (math.log(6.4) / 27)
    return np.where(hz >= 1000.0, log_mel, hz / (200.0 / 3))


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(
        mel >= 15.0, 1000.0 * np.exp((math.log(6.4) / 27) * (mel - 15.0)), mel * (200.0 / 3)
    )


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float32: triangles on the Slaney mel scale, unit area each
    (librosa.filters.mel's default)."""
    fmax = sample_rate / 2 if fmax is None else fmax
    if not 0 <= fmin < fmax <= sample_rate / 2:
        raise RnnkitError(f"need 0 <= fmin < fmax <= {sample_rate / 2} Hz, got {fmin}, {fmax}")
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def _hann(win: int, n_fft: int) -> np.ndarray:
    """A periodic Hann window of ``win`` samples centred in ``n_fft`` zeros."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    out = np.zeros(n_fft)
    left = (n_fft - win) // 2
    out[left : left + win] = window
    return out.astype(np.float32)


def mel_power(
    samples: np.ndarray, sample_rate: int, n_mels: int = 80, win_ms: float = 25, hop_ms: float = 10
) -> np.ndarray:
    """Mel power spectrogram (T, n_mels) float32 of mono ``samples`` (N,): steps 1-3 above."""
    n_fft, win, hop = frame_sizes(sample_rate, win_ms, hop_ms)
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise RnnkitError(f"samples must be mono, shape (N,), got {samples.shape}")
    if num_frames(len(samples), n_fft, hop) == 0:
        raise RnnkitError(
            f"{len(samples)} samples are shorter than one {n_fft}-sample frame "
            f"({1000 * n_fft / sample_rate:.0f} ms at {sample_rate} Hz)"
        )
    frames = np.lib.stride_tricks.sliding_window_view(samples, n_fft)[::hop]
    spectrum = np.fft.rfft(frames * _hann(win, n_fft), axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    return power @ mel_filterbank(sample_rate, n_fft, n_mels).T


def log_mel(
    samples: np.ndarray,
    sample_rate: int,
    n_mels: int = 80,
    win_ms: float = 25,
    hop_ms: float = 10,
    normalize: bool = True,
) -> np.ndarray:
    """The features the recogniser reads: (T, n_mels) float32 log-mel filterbanks of (N,)
    ``samples``, normalised per utterance when ``normalize`` (see the module docstring)."""
    features = np.log(mel_power(samples, sample_rate, n_mels, win_ms, hop_ms) + LOG_FLOOR)
    return normalize_utterance(features) if normalize else features.astype(np.float32)


def normalize_utterance(features: np.ndarray) -> np.ndarray:
    """(T, F) → each column shifted to mean 0 and scaled to variance 1 over T (a constant
    column becomes zeros)."""
    x = np.asarray(features, dtype=np.float64)
    std = x.std(axis=0)
    return ((x - x.mean(axis=0)) / np.where(std > 1e-5, std, 1.0)).astype(np.float32)


def _bands(
    num: int, width: int, size: int, limit: Tensor, generator: torch.Generator | None
) -> Tensor:
    """(B, size) bool: ``num`` random bands per row, each 0..width long, inside 0..limit[b]."""
    B = limit.shape[0]
    w = (torch.rand(B, num, generator=generator) * (width + 1)).floor()
    w = torch.minimum(w, limit[:, None].to(w.dtype))
    start = (torch.rand(B, num, generator=generator) * (limit[:, None] - w + 1)).floor()
    pos = torch.arange(size, dtype=w.dtype)
    inside = (pos >= start[..., None]) & (pos < (start + w)[..., None])  # (B, num, size)
    return inside.any(1)


def spec_augment(
    features: Tensor,
    lengths: Tensor,
    *,
    freq_masks: int = 2,
    freq_width: int = 10,
    time_masks: int = 2,
    time_width: int = 20,
    generator: torch.Generator | None = None,
) -> Tensor:
    """SpecAugment's masks: (B, T, F) features with, per row, ``freq_masks`` bands of up to
    ``freq_width`` channels and ``time_masks`` stretches of up to ``time_width`` frames (within
    the row's length) set to 0. A new tensor; draws from ``generator`` (default: torch's)."""
    B, T, F = features.shape
    mask = torch.zeros(B, T, F, dtype=torch.bool)
    if freq_masks and freq_width:
        full = torch.full((B,), F, dtype=torch.int64)
        mask |= _bands(freq_masks, freq_width, F, full, generator)[:, None, :]
    if time_masks and time_width:
        mask |= _bands(time_masks, time_width, T, lengths.cpu(), generator)[:, :, None]
    return features.masked_fill(mask.to(features.device), 0.0)
