"""``rnnkit classify train|eval|predict|cv`` as a user runs it, and every bad input the issue
lists: one line naming the file (and line) and what was expected, exit 2, nothing written."""

import io
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "tasks"))
from test_classify import write_sentiment, write_series  # noqa: E402
from test_cli_lm import assert_one_line_error, rnnkit  # noqa: E402

SMALL = (
    "--hidden-size 12 --embedding-size 8 --dropout 0 --batch-size 8 --no-progress --device cpu "
    "--threads 1 --lr 0.02 --log-every 5"
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from rnnkit.cli.main import main

    tmp = tmp_path_factory.mktemp("cli_cls")
    data, val = write_sentiment(tmp / "train.txt"), write_sentiment(tmp / "val.txt", 40, 1)
    argv = f"classify train {data} --val {val} --out {tmp / 'run'} {SMALL} --epochs 12"
    assert main([*argv.split(), "--pooling", "attention"]) == 0
    return {"tmp": tmp, "run": tmp / "run", "val": val, "data": data}


def test_train_prints_the_monitored_figure(capsys, tmp_path):
    data = write_sentiment(tmp_path / "d.txt", 60)
    rc, out, err = rnnkit(
        capsys, "classify train", data, "--out", tmp_path / "r", SMALL, "--epochs 2"
    )
    assert rc == 0, err
    assert "stopped (completed) after 112 steps in fp32; val_expected_accuracy best" in out
    cfg = json.loads((tmp_path / "r" / "last" / "config.json").read_text())
    assert cfg["train_config"]["monitor"] == "val_expected_accuracy"  # the task's default
    assert cfg["model_config"]["hidden_size"] == 12


def test_eval_json_and_plot(capsys, run, tmp_path):
    png = tmp_path / "cm.png"
    rc, out, err = rnnkit(capsys, "classify eval", run["run"], run["val"], "--json --plot", png)
    assert rc == 0, err
    res = json.loads(out)
    assert {"accuracy", "macro_f1", "num_examples", "per_class", "confusion_matrix"} <= set(res)
    assert res["accuracy"] == 1.0 and res["num_examples"] == 40
    assert png.read_bytes()[:4] == b"\x89PNG"
    rc, out, _ = rnnkit(capsys, "classify eval", run["run"], run["val"])
    assert rc == 0 and out.startswith("accuracy 1.0000   macro-F1 1.0000   (40 examples)")


def test_predict_texts_file_stdin_json_and_explain(capsys, run, tmp_path, monkeypatch):
    rc, out, err = rnnkit(capsys, "classify predict", run["run"], "'a superb film'", "'so dull'")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("pos\t") and lines[1].startswith("neg\t")
    f = tmp_path / "in.txt"
    f.write_text("a superb film\n\nso dull\n", encoding="utf-8")
    rc, out, _ = rnnkit(capsys, "classify predict", run["run"], "--file", f, "--json --explain")
    objs = [json.loads(line) for line in out.splitlines()]
    assert [o["label"] for o in objs] == ["pos", "neg"]
    weights = objs[0]["tokens"]
    assert [t["token"] for t in weights] == ["a", "superb", "film"]
    assert sum(t["weight"] for t in weights) == pytest.approx(1.0)
    # The sentiment word carries the decision.
    assert max(weights, key=lambda t: t["weight"])["token"] == "superb"
    monkeypatch.setattr("sys.stdin", io.StringIO(f.read_text(encoding="utf-8")))
    rc, out, _ = rnnkit(capsys, "classify predict", run["run"], "--explain")
    assert rc == 0 and "*superb[" in out.splitlines()[1]


def test_cv_from_the_command_line(capsys, tmp_path):
    data = write_series(tmp_path / "s.tsv", n=40)
    rc, out, err = rnnkit(
        capsys, "classify cv", data, "--out", tmp_path / "cv", "--folds 2 --epochs 3", SMALL
    )
    assert rc == 0, err
    assert "2-fold: accuracy" in out and (tmp_path / "cv" / "fold-02" / "best").is_dir()


def bad_inputs(tmp: Path) -> dict[str, tuple[list, str]]:
    """case → (command words, what the error line must contain)."""
    empty = tmp / "empty.txt"
    empty.write_text("")
    single = write_sentiment(tmp / "single.txt", n=10, labels=("pos",))
    csv = tmp / "rows.csv"
    csv.write_text("review,stars\ngood film,5\nbad film,1\n")
    short = tmp / "short.csv"
    short.write_text("text,label\ngood film,pos\nbad film\n")
    nan = tmp / "nan.tsv"
    nan.write_text("1\t0.1\t0.2\t0.3\n2\t0.3\tnan\t0.1\n")
    word = tmp / "word.tsv"
    word.write_text("1\t0.1\t0.2\t0.3\n2\t0.3\tabc\t0.1\n")
    ts = tmp / "bad.ts"
    ts.write_text(
        "@problemName x\n@univariate true\n@equalLength true\n@seriesLength 3\n"
        "@classLabel true 1 2\n@data\n0.1,0.2,0.3:1\n0.1,0.2:2\n"
    )
    noclass = tmp / "noclass"
    (noclass / "a").mkdir(parents=True)
    (noclass / "a" / "x.txt").write_text("some text")
    (noclass / "b").mkdir()
    return {
        "empty file": (["classify train", empty], "empty.txt"),
        "single class": (["classify train", single], "single class"),
        "no such label column": (["classify train", csv, "--label-column label"], "label"),
        "missing field": (["classify train", short], "short.csv:3"),
        "NaN in a series": (["classify train", nan], "nan.tsv:2"),
        "non-numeric value": (["classify train", word, "--format tsv"], "word.tsv:2"),
        "ts header disagrees": (["classify train", ts], "bad.ts:8"),
        "class with no examples": (["classify train", noclass], "b"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "empty file",
        "single class",
        "no such label column",
        "missing field",
        "NaN in a series",
        "non-numeric value",
        "ts header disagrees",
        "class with no examples",
    ],
)
def test_bad_training_data_is_one_line_and_writes_nothing(capsys, tmp_path, case):
    words, match = bad_inputs(tmp_path)[case]
    out = tmp_path / "run"
    rc, _, err = rnnkit(capsys, *words, "--out", out, SMALL)
    assert_one_line_error(rc, err, match)
    assert not out.exists()


def test_bad_eval_and_predict_inputs(capsys, run, tmp_path):
    unseen = write_sentiment(tmp_path / "unseen.txt", n=4, labels=("pos", "meh"))
    rc, _, err = rnnkit(capsys, "classify eval", run["run"], unseen)
    assert_one_line_error(rc, err, "class 'meh' at")
    rc, _, err = rnnkit(capsys, "classify predict", run["run"], "''")
    assert_one_line_error(rc, err, "input 1 is empty")
    series = write_series(tmp_path / "s.tsv", n=4)
    rc, _, err = rnnkit(capsys, "classify eval", run["run"], series)
    assert_one_line_error(rc, err, "holds series, but this classifier reads text")
    rc, _, err = rnnkit(capsys, "lm sample", run["run"])
    assert_one_line_error(rc, err, "holds a 'sequence_classifier' model, not a language model")


def test_texts_may_follow_the_options(capsys, run):
    rc, out, err = rnnkit(capsys, "classify predict", run["run"], "--json 'a superb film'")
    assert rc == 0, err
    assert json.loads(out)["label"] == "pos"
    rc, _, err = rnnkit(capsys, "classify predict", run["run"], "--bogus 'a superb film'")
    assert rc == 2 and "unrecognized arguments: --bogus" in err
