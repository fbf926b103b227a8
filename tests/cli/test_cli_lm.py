"""``rnnkit lm train|sample|predict|eval`` as a user runs it: flags, output, exact resume, Ctrl-C,
and one-line errors (exit status 2, no traceback) for every input a user can get wrong."""

import io
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rnnkit.cli.main import main

WORDS = "the cat dog sat ran on in a mat hat big red old house 猫 🐱".split()  # noqa: SIM905
SMALL = (
    "--hidden-size 16 --num-layers 1 --embedding-size 8 --seq-length 12 --batch-size 4 "
    "--no-progress --device cpu --log-every 5"
)
# Subprocesses: one thread each, as in-process tests (two threads on a busy 2-core machine run
# hundreds of times slower), and the checkout's sources whatever the installed copy.
ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",
    "PYTHONPATH": str(Path(__file__).parents[2] / "src"),
}


def write_corpus(path, lines=120, seed=0, words=WORDS):
    rng = random.Random(seed)
    text = "".join(" ".join(rng.choice(words) for _ in range(5)) + "\n" for _ in range(lines))
    path.write_text(text, encoding="utf-8")
    return path


def argv_of(*parts) -> list[str]:
    """Command-line words: a str is split like a shell would, a Path or number is one word."""
    return [w for p in parts for w in (shlex.split(p) if isinstance(p, str) else [str(p)])]


def rnnkit(capsys, *parts) -> tuple[int, str, str]:
    """Run ``rnnkit PARTS`` in this process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    try:
        rc = main(argv_of(*parts))
    except SystemExit as e:  # argparse: --help, bad flags
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc, err, match):
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnkit: error: "), err
    assert match in lines[0], lines[0]


def weights(run, ckpt="last"):
    return load_file(Path(run) / ckpt / "model.safetensors")


def same_weights(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A char-level and a word-level run, trained through the CLI."""
    tmp = tmp_path_factory.mktemp("runs")
    char_corpus = write_corpus(tmp / "char.txt")
    word_corpus = write_corpus(tmp / "word.txt", lines=200)
    args = f"{SMALL} --lr 0.01"
    char = argv_of("lm train", char_corpus, "--out", tmp / "char", args, "--epochs 2 --no-unk")
    assert main(char) == 0
    assert main(argv_of("lm train", word_corpus, "--out", tmp / "word", args, "--level word")) == 0
    return {"char": tmp / "char", "word": tmp / "word", "corpus": char_corpus, "tmp": tmp}


# ---- flags ------------------------------------------------------------------------------------

VERB_FLAGS = {
    "train": "--out --resume --level --cell --hidden-size --num-layers --dropout "
    "--embedding-size --seq-length --batch-size --lr --grad-clip --epochs --max-minutes "
    "--val-fraction --stateful --no-stateful --seed --init-from --device --max-steps",
    "sample": "--prime --length --temperature --top-k --top-p --greedy --beam --num-samples "
    "--stop --seed",
    "predict": "--prefix --top --json",
    "eval": "--batch-size --seq-length --json",
}


@pytest.mark.parametrize("verb", list(VERB_FLAGS))
def test_help_of_each_verb_lists_its_flags(capsys, verb):
    rc, out, _ = rnnkit(capsys, "lm", verb, "--help")
    assert rc == 0
    for flag in VERB_FLAGS[verb].split():
        assert flag in out, flag


def test_train_flags_reach_the_saved_configs(capsys, tmp_path):
    corpus = write_corpus(tmp_path / "c.txt", lines=60)
    rc, out, err = rnnkit(
        capsys,
        "lm train",
        corpus,
        "--out",
        tmp_path / "run",
        "--level char --cell gru --hidden-size 20 --num-layers 2 --dropout 0.1 "
        "--embedding-size 0 --seq-length 10 --batch-size 3 --lr 0.02 --grad-clip 1.5 "
        "--epochs 1 --max-minutes 5 --val-fraction 0.2 --no-stateful --seed 7 --device cpu "
        "--no-progress --log-every 4",
    )
    assert rc == 0, err
    assert "stopped (completed)" in out
    assert "step=4 " in err  # without a progress bar the log rows go to stderr
    config = json.loads((tmp_path / "run" / "last" / "config.json").read_text())
    model, train = config["model_config"], config["train_config"]
    expected = dict(cell="gru", hidden_size=20, num_layers=2, dropout=0.1, embedding_size=0)
    assert {k: model[k] for k in expected} == expected
    expected = dict(lr=0.02, grad_clip=1.5, epochs=1, max_minutes=5.0, seed=7)
    assert {k: train[k] for k in expected} == expected
    data = json.loads((tmp_path / "run" / "last" / "data.json").read_text())
    assert (data["level"], data["seq_length"], data["batch_size"]) == ("char", 10, 3)
    assert (data["val_fraction"], data["stateful"]) == (0.2, False)


def test_a_directory_of_text_files_is_a_corpus(capsys, tmp_path):
    data = tmp_path / "texts"
    (data / "sub").mkdir(parents=True)
    write_corpus(data / "a.txt", lines=30, seed=1)
    write_corpus(data / "sub" / "b.txt", lines=30, seed=2)
    rc, _, err = rnnkit(capsys, "lm train", data, "--out", tmp_path / "run", SMALL, "--max-steps 2")
    assert rc == 0, err
    tokens = json.loads((tmp_path / "run" / "data" / "tokens.bin.json").read_text())
    assert len(tokens["source"]) == 2 and tokens["count"] == sum(
        len(p.read_text(encoding="utf-8")) for p in (data / "a.txt", data / "sub" / "b.txt")
    )


# ---- exact resume, Ctrl-C, init-from ----------------------------------------------------------


@pytest.mark.parametrize("stateful", ["--stateful", "--no-stateful"])
def test_resume_gives_the_weights_of_an_uninterrupted_run(capsys, tmp_path, stateful):
    corpus = write_corpus(tmp_path / "c.txt", lines=30)  # 10 batches an epoch
    # A constant rate: a cosine's horizon is the step budget, which the resume changes.
    flags = f"{SMALL} {stateful} --dropout 0.2 --seed 3 --epochs 5 --eval-every 4 --lr 0.01"
    flags += " --lr-schedule none"
    N, K = 21, 8  # the resumed part crosses two epoch ends
    rc, _, err = rnnkit(
        capsys, "lm train", corpus, "--out", tmp_path / "a", flags, "--max-steps", N
    )
    assert rc == 0, err
    rc, _, err = rnnkit(
        capsys, "lm train", corpus, "--out", tmp_path / "b", flags, "--max-steps", K
    )
    assert rc == 0, err
    assert not same_weights(weights(tmp_path / "a"), weights(tmp_path / "b"))
    # Only the length changes: everything else comes from the saved run.
    rc, out, err = rnnkit(
        capsys, "lm train", corpus, "--out", tmp_path / "b", "--resume", "--max-steps", N
    )
    assert rc == 0, err
    assert f"after {N} steps" in out
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    # The log too: the same rows (step, epoch, losses, lr), none twice.
    logs = [
        [row.split(",")[:5] for row in (tmp_path / run / "log.csv").read_text().splitlines()]
        for run in ("a", "b")
    ]
    assert logs[0] == logs[1]


def test_resume_refuses_to_change_the_model(capsys, runs):
    before = weights(runs["char"])
    resume = ("lm train", runs["corpus"], "--out", runs["char"], "--resume")
    rc, _, err = rnnkit(capsys, *resume, "--hidden-size 64")
    assert_one_line_error(rc, err, "hidden_size 64 (saved 16)")
    rc, _, err = rnnkit(capsys, *resume, "--level word")
    assert_one_line_error(rc, err, "keeps its data config; level 'word' (saved 'char')")
    assert same_weights(before, weights(runs["char"]))


def signal_training(corpus, out, signum) -> tuple[int, str, str]:
    """Start ``rnnkit lm train`` in a subprocess, send ``signum`` once it logs a step:
    (exit status, stdout, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnkit.cli.main"]
        + argv_of("lm train", corpus, "--out", out, SMALL, "--epochs 10000 --log-every 1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        # A shell's background job ignores SIGINT and its children inherit that: the child
        # gets the default back, as a terminal's Ctrl-C would find it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    killer = threading.Timer(120, proc.kill)  # a hung child must not hang the test run
    killer.start()
    try:
        for line in proc.stderr:  # wait until training is under way
            if line.startswith("step="):
                break
        else:
            pytest.fail(f"no log line before exit {proc.wait()}")
        proc.send_signal(signum)
        stdout, stderr = proc.communicate()
    finally:
        killer.cancel()
    return proc.returncode, stdout, stderr


def test_ctrl_c_saves_the_run_and_resume_continues_it(capsys, tmp_path):
    corpus = write_corpus(tmp_path / "c.txt", lines=60)
    out = tmp_path / "run"
    returncode, stdout, stderr = signal_training(corpus, out, signal.SIGINT)
    assert returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "stopped (interrupted)" in stdout
    steps = json.loads((out / "last" / "trainer_state.json").read_text())["step"]
    assert steps >= 1
    assert not list(out.glob(".last.tmp-*")) and not (out / "last.old").exists()
    rc, stdout, err = rnnkit(
        capsys, "lm train", corpus, "--out", out, "--resume --max-steps", steps + 3
    )
    assert rc == 0, err
    assert f"after {steps + 3} steps" in stdout


def test_init_from_takes_the_checkpoints_model(capsys, runs, tmp_path):
    corpus = write_corpus(tmp_path / "c.txt", lines=40, seed=5)
    out = tmp_path / "tuned"
    # A time budget of ~0 stops before the first step: last/ holds the starting weights.
    rc, _, err = rnnkit(
        capsys,
        "lm train",
        corpus,
        "--out",
        out,
        "--init-from",
        runs["char"],
        "--max-minutes 1e-9 --no-progress --device cpu",
    )
    assert rc == 0, err
    assert same_weights(weights(runs["char"], "best"), weights(out))
    vocab = (out / "last" / "vocab.json").read_text()
    assert vocab == (runs["char"] / "best" / "vocab.json").read_text()
    data = json.loads((out / "last" / "data.json").read_text())
    assert (data["seq_length"], data["batch_size"]) == (12, 4)  # the checkpoint's, unless given
    rc, _, err = rnnkit(
        capsys,
        "lm train",
        corpus,
        "--out",
        tmp_path / "x",
        "--init-from",
        runs["char"],
        "--num-layers 2",
    )
    assert_one_line_error(rc, err, "num_layers 2 (saved 1)")
    assert not (tmp_path / "x").exists()


# ---- sample, predict, eval --------------------------------------------------------------------


def test_sample_options(capsys, runs):
    def sample(flags):
        rc, out, err = rnnkit(capsys, "lm sample", runs["char"], flags)
        assert rc == 0, err
        return out

    out = sample("--prime 'the ' --length 40 --temperature 0.8 --top-k 5 --top-p 0.9 --seed 1")
    assert out.startswith("the ") and len(out) == len("the ") + 40 + 1
    assert out == sample(
        "--prime 'the ' --length 40 --temperature 0.8 --top-k 5 --top-p 0.9 --seed 1"
    )
    assert sample("--length 40 --seed 2") != sample("--length 40 --seed 3")
    greedy = sample("--prime a --length 30 --greedy")
    assert greedy == sample("--prime a --length 30 --greedy --seed 9")
    generated = greedy[1:-1]  # between the prime and the newline
    stop = generated[5:7]  # the stop string is looked for in the generated text only
    stopped = sample(f"--prime a --length 30 --greedy --stop {shlex.quote(stop)}")
    assert stopped == "a" + generated[: generated.find(stop) + len(stop)] + "\n"
    out = sample("--prime ca --length 5 --num-samples 3")
    assert len(out) == 3 * (2 + 5 + 1)
    assert out[:2] == out[8:10] == out[16:18] == "ca"


def test_sample_streams_each_token_as_it_is_drawn(runs, monkeypatch):
    writes = []

    class Recorder(io.StringIO):
        def write(self, s):
            writes.append(("write", s))
            return super().write(s)

        def flush(self):
            writes.append(("flush", None))

    monkeypatch.setattr(sys, "stdout", Recorder())
    assert main(argv_of("lm sample", runs["char"], "--length 20 --prime ab")) == 0
    # The prime with the first token, 19 more tokens one by one, each flushed; the final newline.
    texts = [text for kind, text in writes if kind == "write"]
    assert len(texts) == 21 and texts[0].startswith("ab") and texts[-1] == "\n"
    for i in range(20):
        assert writes[2 * i][0] == "write" and writes[2 * i + 1][0] == "flush"


def test_beam_search_from_the_command_line(capsys, runs):
    rc, out, err = rnnkit(
        capsys, "lm sample", runs["word"], "--prime 'the cat' --length 10 --beam 4 --num-samples 3"
    )
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 3
    scores = [float(line.split("\t")[0]) for line in lines]
    assert scores == sorted(scores, reverse=True)
    # A hypothesis may end the line at once (<eos> is not shown); words follow with a space.
    texts = [line.split("\t")[1] for line in lines]
    assert all(text == "the cat" or text.startswith("the cat ") for text in texts)
    assert len(set(texts)) == 3


def test_word_level_sample_is_lines_of_known_words(capsys, runs):
    rc, out, err = rnnkit(capsys, "lm sample", runs["word"], "--length 60 --seed 4")
    assert rc == 0, err
    vocab = json.loads((runs["word"] / "last" / "vocab.json").read_text(encoding="utf-8"))["itos"]
    assert set(out.split()) <= set(vocab)
    assert not any(line.startswith(" ") for line in out.splitlines())
    rc, out, err = rnnkit(capsys, "lm sample", runs["word"], "--prime 'the unheardof' --length 3")
    assert rc == 0, err  # an unknown word is <unk>
    assert out.startswith("the unheardof ")


def test_unicode_samples_and_predictions(capsys, runs):
    rc, out, err = rnnkit(capsys, "lm sample", runs["char"], "--prime '🐱 猫' --length 200")
    assert rc == 0, err
    corpus_chars = set(runs["corpus"].read_text(encoding="utf-8"))
    assert out.startswith("🐱 猫") and set(out) <= corpus_chars
    assert {"🐱", "猫"} & set(out[len("🐱 猫") :])
    rc, out, _ = rnnkit(capsys, "lm predict", runs["char"], "--prefix 🐱 --top 50 --json")
    tokens = [p["token"] for p in json.loads(out)]
    assert "猫" in tokens and "🐱" in tokens


def test_predict(capsys, runs):
    rc, out, err = rnnkit(capsys, "lm predict", runs["char"], "--prefix 'the c' --top 3")
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 3
    probs = [float(line.split()[0]) for line in lines]
    assert probs == sorted(probs, reverse=True)
    rc, out, _ = rnnkit(capsys, "lm predict", runs["char"], "--prefix 'the c' --top 3 --json")
    preds = json.loads(out)
    assert [round(p["probability"], 4) for p in preds] == probs
    assert all(set(p) == {"token", "probability"} for p in preds)


def test_predict_reads_prefixes_from_stdin(capsys, runs, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("the c\nthe é\nho\n"))
    rc, out, err = rnnkit(capsys, "lm predict", runs["char"], "--top 2 --json")
    assert rc == 0
    answers = [json.loads(line) for line in out.splitlines()]
    assert len(answers) == 3  # one per input line, the bad one holding its error
    assert len(answers[0]) == 2 and len(answers[2]) == 2
    assert answers[1]["prefix"] == "the é" and "character 'é'" in answers[1]["error"]
    assert "Traceback" not in err
    _, first, _ = rnnkit(capsys, "lm predict", runs["char"], "--prefix 'the c' --top 2 --json")
    assert answers[0] == json.loads(first)
    monkeypatch.setattr(sys, "stdin", io.StringIO("the c\nthe é\nho\n"))
    _, out, _ = rnnkit(capsys, "lm predict", runs["char"], "--top 2")
    blocks = out.split("> ")[1:]
    assert [b.splitlines()[0] for b in blocks] == ["the c", "the é", "ho"]
    assert "error: character 'é'" in blocks[1]


def test_the_type_ahead_line_never_wraps():
    from rnnkit.cli.lm import _prompt_line

    for columns in (40, 80):
        for text in ("short", "a much longer line of text " * 4):
            line = _prompt_line(text, "suggestion one  |  suggestion two  |  three", columns)
            visible = line.replace("\r\033[K", "").replace("\033[2m", "").replace("\033[0m", "")
            assert len(visible) <= columns - 1, (columns, visible)
            assert visible.startswith("> ")


def test_eval(capsys, runs):
    rc, out, err = rnnkit(capsys, "lm eval", runs["char"], runs["corpus"], "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert set(res) == {
        "loss",
        "bits_per_token",
        "bits_per_char",
        "perplexity",
        "tokens",
        "unknown_tokens",
        "unknown_rate",
        "level",
    }
    assert res["tokens"] == len(runs["corpus"].read_text(encoding="utf-8")) - 1
    rc, out, _ = rnnkit(capsys, "lm eval", runs["char"], runs["corpus"])
    assert rc == 0 and "bits_per_char" in out and "perplexity" in out
    rc, out, _ = rnnkit(capsys, "lm eval", runs["word"], runs["tmp"] / "word.txt", "--json")
    assert json.loads(out)["level"] == "word" and "bits_per_word" in json.loads(out)


# ---- errors: one line, status 2, no traceback, nothing half-written ---------------------------


def _edit_model_type(ckpt):
    config = json.loads((ckpt / "config.json").read_text())
    config["model_type"] = "classifier"
    (ckpt / "config.json").write_text(json.dumps(config))


BAD_CHECKPOINTS = {
    "missing weights": (lambda c: (c / "model.safetensors").unlink(), "missing model.safetensors"),
    "missing vocab": (lambda c: (c / "vocab.json").unlink(), "missing vocab.json"),
    "other model type": (_edit_model_type, "holds a 'classifier' model"),
    "truncated weights": (
        lambda c: (c / "model.safetensors").write_bytes(b"\x10\x00"),
        "not a readable safetensors file",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CHECKPOINTS))
@pytest.mark.parametrize("verb", ["sample", "predict", "eval", "resume"])
def test_a_damaged_checkpoint_is_a_one_line_error(capsys, runs, tmp_path, case, verb):
    damage, match = BAD_CHECKPOINTS[case]
    run = tmp_path / "run"
    shutil.copytree(runs["char"], run)
    for ckpt in ("best", "last"):
        damage(run / ckpt)
    command = {
        "sample": ("lm sample", run, "--length 5"),
        "predict": ("lm predict", run, "--prefix the"),
        "eval": ("lm eval", run, runs["corpus"]),
        "resume": ("lm train", runs["corpus"], "--out", run, "--resume --max-steps 99"),
    }[verb]
    rc, _, err = rnnkit(capsys, *command)
    assert_one_line_error(rc, err, match)


BAD_DATA = {
    "empty file": (b"", "is empty"),
    "binary file": (b"\x7fELF\x02\x01\x00\x00" * 50, "NUL byte at offset 6"),
    "latin-1 file": ("café crème\n".encode("latin-1") * 20, "not UTF-8 text: invalid byte 0xe9"),
    "shorter than a batch": (b"hello world\n", "needs at least 49 (B\u00b7T+1)"),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_training_data_is_a_one_line_error(capsys, tmp_path, case):
    content, match = BAD_DATA[case]
    corpus = tmp_path / "data.txt"
    corpus.write_bytes(content)
    rc, _, err = rnnkit(capsys, "lm train", corpus, "--out", tmp_path / "run", SMALL)
    assert_one_line_error(rc, err, match)
    assert not (tmp_path / "run").exists()  # no half-made run directory


def test_resume_with_other_data_is_a_one_line_error(capsys, runs, tmp_path):
    other = write_corpus(tmp_path / "other.txt", words=["zebra", "yak"])
    before = (runs["char"] / "last" / "model.safetensors").read_bytes()
    rc, _, err = rnnkit(capsys, "lm train", other, "--out", runs["char"], "--resume")
    assert_one_line_error(rc, err, "is not the data the run")
    assert (runs["char"] / "last" / "model.safetensors").read_bytes() == before


@pytest.mark.parametrize(
    ("command", "match"),
    [
        ("train {corpus} --out {tmp}/none --resume", "nothing to resume in"),
        ("train {tmp}/missing.txt --out {tmp}/r", "missing.txt not found"),
        ("train {corpus} --out {tmp}/r --hidden-size 0", "hidden_size must be >= 1"),
        ("train {corpus} --out {tmp}/r --lr -1", "lr must be > 0"),
        ("train {corpus} --out {tmp}/r --val-fraction 1", "val_fraction must be in (0, 1)"),
        ("train {corpus} --out {tmp}/r --init-from {tmp}/nope", "nope does not exist"),
        ("sample {char} --prime 'the é'", "'é' (U+00E9) at character 4 of the prime"),
        ("sample {char} --length 0", "length must be >= 1"),
        ("sample {char} --top-p 0", "top_p must be in (0, 1]"),
        ("sample {char} --beam 2 --num-samples 3", "n_best must be an integer in [1, beam_width"),
        ("predict {char} --prefix é", "not in the vocabulary"),
        ("predict {char} --top 0", "--top must be >= 1"),
        ("predict {tmp} --prefix a", "is not a checkpoint"),
        ("eval {char} {tmp}/latin1.txt", "latin1.txt is not UTF-8 text"),
    ],
)
def test_user_errors_are_one_line(capsys, runs, tmp_path, command, match):
    (tmp_path / "latin1.txt").write_bytes("the cat é".encode("latin-1"))
    paths = {"corpus": runs["corpus"], "char": runs["char"], "tmp": tmp_path}
    rc, out, err = rnnkit(
        capsys, "lm", command.format(**{k: shlex.quote(str(v)) for k, v in paths.items()})
    )
    assert_one_line_error(rc, err, match)
    assert out == ""  # nothing printed before the error, not even the prime
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_a_one_line_error(capsys, runs, tmp_path):
    rc, _, err = rnnkit(
        capsys, "lm train", runs["corpus"], "--out", tmp_path / "r", "--device cuda"
    )
    assert_one_line_error(rc, err, "CUDA is not available")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("command", "match"),
    [
        ("train x.txt --out r --cell transformer", "invalid choice: 'transformer'"),
        ("train x.txt --out r --level byte", "invalid choice: 'byte'"),
        ("train x.txt --out r --hidden-size big", "invalid int value: 'big'"),
        ("train x.txt", "the following arguments are required: --out"),
        ("sample r --temperature hot", "invalid float value: 'hot'"),
        ("sample r --colour", "unrecognized arguments: --colour"),
        ("fly", "invalid choice: 'fly'"),
    ],
)
def test_bad_flags_exit_2_from_argparse(capsys, command, match):
    rc, _, err = rnnkit(capsys, "lm", command)
    assert rc == 2 and match in err and "Traceback" not in err


# ---- entry points -----------------------------------------------------------------------------


def test_python_dash_m_entry_streams_into_a_closed_pipe_quietly(runs):
    # `rnnkit lm sample ... | head`: the reader leaves early; no traceback, status 0.
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnkit.cli.main"]
        + argv_of("lm sample", runs["char"], "--length 1000000"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    first = proc.stdout.read(20)
    proc.stdout.close()
    _, stderr = proc.communicate(timeout=120)
    assert len(first) == 20
    assert proc.returncode == 0, stderr
    assert stderr == b""


def test_console_script():
    exe = Path(sys.executable).with_name("rnnkit")
    if not exe.exists():
        pytest.skip(f"console script not installed beside {sys.executable}")
    res = subprocess.run(
        [exe, "lm", "--help"], capture_output=True, text=True, env=ENV, timeout=120
    )
    assert res.returncode == 0
    assert all(verb in res.stdout for verb in ("train", "sample", "predict", "eval"))
