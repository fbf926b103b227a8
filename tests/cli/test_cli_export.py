"""``rnnkit export RUN --onnx FILE`` as a user runs it on a trained run."""

import json

import pytest
from test_cli_lm import assert_one_line_error, rnnkit

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from rnnkit.cli.main import main

    tmp = tmp_path_factory.mktemp("cli_export")
    text = tmp / "data.txt"
    text.write_text("abcabcabd " * 200, encoding="utf-8")
    argv = f"lm train {text} --out {tmp / 'run'} --hidden-size 12 --embedding-size 8"
    argv += " --num-layers 1 --cell gru --batch-size 4 --seq-length 10 --max-steps 3"
    argv += " --no-progress --device cpu --threads 1"
    assert main(argv.split()) == 0
    return tmp / "run"


def test_export_writes_checks_and_says_what_the_file_takes(capsys, run, tmp_path):
    rc, out, err = rnnkit(capsys, "export", run, "--onnx", tmp_path / "lm.onnx")
    assert rc == 0, err
    assert f"wrote {tmp_path / 'lm.onnx'} (ONNX opset 17)" in out
    assert "tokens  (batch, steps) int64" in out and "h_out" in out
    assert "metadata: data.json, vocab.json" in out
    assert "onnxruntime vs torch: max |difference| logits" in out and "the same argmax" in out
    rc, out, _ = rnnkit(capsys, "export", run, "--onnx", tmp_path / "b.onnx", "--opset 18 --json")
    found = json.loads(out)
    assert rc == 0 and found["opset"] == 18 and found["same_argmax"] is True
    assert found["max_abs_diff"]["logits"] < 1e-5 and "h" in found["inputs"]


def test_export_errors_are_one_line(capsys, run, tmp_path):
    rc, _, err = rnnkit(capsys, "export", tmp_path / "nowhere", "--onnx", tmp_path / "x.onnx")
    assert_one_line_error(rc, err, "does not exist")
    rc, _, err = rnnkit(capsys, "export", run, "--onnx", tmp_path / "x.onnx", "--opset 30")
    assert_one_line_error(rc, err, "--opset must be in 14..20, got 30")
    assert not (tmp_path / "x.onnx").exists()


def test_an_encoder_decoder_exports_as_two_checked_files(capsys, tmp_path):
    from rnnkit.checkpoint import save_checkpoint
    from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig

    config = Seq2SeqConfig(source_vocab_size=9, target_vocab_size=7, hidden_size=6)
    ckpt = save_checkpoint(tmp_path / "ckpt", Seq2Seq(config).eval())
    rc, out, err = rnnkit(capsys, "export", ckpt, "--onnx", tmp_path / "t.onnx")
    assert rc == 0, err
    wrote = [line for line in out.splitlines() if line.startswith("wrote")]
    assert wrote == [
        f"wrote {tmp_path / 't.encoder.onnx'} (ONNX opset 17)",
        f"wrote {tmp_path / 't.decoder.onnx'} (ONNX opset 17)",
    ]
    # The encoder makes no choice (no argmax to compare); the decoder step's is the same.
    checks = [line for line in out.splitlines() if "onnxruntime vs torch" in line]
    assert "argmax" not in checks[0] and checks[1].endswith("the same argmax")
