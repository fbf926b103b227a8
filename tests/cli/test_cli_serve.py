"""``rnnkit lm serve`` as a user runs it: flags from ServeConfig, a live server in a subprocess
stopped by Ctrl-C, and one-line errors for a bad run or a port in use."""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import urllib.request
from dataclasses import fields
from pathlib import Path

import pytest

from rnnkit.cli.main import main
from rnnkit.models.language_model import LMConfig
from rnnkit.serve import ServeConfig
from rnnkit.tasks.lm import LMDataConfig, train_language_model
from rnnkit.training import TrainConfig

pytest.importorskip("uvicorn")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2] / "src")}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve_cli")
    rng = random.Random(0)
    words = ["the", "cat", "sat", "on", "a", "mat"]
    text = "".join(" ".join(rng.choice(words) for _ in range(5)) + "\n" for _ in range(100))
    (tmp / "corpus.txt").write_text(text, encoding="utf-8")
    train_language_model(
        tmp / "corpus.txt",
        tmp / "run",
        LMConfig(hidden_size=16, num_layers=1, embedding_size=8),
        LMDataConfig(seq_length=12, batch_size=4),
        TrainConfig(epochs=1, progress=False, device="cpu"),
    )
    return tmp / "run"


def rnnkit(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:  # argparse: --help, bad flags
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def test_every_flag_is_a_field_of_serve_config(capsys):
    rc, out, _ = rnnkit(capsys, "lm", "serve", "--help")
    assert rc == 0
    flags = set(f for f in out.split() if f.startswith("--") and f != "--help")
    assert flags == {"--" + f.name.replace("_", "-") for f in fields(ServeConfig)}
    assert "127.0.0.1" in out  # the default address: this machine only


def one_line_error(rc, err, match):
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("rnnkit: error: "), err
    assert match in lines[0], lines[0]


def test_a_missing_run_is_a_one_line_error(capsys, tmp_path):
    one_line_error(*rnnkit(capsys, "lm", "serve", tmp_path / "nothing")[::2], "nothing")


def test_a_port_in_use_is_a_one_line_error(capsys, run):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        rc, _, err = rnnkit(capsys, "lm", "serve", run, "--port", port)
    one_line_error(rc, err, f"cannot listen on 127.0.0.1:{port}")


def test_bad_flag_values(capsys, run):
    rc, _, err = rnnkit(capsys, "lm", "serve", run, "--engine", "int4")
    assert rc == 2 and "invalid choice: 'int4'" in err
    rc, _, err = rnnkit(capsys, "lm", "serve", run, "--max-length", "0")
    one_line_error(rc, err, "max_length must be >= 1")


def test_serve_answers_until_ctrl_c(run):
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnkit.cli.main", "lm", "serve", str(run), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        line = proc.stdout.readline()  # "serving http://127.0.0.1:PORT/ (Ctrl-C stops)"
        assert line.startswith("serving http://127.0.0.1:"), (line, proc.stderr.read())
        url = line.split()[1]
        request = urllib.request.Request(
            url + "api/predict",
            data=json.dumps({"text": "the c", "top": 2}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            suggestions = json.load(r)["suggestions"]
        assert 1 <= len(suggestions) <= 2 and suggestions[0]["text"].startswith("c")
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert err.strip() == "rnnkit: server stopped"
