"""``rnnkit seq2seq train|eval|translate`` as a user runs it, and every bad input of the issue:
one line naming the file and line, exit status 2, nothing written."""

import io
import json
import random
import shlex
import sys

import pytest

from rnnkit.checkpoint import save_checkpoint
from rnnkit.cli.main import main
from rnnkit.models.language_model import LanguageModel, LMConfig

WORDS = "red blue green cat dog sat ran big small house".split()  # noqa: SIM905
SMALL = (
    "--hidden-size 16 --embedding-size 8 --batch-size 16 --epochs 1 --no-progress --device cpu "
    "--threads 1 --log-every 5"
)


def write_pairs(tmp, n=80, seed=0, tsv=False):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 6))]
        rows.append((" ".join(words), " ".join(w.upper() for w in reversed(words))))
    if tsv:
        path = tmp / "pairs.tsv"
        path.write_text("".join(f"{s}\t{t}\tCC-BY\n" for s, t in rows), encoding="utf-8")
        return path
    src, tgt = tmp / "train.src", tmp / "train.tgt"
    src.write_text("".join(s + "\n" for s, _ in rows), encoding="utf-8")
    tgt.write_text("".join(t + "\n" for _, t in rows), encoding="utf-8")
    return src, tgt


def rnnkit(capsys, *parts, stdin: bytes | None = None):
    """Run ``rnnkit PARTS`` in this process: (exit status, stdout, stderr)."""
    argv = [w for p in parts for w in (shlex.split(p) if isinstance(p, str) else [str(p)])]
    capsys.readouterr()
    old = sys.stdin
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    finally:
        sys.stdin = old
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(rc, out, err, *fragments):
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnkit: error: "), err
    assert out == ""
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    src, tgt = write_pairs(tmp)
    rc = main(
        shlex.split(
            f"seq2seq train --source {src} --target {tgt} --out {tmp / 'run'} "
            f"{SMALL} --max-source-length 8 --attention dot"
        )
    )
    assert rc == 0
    return tmp / "run"


def test_train_translate_eval(run_dir, tmp_path, capsys):
    rc, out, err = rnnkit(capsys, "seq2seq translate", run_dir, "'red cat' 'dog ran'")
    assert rc == 0 and len(out.splitlines()) == 2, err
    rc, out, _ = rnnkit(capsys, "seq2seq translate", run_dir, "--beam 3 --n-best 2 'red cat'")
    lines = out.splitlines()
    assert rc == 0 and len(lines) == 2 and all(line.startswith("0 ||| ") for line in lines)
    rc, out, _ = rnnkit(capsys, "seq2seq translate", run_dir, "--json", stdin=b"red cat\n\ndog\n")
    rows = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and [r["source"] for r in rows] == ["red cat", "", "dog"]
    assert rows[1]["translation"] == "" and rows[0]["score"] <= 0
    rc, out, _ = rnnkit(
        capsys, "seq2seq translate", run_dir, "--attention-png", tmp_path / "png", "'red cat'"
    )
    assert rc == 0 and (tmp_path / "png" / "0001.png").exists()
    tsv = write_pairs(tmp_path, n=12, seed=2, tsv=True)
    rc, out, _ = rnnkit(
        capsys,
        "seq2seq eval",
        run_dir,
        tsv,
        "--json --beam 2",
        "--hypotheses",
        tmp_path / "hyp.txt",
    )
    res = json.loads(out)
    assert rc == 0 and res["num_sentences"] == 12 and res["method"] == "beam"
    assert {"bleu", "chrf", "exact_match"} <= set(res)
    assert len((tmp_path / "hyp.txt").read_text(encoding="utf-8").splitlines()) == 12


def test_tsv_training_and_empty_pairs_are_counted(tmp_path, capsys):
    tsv = write_pairs(tmp_path, tsv=True)
    text = tsv.read_text(encoding="utf-8").splitlines(keepends=True)
    text[2] = "\t\n"  # an empty pair: skipped and counted, not an error
    tsv.write_text("".join(text), encoding="utf-8")
    rc, out, err = rnnkit(capsys, "seq2seq train", tsv, "--out", tmp_path / "r", SMALL)
    assert rc == 0, err
    assert f"skipped 1 pair with an empty side (first at {tsv}:3)" in err
    assert "stopped (completed)" in out


def test_bad_training_data(tmp_path, capsys):
    src, tgt = write_pairs(tmp_path)
    tgt.write_text("".join(tgt.read_text(encoding="utf-8").splitlines(True)[:-1]), encoding="utf-8")
    out_dir = tmp_path / "never"
    rc, out, err = rnnkit(
        capsys, f"seq2seq train --source {src} --target {tgt} --out {out_dir}", SMALL
    )
    one_line_error(rc, out, err, f"{src} has 80 lines but {tgt} has 79", f"{src}:80")
    assert not out_dir.exists()

    tsv = write_pairs(tmp_path, tsv=True)
    lines = tsv.read_text(encoding="utf-8").splitlines(True)
    lines[4] = "only a source\n"
    tsv.write_text("".join(lines), encoding="utf-8")
    rc, out, err = rnnkit(capsys, "seq2seq train", tsv, "--out", out_dir, SMALL)
    one_line_error(rc, out, err, f"{tsv}:5: 1 column")
    assert not out_dir.exists()

    src.write_bytes(src.read_bytes().replace(b"red", b"r\xe9d", 1))
    rc, out, err = rnnkit(
        capsys, f"seq2seq train --source {src} --target {tgt} --out {out_dir}", SMALL
    )
    one_line_error(rc, out, err, f"{src}:", "is not UTF-8")
    assert not out_dir.exists()

    rc, out, err = rnnkit(capsys, f"seq2seq train --source {src} --out {out_dir}", SMALL)
    one_line_error(rc, out, err, "give --source F --target F")


def test_long_sources_at_translate_time(run_dir, tmp_path, capsys):
    long = repr(" ".join(["red"] * 12))  # one argument
    rc, out, err = rnnkit(capsys, "seq2seq translate", run_dir, "dog", long)
    assert rc == 0 and len(out.splitlines()) == 2
    assert err.strip() == (
        "rnnkit: warning: argument 2: the source has 12 tokens, more than "
        "the maximum length 8: translated its first 8"
    )
    infile = tmp_path / "in.txt"
    infile.write_text(f"dog\n{long[1:-1]}\n", encoding="utf-8")
    png = tmp_path / "png"
    rc, out, err = rnnkit(
        capsys, "seq2seq translate", run_dir, "--file", infile, "--refuse-long --attention-png", png
    )
    one_line_error(rc, out, err, f"{infile}:2: the source has 12 tokens")
    assert not png.exists()
    rc, out, err = rnnkit(capsys, "seq2seq translate", run_dir, "--max-length 20", long)
    assert rc == 0 and err == ""


def test_bad_translate_inputs(run_dir, tmp_path, capsys):
    infile = tmp_path / "in.txt"
    infile.write_bytes(b"dog\nc\xe0t\n")
    rc, out, err = rnnkit(capsys, "seq2seq translate", run_dir, "--file", infile)
    one_line_error(rc, out, err, f"{infile}:2: byte 0xe0")
    rc, out, err = rnnkit(capsys, "seq2seq translate", run_dir, stdin=b"ok\n\xff\n")
    one_line_error(rc, out, err, "stdin:2: byte 0xff")
    lm = tmp_path / "lm"
    save_checkpoint(lm, LanguageModel(LMConfig(vocab_size=5, hidden_size=4, num_layers=1)))
    rc, out, err = rnnkit(capsys, "seq2seq translate", lm, "dog")
    one_line_error(rc, out, err, f"{lm} holds a 'language_model' model, not a translation model")
    src, tgt = write_pairs(tmp_path, n=5)
    tgt.write_text("A\n", encoding="utf-8")
    rc, out, err = rnnkit(capsys, f"seq2seq eval {run_dir} --source {src} --target {tgt}")
    one_line_error(rc, out, err, f"{src} has 5 lines but {tgt} has 1")
