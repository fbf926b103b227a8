"""Speech to text end to end on a tiny synthetic corpus: each character a tone, so a small
model learns it in seconds. Lifecycle (resume exact, init_from, cached features), the held-out
split, evaluation counts and every bad input."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rnnkit.errors import RnnkitError
from rnnkit.models.speech import SpeechConfig
from rnnkit.tasks.speech import (
    SpeechDataConfig,
    Transcriber,
    split_by_sentence,
    train_speech,
)
from rnnkit.training import TrainConfig

sf = pytest.importorskip("soundfile")
pytest.importorskip("jiwer")

TONES = {"a": 400.0, "b": 1000.0, "c": 2200.0}
RATE = 16000


def say(text, rate=RATE, rng=None):
    """A 'voice' for which each character is 80 ms of its tone (a space is silence) and 40 ms
    of silence."""
    rng = rng or np.random.default_rng(0)
    t = np.arange(int(0.08 * rate)) / rate
    parts = [np.zeros(int(0.05 * rate))]
    for ch in text:
        parts += [0.5 * np.sin(2 * np.pi * TONES.get(ch, 0.0) * t), np.zeros(int(0.04 * rate))]
    x = np.concatenate(parts)
    return (x + 0.01 * rng.standard_normal(len(x))).astype(np.float32)


def random_texts(n, seed):
    rng = np.random.default_rng(seed)
    return [
        " ".join(
            "".join(rng.choice(list(TONES), rng.integers(1, 4))) for _ in range(rng.integers(1, 4))
        )
        for _ in range(n)
    ]


def write_corpus(folder, name="train.tsv", n=32, seed=0, texts=None, rate=RATE):
    """WAVs and a manifest under ``folder``; returns the manifest's path."""
    folder = Path(folder)
    (folder / "wav").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = ["audio\ttranscript"]
    for i, text in enumerate(texts or random_texts(n, seed)):
        audio = f"wav/{Path(name).stem}{i:03d}.wav"
        sf.write(folder / audio, say(text.lower(), rate, rng), rate)
        rows.append(f"{audio}\t{text}")
    (folder / name).write_text("\n".join(rows) + "\n")
    return folder / name


TINY = dict(
    hidden_size=32,
    num_layers=1,
    dropout=0.0,
    subsample_factor=4,
    spec_freq_masks=1,
    spec_time_masks=1,
)
DATA = dict(n_mels=20, batch_size=8)


def fit(data, out, steps, lr=0.02, model=None, data_config=None, **train):
    options = {"eval_every": 20, "log_every": 10, "progress": False, "threads": 1, **train}
    cfg = TrainConfig(max_steps=steps, lr=lr, **options)
    return train_speech(
        data,
        out,
        model or SpeechConfig(**TINY),
        data_config or SpeechDataConfig(**DATA),
        cfg,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("speech")
    data = write_corpus(tmp, n=48)
    val = write_corpus(tmp, "val.tsv", n=12, seed=1)
    torch.manual_seed(0)
    result = fit(data, tmp / "run", 30, 0.03, data_config=SpeechDataConfig(val=str(val), **DATA))
    return {"tmp": tmp, "data": data, "val": val, "run": tmp / "run", "result": result}


def test_a_tiny_model_learns_the_tones(trained):
    assert trained["result"].best_metrics["val_cer"] < 0.05
    asr = Transcriber.load(trained["run"])
    assert asr.alphabet == " abc"
    res = asr.evaluate(trained["val"])
    assert res["cer"] < 0.05 and res["num_utterances"] == 12
    assert res["unknown_chars"] == 0 and res["too_long"] == 0
    assert res["chars"] == sum(len(t) for t in random_texts(12, 1))
    beam = asr.evaluate(trained["val"], beam=4)
    assert beam["cer"] <= res["cer"] + 0.02
    wavs = sorted((trained["tmp"] / "wav").glob("val0*.wav"))[:3]
    texts = asr.transcribe(wavs)
    assert sum(a == b for a, b in zip(texts, random_texts(12, 1), strict=False)) >= 2


def test_features_are_cached_next_to_the_run(trained):
    index = json.loads((trained["run"] / "features" / "train.json").read_text())
    assert len(index["lengths"]) == 48
    assert (trained["run"] / "features" / "val.bin").is_file()
    dataset = json.loads((trained["run"] / "best" / "dataset.json").read_text())
    assert dataset["num_train"] == 48 and dataset["num_val"] == 12
    assert dataset["skipped_too_long"] == 0


def test_resume_is_exact_and_reuses_the_features(tmp_path, monkeypatch):
    data = write_corpus(tmp_path, n=16)
    fit(data, tmp_path / "straight", 4, eval_every=0)
    fit(data, tmp_path / "split", 2, eval_every=0)
    from rnnkit.data import feature_cache

    def no_recompute(*args, **kw):
        raise AssertionError("features computed again")

    monkeypatch.setattr(feature_cache, "_build", no_recompute)
    cfg = TrainConfig(max_steps=4, lr=0.02, eval_every=0, log_every=10, progress=False, threads=1)
    train_speech(data, tmp_path / "split", train=cfg, resume=True)
    a = load_file(tmp_path / "straight" / "last" / "model.safetensors")
    b = load_file(tmp_path / "split" / "last" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_other_data_and_init_from_keeps_the_alphabet(tmp_path):
    data = write_corpus(tmp_path, n=12)
    fit(data, tmp_path / "run", 2, eval_every=0)
    other = write_corpus(tmp_path / "o", n=12, seed=5)
    with pytest.raises(RnnkitError, match="not the data the run in"):
        train_speech(other, tmp_path / "run", resume=True)
    fine = write_corpus(tmp_path / "f", n=12, seed=6, texts=["ab"] * 12)
    cfg = TrainConfig(max_steps=1, init_from=str(tmp_path / "run" / "last"), progress=False)
    train_speech(fine, tmp_path / "fine", train=cfg, data_config=SpeechDataConfig(**DATA))
    assert Transcriber.load(tmp_path / "fine").alphabet == " abc"  # not just "ab"


def test_held_out_sentences_are_never_trained_on(tmp_path):
    texts = random_texts(10, 3)
    data = write_corpus(tmp_path, texts=texts + texts)  # every sentence twice
    from rnnkit.data.audio import read_manifest

    dc = SpeechDataConfig()
    train, val = split_by_sentence(read_manifest(data), 0.3, 0, dc)
    assert len(train) + len(val) == 20 and val
    assert not {u.transcript for u in train} & {u.transcript for u in val}
    assert len(val) % 2 == 0  # both utterances of each held-out sentence


def test_transcripts_too_long_for_their_frames_are_skipped_and_counted(tmp_path, caplog):
    data = write_corpus(tmp_path, n=12)
    short = tmp_path / "wav" / "short.wav"
    sf.write(short, say("a"), RATE)  # 190 ms: 5 steps, too few for 20 characters
    with open(data, "a") as f:
        f.write(f"wav/short.wav\t{'ab' * 10}\n")
    with caplog.at_level(logging.WARNING):
        fit(data, tmp_path / "run", 1, eval_every=0)
    assert "skipped 1 utterance(s) whose transcript is longer than CTC can align" in caplog.text
    assert "short.wav" in caplog.text
    dataset = json.loads((tmp_path / "run" / "last" / "dataset.json").read_text())
    assert dataset["skipped_too_long"] == 1
    # At evaluation it is scored (its errors count) and reported.
    res = Transcriber.load(tmp_path / "run").evaluate(data)
    assert res["too_long"] == 1 and res["num_utterances"] == 13


def test_every_utterance_too_long_is_an_error_and_writes_nothing(tmp_path):
    data = write_corpus(tmp_path, texts=["abcabcabc"] * 4)
    model = SpeechConfig(**{**TINY, "subsample_factor": 30})
    with pytest.raises(RnnkitError, match="no utterance is left to train on"):
        fit(data, tmp_path / "run", 1, model=model)
    assert not (tmp_path / "run").exists()


def test_characters_outside_the_alphabet_are_counted_at_evaluation(trained, tmp_path):
    data = write_corpus(tmp_path, "odd.tsv", texts=["ab X", "cc"])  # X: never trained on
    res = Transcriber.load(trained["run"]).evaluate(data)
    assert res["unknown_chars"] == 1  # "X" is lower-cased to "x", still unknown
    assert res["char_errors"] >= 1 and res["num_utterances"] == 2


BAD_AUDIO = {
    "missing audio": lambda path: None,
    "not audio": lambda path: path.write_text("RIFF? no, just text"),
    "shorter than one frame": lambda path: sf.write(path, np.zeros(200, np.float32), RATE),
    "empty audio": lambda path: sf.write(path, np.zeros(0, np.float32), RATE),
}


def with_bad_row(folder, case):
    """A 6-utterance corpus whose 8th line is a bad row of kind ``case`` (BAD_AUDIO)."""
    data = write_corpus(folder, n=6)
    BAD_AUDIO[case](folder / "wav" / "bad.wav")
    name = "gone.wav" if case == "missing audio" else "bad.wav"
    with open(data, "a") as f:
        f.write(f"wav/{name}\tab\n")
    return data


@pytest.mark.parametrize(
    "case, match",
    [
        ("missing audio", r"train.tsv:8: audio file .*gone.wav does not exist"),
        ("not audio", r"bad.wav \(.*train.tsv:8\) is not audio that libsndfile reads"),
        ("shorter than one frame", r"bad.wav \(.*train.tsv:8\) is too short: 200 samples"),
        ("empty audio", r"bad.wav \(.*train.tsv:8\) holds no audio samples"),
    ],
)
def test_bad_audio_is_one_error_naming_the_file_and_writes_nothing(tmp_path, case, match):
    data = with_bad_row(tmp_path, case)
    with pytest.raises(RnnkitError, match=match):
        fit(data, tmp_path / "run", 1)
    assert not (tmp_path / "run").exists()


def test_stereo_and_other_rates_are_read(tmp_path, caplog):
    data = write_corpus(tmp_path, n=6, rate=8000)
    stereo = np.stack([say("ab"), say("ab")], 1)
    sf.write(tmp_path / "wav" / "st.wav", stereo, RATE)
    with open(data, "a") as f:
        f.write("wav/st.wav\tab\n")
    with caplog.at_level(logging.WARNING):
        fit(data, tmp_path / "run", 1, eval_every=0)
    assert "1 audio file(s) had several channels and were downmixed" in caplog.text
    with pytest.raises(RnnkitError, match="sampled at 8000 Hz but the model reads 16000 Hz"):
        fit(data, tmp_path / "r2", 1, data_config=SpeechDataConfig(resample=False, **DATA))
