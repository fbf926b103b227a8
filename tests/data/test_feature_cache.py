"""Features computed once into a memory map, recomputed only when the audio or settings change."""

import json
import logging
import os

import numpy as np
import pytest

from rnnkit.data import feature_cache
from rnnkit.data.audio import Utterance
from rnnkit.data.feature_cache import cached_features, compute_features
from rnnkit.errors import RnnkitError

sf = pytest.importorskip("soundfile")
SETTINGS = {
    "sample_rate": 16000,
    "resample": True,
    "n_mels": 20,
    "win_ms": 25.0,
    "hop_ms": 10.0,
    "normalize": True,
}


def utterances(folder, n=3, channels=1):
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        x = rng.standard_normal((1600 * (i + 1), channels)).astype(np.float32) * 0.1
        sf.write(folder / f"{i}.wav", x, 16000)
        out.append(Utterance(folder / f"{i}.wav", "x", f"m.tsv:{i + 1}"))
    return out


@pytest.fixture
def counted(monkeypatch):
    calls = []
    real = feature_cache.extract_features

    def extract(u, settings):
        calls.append(u.audio.name)
        return real(u, settings)

    monkeypatch.setattr(feature_cache, "extract_features", extract)
    return calls


def test_computed_once_then_read_from_the_memory_map(tmp_path, counted):
    utts = utterances(tmp_path)
    first = cached_features(utts, tmp_path / "cache", "train", SETTINGS)
    assert len(counted) == 3
    again = cached_features(utts, tmp_path / "cache", "train", SETTINGS)
    assert len(counted) == 3  # nothing recomputed
    assert isinstance(again[0], np.memmap) and again[0].dtype == np.float16
    assert [len(x) for x in again] == [7, 17, 27]
    direct = compute_features(utts, SETTINGS)
    for a, b, c in zip(first, again, direct, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, c, atol=5e-3)
    index = json.loads((tmp_path / "cache" / "train.json").read_text())
    assert index["lengths"] == [7, 17, 27] and index["offsets"] == [0, 7, 24]


def test_changed_audio_settings_or_truncation_recompute(tmp_path, counted):
    utts = utterances(tmp_path)
    cached_features(utts, tmp_path / "c", "train", SETTINGS)
    st = utts[1].audio.stat()
    os.utime(utts[1].audio, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    cached_features(utts, tmp_path / "c", "train", SETTINGS)
    assert len(counted) == 6
    cached_features(utts, tmp_path / "c", "train", {**SETTINGS, "n_mels": 10})
    assert len(counted) == 9
    data = tmp_path / "c" / "train.bin"
    data.write_bytes(data.read_bytes()[:100])
    out = cached_features(utts, tmp_path / "c", "train", {**SETTINGS, "n_mels": 10})
    assert len(counted) == 12 and out[2].shape == (27, 10)


def test_a_bad_file_leaves_no_cache_behind(tmp_path):
    utts = utterances(tmp_path)
    sf.write(tmp_path / "short.wav", np.zeros(100, np.float32), 16000)
    bad = [*utts, Utterance(tmp_path / "short.wav", "x", "m.tsv:9")]
    with pytest.raises(RnnkitError, match=r"short.wav \(m.tsv:9\) is too short: 100 samples"):
        cached_features(bad, tmp_path / "c", "train", SETTINGS)
    assert list((tmp_path / "c").iterdir()) == []


def test_stereo_files_warn_once(tmp_path, caplog):
    utts = utterances(tmp_path, channels=2)
    with caplog.at_level(logging.WARNING):
        out = cached_features(utts, tmp_path / "c", "train", SETTINGS)
    assert len(out) == 3
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "3 audio file(s) had several channels" in lines[0]
