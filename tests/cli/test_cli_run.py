"""The run lifecycle every task shares, through ``rnnkit lm train``: an existing run is never
wiped by accident, SIGTERM saves like Ctrl-C, a NaN never reaches a checkpoint, a full disk is
one line, and a bad monitor names the figures there are."""

import json
import shutil
import signal

import pytest
import torch
from test_cli_lm import SMALL, assert_one_line_error, rnnkit, signal_training, write_corpus

import rnnkit.checkpoint as ckpt


def test_an_existing_run_is_refused_unless_resume_or_overwrite(capsys, tmp_path):
    corpus = write_corpus(tmp_path / "c.txt", lines=40)
    out = tmp_path / "run"
    assert rnnkit(capsys, "lm train", corpus, "--out", out, SMALL, "--max-steps 3")[0] == 0
    before = (out / "last" / "model.safetensors").read_bytes()
    rc, _, err = rnnkit(capsys, "lm train", corpus, "--out", out, SMALL, "--max-steps 3")
    assert_one_line_error(rc, err, "already holds a run: --resume (resume=True) continues it")
    assert (out / "last" / "model.safetensors").read_bytes() == before
    rc, out_text, err = rnnkit(
        capsys, "lm train", corpus, "--out", out, SMALL, "--max-steps 2 --overwrite"
    )
    assert rc == 0, err
    assert json.loads((out / "last" / "config.json").read_text())["step"] == 2


def test_sigterm_saves_and_exits_143(capsys, tmp_path):
    corpus = write_corpus(tmp_path / "c.txt", lines=60)
    out = tmp_path / "run"
    returncode, stdout, stderr = signal_training(corpus, out, signal.SIGTERM)
    assert returncode == 143, stderr
    assert "stopped (interrupted)" in stdout and "interrupted (SIGTERM)" in stderr
    step = json.loads((out / "last" / "trainer_state.json").read_text())["step"]
    assert step >= 1
    rc, stdout, err = rnnkit(
        capsys, "lm train", corpus, "--out", out, "--resume --max-steps", step + 2
    )
    assert rc == 0 and f"after {step + 2} steps" in stdout, err


def test_a_nonfinite_loss_exits_1_and_names_the_last_good_checkpoint(capsys, tmp_path, monkeypatch):
    from rnnkit.models.language_model import LanguageModel

    corpus = write_corpus(tmp_path / "c.txt", lines=40)
    calls = {"n": 0}
    real = LanguageModel.compute_loss

    def poisoned(self, batch, state=None):
        out = real(self, batch, state)
        calls["n"] += 1
        return out._replace(loss=out.loss * float("nan")) if calls["n"] == 5 else out

    monkeypatch.setattr(LanguageModel, "compute_loss", poisoned)
    out = tmp_path / "run"
    rc, stdout, err = rnnkit(
        capsys, "lm train", corpus, "--out", out, SMALL, "--save-every 1 --eval-every 100"
    )
    assert rc == 1
    assert "Traceback" not in err
    assert "rnnkit: error: the loss became NaN or infinite after 4 steps" in err
    assert f"last/ (step 4) in {out} is the last good checkpoint" in err
    state = ckpt.load_trainer_state(out / "last")
    assert state["step"] == 4
    assert all(
        torch.isfinite(t).all() for t in ckpt.load_file(out / "last" / "model.safetensors").values()
    )


def test_a_full_disk_is_one_line_and_keeps_the_last_checkpoint(capsys, tmp_path, monkeypatch):
    corpus = write_corpus(tmp_path / "c.txt", lines=40)
    out = tmp_path / "run"
    assert rnnkit(capsys, "lm train", corpus, "--out", out, SMALL, "--max-steps 2")[0] == 0
    before = (out / "last" / "model.safetensors").read_bytes()

    def full(*args, **kwargs):
        raise ckpt.SafetensorError("Error while serializing: I/O error: No space left on device")

    monkeypatch.setattr(ckpt, "save_file", full)
    rc, _, err = rnnkit(capsys, "lm train", corpus, "--out", out, "--resume --max-steps 4")
    last = err.strip().splitlines()[-1]  # after the log rows of --no-progress
    assert rc == 2 and "Traceback" not in err and last.startswith("rnnkit: error: could not write")
    assert "No space left on device" in err and "previous checkpoint there is intact" in err
    assert (out / "last" / "model.safetensors").read_bytes() == before
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary dir


@pytest.mark.parametrize("monitor", ["val_bleu"])
def test_a_monitor_the_model_does_not_report_fails_before_training(capsys, tmp_path, monitor):
    corpus = write_corpus(tmp_path / "c.txt", lines=40)
    rc, _, err = rnnkit(
        capsys, "lm train", corpus, "--out", tmp_path / "r", SMALL, "--monitor", monitor
    )
    assert_one_line_error(rc, err, f"monitor='{monitor}' is not among the validation figures")
    assert "val_loss" in err and not (tmp_path / "r").exists()
    rc, _, err = rnnkit(capsys, "lm train", corpus, "--out", tmp_path / "r2", "--monitor loss")
    assert_one_line_error(rc, err, "monitor must name a validation figure")


def test_a_config_with_a_wrong_type_names_the_field(capsys, tmp_path):
    corpus = write_corpus(tmp_path / "c.txt", lines=40)
    out = tmp_path / "run"
    assert rnnkit(capsys, "lm train", corpus, "--out", out, SMALL, "--max-steps 2")[0] == 0
    config_file = out / "last" / "config.json"
    config = json.loads(config_file.read_text())
    config["model_config"]["hidden_size"] = "big"
    config_file.write_text(json.dumps(config))
    shutil.rmtree(out / "best", ignore_errors=True)
    rc, _, err = rnnkit(capsys, "lm sample", out, "--length 5")
    assert_one_line_error(rc, err, "hidden_size must be int, got 'big'")
