"""``rnnkit tag train|eval|predict`` as a user runs it: output, files, and one-line errors (exit
status 2, file and line named, nothing written) for every input a user can get wrong."""

import io
import json
import random
import shlex

import pytest

from rnnkit.cli.main import main
from rnnkit.data.conll import read_tagged

SMALL = (
    "--hidden-size 16 --embedding-size 8 --char-embedding-size 4 --char-hidden-size 4 "
    "--batch-size 8 --no-progress --device cpu --threads 1 --log-every 10 --lr 0.03"
)
NAMES, PLACES, OTHER = ["Ann", "Bob", "Eve"], ["Rome", "Oslo"], ["saw", "in", "the", "."]


def write_ner(path, n=60, seed=0):
    """token POS tag lines (BIO), a blank line after each sentence."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        for _ in range(rng.randint(3, 6)):
            word = rng.choice(NAMES + PLACES + OTHER)
            tag = "B-PER" if word in NAMES else "B-LOC" if word in PLACES else "O"
            lines.append(f"{word} X {tag}")
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def rnnkit(capsys, *parts) -> tuple[int, str, str]:
    """Run ``rnnkit PARTS`` in this process: (exit status, stdout, stderr)."""
    argv = [w for p in parts for w in (shlex.split(p) if isinstance(p, str) else [str(p)])]
    capsys.readouterr()
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc, err, *match):
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnkit: error: "), err
    for m in match:
        assert m in lines[0], lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli_tag")
    data = write_ner(tmp / "train.txt")
    assert main(shlex.split(f"tag train {data} --out {tmp / 'run'} --epochs 4 {SMALL}")) == 0
    return tmp


def test_train_prints_the_monitored_f1(tmp_path, capsys):
    data = write_ner(tmp_path / "train.txt", n=20)
    rc, out, _ = rnnkit(
        capsys, f"tag train {data} --out {tmp_path / 'r'} --max-steps 2 --output softmax", SMALL
    )
    assert rc == 0 and "val_f1 best" in out
    rc, _, err = rnnkit(capsys, f"tag train {data} --out {tmp_path / 'r'} --max-steps 2", SMALL)
    assert_one_line_error(rc, err, "already holds a run")


def test_eval_json_text_and_output_file(run, capsys, tmp_path):
    test = write_ner(tmp_path / "test.txt", n=20, seed=1)
    rc, out, err = rnnkit(capsys, f"tag eval {run / 'run'} {test} --json")
    assert rc == 0 and err == ""
    res = json.loads(out)
    assert list(res) == ["f1", "precision", "recall", "accuracy", "per_type", "num_sentences"]
    assert res["num_sentences"] == 20 and res["f1"] > 0.9
    rc, out, _ = rnnkit(capsys, f"tag eval {run / 'run'} {test} --output {tmp_path / 'p.txt'}")
    assert rc == 0 and out.startswith("f1 ") and "PER" in out and "predictions:" in out
    written = read_tagged(tmp_path / "p.txt")
    assert read_tagged(tmp_path / "p.txt", tag_column=2).tags == read_tagged(test).tags
    assert len(written) == 20 and written.scheme == "BIO"


def test_eval_reports_a_tag_the_model_never_saw(run, capsys, tmp_path):
    test = write_ner(tmp_path / "test.txt", n=3, seed=2)
    with open(test, "a", encoding="utf-8") as f:
        f.write("Acme X B-ORG\nCorp X I-ORG\n\n")
    rc, out, err = rnnkit(capsys, f"tag eval {run / 'run'} {test} --json")
    assert rc == 0
    line = len(test.read_text().splitlines()) - 2
    assert f"warning: {test}:{line}: tag 'B-ORG' was never seen in training" in err
    assert "I-ORG" in err and "counts as wrong" in err
    assert json.loads(out)["per_type"]["ORG"]["recall"] == 0.0


def test_predict_plain_json_and_tokens(run, capsys, monkeypatch):
    rc, out, _ = rnnkit(capsys, f"tag predict {run / 'run'} 'Ann saw Rome' Bob")
    assert rc == 0
    assert out.splitlines() == ["Ann/B-PER saw/O Rome/B-LOC", "Bob/B-PER"]
    rc, out, _ = rnnkit(capsys, f"tag predict {run / 'run'} 'Eve  in Oslo' --json")
    obj = json.loads(out)
    assert obj["tags"] == ["B-PER", "O", "B-LOC"]
    assert obj["entities"][1] == {
        "type": "LOC",
        "text": "Oslo",
        "start": 8,
        "end": 12,
        "first": 2,
        "last": 3,
    }
    monkeypatch.setattr("sys.stdin", io.StringIO("Ann\nsaw\n\nOslo\n"))
    rc, out, _ = rnnkit(capsys, f"tag predict {run / 'run'} --tokens --scheme bioes")
    assert out.splitlines() == ["Ann/S-PER saw/O", "Oslo/S-LOC"]


# ---- bad input: one line naming file and line, exit 2, nothing written -------------------------


@pytest.mark.parametrize(
    "text, flags, match",
    [
        ("a X O\nb X O\n", "--tag-column 5", [":1: 3 columns, but tag_column 5 needs at least 6"]),
        ("a X O\nb O\n", "", [":2: 2 columns, but line 1 has 3"]),
        ("", "", ["is empty"]),
        ("-DOCSTART- -X- O\n\n", "", ["holds no sentence"]),
        ("Ann B-PER\nSmith L-PER\n", "", [":2: tag 'L-PER' is in no known tag scheme"]),
        ("Ann B-PER\n", "--scheme BILOU", ["unknown tag scheme 'BILOU'"]),
        ("Ann NNP\n", "--scheme BIO", [":1: tag 'NNP' is not a span tag"]),
        ("Ann B-PER\n", "--token-column upos", ["token_column 'upos'", "CoNLL-U column name"]),
    ],
)
def test_bad_training_files(tmp_path, capsys, text, flags, match):
    data = tmp_path / "bad.txt"
    data.write_text(text, encoding="utf-8")
    rc, _, err = rnnkit(capsys, f"tag train {data} --out {tmp_path / 'run'} {flags}", SMALL)
    assert_one_line_error(rc, err, *match)
    if "--scheme BILOU" not in flags:
        assert str(data) in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "vectors, match",
    [
        ("ann 1 2 3 4 5 6 7 8\nbob 1 2 3\n", ":2: 3 values, but the first vector has 8 (line 1)"),
        ("ann 1 2 3 4\n", ":1: the vectors have 4 dimensions but --embedding-size is 8"),
    ],
)
def test_bad_word_vectors(tmp_path, capsys, vectors, match):
    data = write_ner(tmp_path / "train.txt", n=5)
    path = tmp_path / "vec.txt"
    path.write_text(vectors, encoding="utf-8")
    rc, _, err = rnnkit(
        capsys, f"tag train {data} --out {tmp_path / 'run'} --word-vectors {path}", SMALL
    )
    assert_one_line_error(rc, err, str(path) + match)
    assert not (tmp_path / "run").exists()


def test_bad_eval_file_writes_nothing(run, capsys, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("Ann X B-PER\nRome B-LOC\n", encoding="utf-8")
    out = tmp_path / "pred.txt"
    rc, _, err = rnnkit(capsys, f"tag eval {run / 'run'} {bad} --output {out}")
    assert_one_line_error(rc, err, f"{bad}:2: 2 columns")
    assert not out.exists()
    rc, _, err = rnnkit(capsys, f"tag predict {run / 'run'}", "Ann", "--scheme XYZ")
    assert_one_line_error(rc, err, "unknown tag scheme 'XYZ'")
