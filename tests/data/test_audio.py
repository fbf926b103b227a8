"""Reading audio (mono, resampled, every bad file one clear error) and speech manifests."""

import logging

import numpy as np
import pytest

from rnnkit.data.audio import read_audio, read_manifest
from rnnkit.errors import RnnkitError

sf = pytest.importorskip("soundfile")


def tone(freq=440.0, seconds=0.5, rate=16000, amplitude=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(x, rate):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / rate)[spectrum.argmax()]


def test_mono_wav_and_flac_read_as_float32(tmp_path):
    x = tone()
    for name in ("a.wav", "a.flac"):
        sf.write(tmp_path / name, x, 16000)
        y, channels = read_audio(tmp_path / name, 16000)
        assert y.dtype == np.float32 and y.shape == x.shape and channels == 1
        assert np.abs(y - x).max() < 1e-3  # 16-bit quantisation


def test_stereo_is_averaged_with_a_warning(tmp_path, caplog):
    left, right = tone(440), tone(880)
    sf.write(tmp_path / "st.wav", np.stack([left, right], 1), 16000)
    with caplog.at_level(logging.WARNING):
        y, channels = read_audio(tmp_path / "st.wav", 16000)
    assert channels == 2 and np.abs(y - (left + right) / 2).max() < 1e-3
    assert "st.wav: 2 channels, downmixed to mono" in caplog.text
    caplog.clear()
    read_audio(tmp_path / "st.wav", 16000, warn=False)
    assert not caplog.text


def test_another_rate_is_resampled_or_refused(tmp_path):
    sf.write(tmp_path / "a.wav", tone(1000.0, 1.0, 22050), 22050)
    y, _ = read_audio(tmp_path / "a.wav", 16000)
    assert abs(len(y) - 16000) <= 1
    assert abs(peak_hz(y, 16000) - 1000.0) < 2  # the pitch survives
    with pytest.raises(RnnkitError, match=r"a.wav \(m.tsv:3\) is sampled at 22050 Hz but the mod"):
        read_audio(tmp_path / "a.wav", 16000, resample=False, where="m.tsv:3")


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_text("hello, not a sound"), "is not audio that libsndfile reads"),
        (lambda p: p.write_bytes(b""), "is not audio that libsndfile reads"),
        (lambda p: sf.write(p, np.zeros(0, np.float32), 16000), "holds no audio samples"),
    ],
    ids=["missing", "directory", "text", "empty file", "no samples"],
)
def test_bad_audio_files_name_the_file(tmp_path, make, match):
    path = tmp_path / "x.wav"
    make(path)
    with pytest.raises(RnnkitError, match=match) as err:
        read_audio(path, 16000, where="m.tsv:2")
    assert str(path) in str(err.value) and "(m.tsv:2)" in str(err.value)


def write_wavs(folder, names):
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(folder / name, tone(seconds=0.1), 16000)


def test_tsv_with_header_paths_relative_to_the_manifest(tmp_path):
    write_wavs(tmp_path, ["wav/a.wav", "wav/b.wav"])
    (tmp_path / "m.tsv").write_text("audio\ttranscript\nwav/a.wav\thello  world\n\nwav/b.wav\tok\n")
    utts = read_manifest(tmp_path / "m.tsv")
    assert [u.audio for u in utts] == [tmp_path / "wav/a.wav", tmp_path / "wav/b.wav"]
    assert [u.transcript for u in utts] == ["hello  world", "ok"]
    assert [u.where for u in utts] == [f"{tmp_path / 'm.tsv'}:2", f"{tmp_path / 'm.tsv'}:4"]


def test_tsv_without_header_and_absolute_paths(tmp_path):
    write_wavs(tmp_path, ["a.wav"])
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "m.tsv").write_text(f"{tmp_path / 'a.wav'}\tyes\n")
    assert read_manifest(tmp_path / "sub" / "m.tsv")[0].audio == tmp_path / "a.wav"


def test_csv_quoted_and_deepspeech_columns(tmp_path):
    write_wavs(tmp_path, ["a.wav", "b.wav"])
    (tmp_path / "m.csv").write_text(
        'wav_filename,wav_filesize,transcript\na.wav,123,"well, yes"\nb.wav,9,no\n'
    )
    utts = read_manifest(tmp_path / "m.csv")
    assert [u.transcript for u in utts] == ["well, yes", "no"]


@pytest.mark.parametrize(
    "text, match",
    [
        ("", r"m.tsv \(a manifest\) is empty"),
        ("audio\ttranscript\n", "holds no utterances"),
        ("a.wav\thi\na.wav\n", "m.tsv:2: expected AUDIO<TAB>TRANSCRIPT, got 1 field"),
        ("a.wav\t  \n", "m.tsv:1: the transcript of a.wav is empty"),
        ("\thi\n", "m.tsv:1: the audio path is empty"),
        ("a.wav\thi\nmissing.wav\tho\n", "m.tsv:2: audio file .*missing.wav does not exist"),
    ],
    ids=["empty", "header only", "one field", "no transcript", "no audio", "missing audio"],
)
def test_bad_manifests_name_the_line(tmp_path, text, match):
    write_wavs(tmp_path, ["a.wav"])
    (tmp_path / "m.tsv").write_text(text)
    with pytest.raises(RnnkitError, match=match):
        read_manifest(tmp_path / "m.tsv")


def test_a_quote_left_open_in_a_csv_names_the_line(tmp_path):
    write_wavs(tmp_path, ["a.wav"])
    (tmp_path / "m.csv").write_text('audio,transcript\na.wav,ok\na.wav,"never closed\n')
    with pytest.raises(RnnkitError, match=r"m.csv:3: not valid CSV"):
        read_manifest(tmp_path / "m.csv")
