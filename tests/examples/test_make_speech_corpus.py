"""examples/make_speech_corpus.py speaks a few sentences with espeak-ng into manifests that
rnnkit reads (skipped where espeak-ng is not installed: .ci/run installs it)."""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from rnnkit.data.audio import read_manifest
from rnnkit.data.feature_cache import compute_features

SCRIPT = Path(__file__).parents[2] / "examples" / "make_speech_corpus.py"
pytest.importorskip("soundfile")


def load_script():
    spec = importlib.util.spec_from_file_location("make_speech_corpus", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_normalise_keeps_only_speakable_lines():
    corpus = load_script()
    assert corpus.normalise(" the company 's shares do n't rise ", "ptb") == (
        "the company's shares don't rise"
    )
    assert corpus.normalise(" pierre <unk> N years old ", "ptb") is None
    assert corpus.normalise(" a $ N million loss ", "ptb") is None
    assert corpus.normalise("ROMEO:", "shakespeare") is None
    assert corpus.normalise("O, Romeo, Romeo! wherefore art thou", "shakespeare") == (
        "o romeo romeo wherefore art thou"
    )


def test_a_tiny_corpus_with_a_held_out_voice(tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    text = tmp_path / "text.txt"
    lines = [
        "the market rose today",
        "prices fell sharply",
        "the board met on monday",
        "analysts expect more gains",
        "shares closed higher",
        "a N % rise",  # not speakable as written: left out
    ]
    text.write_text("\n".join(lines) + "\n")
    out = tmp_path / "corpus"
    argv = [
        "--out", str(out), "--text", str(text), "--train-sentences", "3",
        "--dev-sentences", "1", "--test-sentences", "1", "--per-sentence", "2",
        "--voices", "en-us+m1,en-gb+f2", "--heldout-voice", "en-gb-scotland+m3",
        "--noise-fraction", "0.5",
    ]  # fmt: skip
    assert load_script().main(argv) == 0
    train, dev = read_manifest(out / "train.tsv"), read_manifest(out / "dev.tsv")
    test, voice = read_manifest(out / "test.tsv"), read_manifest(out / "test_voice.tsv")
    assert (len(train), len(dev), len(test), len(voice)) == (6, 1, 1, 1)
    assert [u.transcript for u in test] == [u.transcript for u in voice]
    held = {u.transcript for u in dev + test}
    assert not held & {u.transcript for u in train}
    lm = (out / "lm.txt").read_text().splitlines()
    assert not held & set(lm) and len(lm) == 3
    info = json.loads((out / "corpus.json").read_text())
    assert info["utterances"]["train.tsv"] == 6
    settings = dict(sample_rate=16000, resample=True, n_mels=40, win_ms=25, hop_ms=10)
    features = compute_features(train[:2], {**settings, "normalize": True})
    assert all(len(x) > 50 and x.shape[1] == 40 for x in features)  # > 0.5 s of speech
