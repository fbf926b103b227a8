"""``rnnkit speech train|eval|transcribe`` as a user runs it, and every bad input the issue
lists: one line naming the file, exit 2, nothing written (or, for the inputs that are not
errors, a warning and a count)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "tasks"))
from test_cli_lm import assert_one_line_error, rnnkit  # noqa: E402
from test_speech import RATE, say, sf, with_bad_row, write_corpus  # noqa: E402

SMALL = (
    "--hidden-size 8 --num-layers 1 --n-mels 16 --subsample-factor 4 --batch-size 8 "
    "--no-progress --device cpu --threads 1 --max-steps 2 --eval-every 0"
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from rnnkit.cli.main import main

    tmp = tmp_path_factory.mktemp("cli_speech")
    data = write_corpus(tmp, n=12)
    val = write_corpus(tmp, "val.tsv", n=4, seed=1)
    assert main(f"speech train {data} --val {val} --out {tmp / 'run'} {SMALL}".split()) == 0
    return {"tmp": tmp, "run": tmp / "run", "data": data, "val": val}


def test_train_prints_the_monitored_figure(capsys, tmp_path):
    data = write_corpus(tmp_path, n=10)
    rc, out, err = rnnkit(capsys, "speech train", data, "--out", tmp_path / "r", SMALL)
    assert rc == 0, err
    assert "stopped (max_steps) after 2 steps in fp32; val_cer best" in out
    cfg = json.loads((tmp_path / "r" / "last" / "config.json").read_text())
    assert cfg["train_config"]["monitor"] == "val_cer"  # the task's default
    assert cfg["model_config"]["alphabet"] == " abc"
    assert (tmp_path / "r" / "features" / "train.bin").is_file()


def test_eval_json_text_and_transcribe(capsys, run):
    rc, out, err = rnnkit(capsys, "speech eval", run["run"], run["val"], "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert {"cer", "wer", "num_utterances"} <= set(res) and res["num_utterances"] == 4
    rc, out, err = rnnkit(capsys, "speech eval", run["run"], run["val"], "--beam 3")
    assert rc == 0 and out.startswith("CER ") and "(4 utterances," in out, err
    wavs = sorted((run["tmp"] / "wav").glob("val*.wav"))[:2]
    rc, out, err = rnnkit(capsys, "speech transcribe", run["run"], *wavs)
    assert rc == 0, err
    lines = out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(w) for w in wavs]
    rc, out, err = rnnkit(capsys, "speech transcribe", run["run"], wavs[0], "--json --beam 2")
    assert rc == 0 and set(json.loads(out)) == {"audio", "text"}, err


def test_shallow_fusion_with_an_lm_run(capsys, run, tmp_path):
    text = tmp_path / "lm.txt"
    text.write_text("ab ca bb\ncab a\n" * 40)
    lm_flags = "--hidden-size 8 --num-layers 1 --seq-length 8 --batch-size 4 --max-steps 2"
    rc, _, err = rnnkit(capsys, "lm train", text, "--out", tmp_path / "lm", lm_flags, SMALL[-40:])
    assert rc == 0, err
    rc, out, err = rnnkit(
        capsys, "speech eval", run["run"], run["val"], "--json --lm", tmp_path / "lm"
    )
    assert rc == 0, err
    assert json.loads(out)["num_utterances"] == 4
    rc, _, err = rnnkit(capsys, "speech eval", run["run"], run["val"], "--beam 1 --lm", tmp_path)
    assert_one_line_error(rc, err, "--lm needs beam search")
    rc, _, err = rnnkit(capsys, "speech eval", run["run"], run["val"], "--lm", run["run"])
    assert_one_line_error(rc, err, "holds a 'ctc_speech' model, not a language model")


@pytest.mark.parametrize(
    "case, match",
    [
        ("missing audio", "{data}:8: audio file"),
        ("not audio", "bad.wav (" + "{data}:8) is not audio that libsndfile reads"),
        ("shorter than one frame", "bad.wav ({data}:8) is too short: 200 samples"),
        ("empty audio", "bad.wav ({data}:8) holds no audio samples"),
    ],
)
def test_bad_audio_is_one_line_and_writes_nothing(capsys, tmp_path, case, match):
    data = with_bad_row(tmp_path, case)
    out = tmp_path / "run"
    rc, _, err = rnnkit(capsys, "speech train", data, "--out", out, SMALL)
    assert_one_line_error(rc, err, match.format(data=data))
    assert not out.exists()


def test_bad_audio_at_eval_and_transcribe(capsys, run, tmp_path):
    data = with_bad_row(tmp_path, "not audio")
    rc, out, err = rnnkit(capsys, "speech eval", run["run"], data)
    assert_one_line_error(rc, err, "bad.wav")
    assert out == ""
    rc, out, err = rnnkit(capsys, "speech transcribe", run["run"], tmp_path / "wav" / "bad.wav")
    assert_one_line_error(rc, err, "bad.wav is not audio")
    rc, out, err = rnnkit(capsys, "speech transcribe", run["run"], tmp_path / "nope.wav")
    assert_one_line_error(rc, err, "nope.wav does not exist")


def test_stereo_is_downmixed_with_a_warning(capsys, tmp_path):
    data = write_corpus(tmp_path, n=6)
    sf.write(tmp_path / "wav" / "st.wav", np.stack([say("ab"), say("ab")], 1), RATE)
    with open(data, "a") as f:
        f.write("wav/st.wav\tab\n")
    rc, _, err = rnnkit(capsys, "speech train", data, "--out", tmp_path / "r", SMALL)
    assert rc == 0, err
    assert "1 audio file(s) had several channels and were downmixed to mono" in err


def test_unknown_characters_and_too_long_transcripts_are_counted(capsys, run, tmp_path):
    data = write_corpus(tmp_path, "odd.tsv", texts=["ab?", "ca"])
    rc, out, err = rnnkit(capsys, "speech eval", run["run"], data)
    assert rc == 0, err
    assert "1 reference characters outside the alphabet" in out
    assert "1 reference character(s) are outside the model's alphabet" in err
    long = write_corpus(tmp_path / "l", n=6)
    sf.write(tmp_path / "l" / "wav" / "short.wav", say("a"), RATE)
    with open(long, "a") as f:
        f.write("wav/short.wav\t" + "abc" * 8 + "\n")
    rc, out, err = rnnkit(
        capsys, "speech train", long, "--val", run["val"], "--out", tmp_path / "r", SMALL
    )
    assert rc == 0, err
    assert "skipped 1 utterance(s) whose transcript is longer than CTC can align" in err
    assert "short.wav" in err
    rc, out, err = rnnkit(capsys, "speech eval", tmp_path / "r", long, "--json")
    assert rc == 0 and json.loads(out)["too_long"] == 1, err
