"""rnnkit.tasks.classify through the Python API: it learns, evaluates, predicts, resumes exactly,
cross-validates, and refuses data it cannot use with one clear error."""

import json
import random

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rnnkit.errors import RnnkitError
from rnnkit.models.classifier import ClassifierConfig
from rnnkit.tasks.classify import (
    Classifier,
    ClassifyDataConfig,
    cross_validate,
    evaluate_classifier,
    train_classifier,
)
from rnnkit.training import TrainConfig

GOOD, BAD = ["great", "fine", "lovely", "superb"], ["awful", "dull", "poor", "boring"]
FILLER = "the a film movie plot was is and very it".split()  # noqa: SIM905
SMALL = ClassifierConfig(hidden_size=12, embedding_size=8, dropout=0.0)


def sentence(rng: random.Random, words: list[str]) -> str:
    body = [rng.choice(FILLER) for _ in range(rng.randint(3, 9))]
    body.insert(rng.randrange(len(body) + 1), rng.choice(words))
    return " ".join(body)


def write_sentiment(path, n=120, seed=0, labels=("pos", "neg")):
    """SST-style lines: label, a space, the text. The label word decides the class."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        label = labels[i % len(labels)]
        lines.append(f"{label} {sentence(rng, GOOD if label == labels[0] else BAD)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_series(path, n=60, seed=0, length=30):
    """UCR .tsv: label first, then the values; class 1 rises, class 2 falls (plus noise)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = 1 + i % 2
        trend = np.linspace(-1, 1, length) * (1 if label == 1 else -1)
        values = 3.0 + trend + 0.3 * rng.standard_normal(length)
        rows.append("\t".join([str(label), *(f"{v:.4f}" for v in values)]))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def train_cfg(**kw) -> TrainConfig:
    base = dict(epochs=12, lr=0.02, progress=False, device="cpu", log_every=5, threads=1)
    base.update(monitor="val_accuracy")
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cls")
    data = write_sentiment(tmp / "train.txt")
    val = write_sentiment(tmp / "val.txt", n=40, seed=1)
    dc = ClassifyDataConfig(val=str(val), batch_size=8)
    result = train_classifier(data, tmp / "run", SMALL, dc, train_cfg())
    return {"tmp": tmp, "data": data, "val": val, "run": tmp / "run", "result": result}


def test_a_text_classifier_learns_and_reports_metrics(text_run):
    result = text_run["result"]
    assert result.best_metrics["val_accuracy"] == 1.0
    assert result.monitor == "val_accuracy"
    header = (text_run["run"] / "log.csv").read_text().splitlines()[0].split(",")
    for column in ("train_accuracy", "train_macro_f1", "val_accuracy", "val_macro_f1"):
        assert column in header
    scores = evaluate_classifier(text_run["run"], text_run["val"])
    assert scores["accuracy"] == 1.0 and scores["num_examples"] == 40
    assert set(scores) >= {"accuracy", "macro_f1", "num_examples", "per_class", "confusion_matrix"}
    assert scores["labels"] == ["neg", "pos"]
    assert scores["confusion_matrix"] == [[20, 0], [0, 20]]
    assert scores["per_class"]["pos"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 20}


def test_predict_gives_label_and_probabilities(text_run):
    clf = Classifier.load(text_run["run"])
    preds = clf.predict(["it was a superb film", "very dull plot", "a lovely movie , unseenword"])
    assert [p.label for p in preds] == ["pos", "neg", "pos"]
    for p in preds:
        assert set(p.probabilities) == {"neg", "pos"}
        assert sum(p.probabilities.values()) == pytest.approx(1.0)
        assert p.probabilities[p.label] > 0.5
    with pytest.raises(RnnkitError, match="input 2 is empty"):
        clf.predict(["fine", "   "])
    with pytest.raises(RnnkitError, match="reads text"):
        clf.predict([np.zeros((5, 1))])


def test_a_class_never_seen_in_training_is_an_error_at_eval(text_run, tmp_path):
    other = write_sentiment(tmp_path / "other.txt", n=4, labels=("pos", "meh"))
    with pytest.raises(
        RnnkitError, match=r"class 'meh' at .*other.txt:2 was never seen in training"
    ):
        evaluate_classifier(text_run["run"], other)


def test_resume_continues_exactly_and_refuses_other_data(text_run, tmp_path):
    data, dc = text_run["data"], ClassifyDataConfig(val=str(text_run["val"]), batch_size=8)
    cfg = train_cfg(epochs=3)
    model = ClassifierConfig(hidden_size=12, embedding_size=8, dropout=0.3, pooling="attention")
    train_classifier(data, tmp_path / "full", model, dc, cfg)
    train_classifier(data, tmp_path / "part", model, dc, cfg.replace(max_steps=20))
    result = train_classifier(data, tmp_path / "part", train=cfg, resume=True)
    assert result.steps == 180  # 3 epochs of 4 passes (an epoch is >= 50 batches)
    a, b = (load_file(tmp_path / r / "last" / "model.safetensors") for r in ("full", "part"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = write_sentiment(tmp_path / "other.txt", seed=5)
    with pytest.raises(RnnkitError, match="not the data the run .* was trained on"):
        train_classifier(other, tmp_path / "part", train=cfg.replace(epochs=4), resume=True)
    with pytest.raises(RnnkitError, match="already holds a run"):
        train_classifier(data, tmp_path / "part", model, dc, cfg)


def test_a_series_classifier_learns(tmp_path):
    data = write_series(tmp_path / "train.tsv")
    dc = ClassifyDataConfig(val_fraction=0.25, batch_size=8)
    model = ClassifierConfig(hidden_size=8, embedding_size=4, dropout=0.0, pooling="final")
    result = train_classifier(data, tmp_path / "run", model, dc, train_cfg(epochs=15))
    assert result.best_metrics["val_accuracy"] == 1.0
    saved = json.loads((tmp_path / "run" / "best" / "config.json").read_text())["model_config"]
    assert (saved["input_kind"], saved["input_channels"], saved["num_classes"]) == ("series", 1, 2)
    clf = Classifier.load(tmp_path / "run")
    # z-normalised per series: an offset or a scale does not change the class
    rising = np.linspace(-1, 1, 30)
    preds = clf.predict([100 + 5 * rising, -rising])
    assert [p.label for p in preds] == ["1", "2"]


def test_cross_validation_reports_mean_and_std(tmp_path):
    data = write_sentiment(tmp_path / "all.txt", n=120)
    res = cross_validate(
        data,
        tmp_path / "cv",
        SMALL,
        ClassifyDataConfig(batch_size=8),
        train_cfg(epochs=15),
        folds=3,
    )
    assert [r["fold"] for r in res["folds"]] == [1, 2, 3]
    assert sum(r["num_examples"] for r in res["folds"]) == 120
    accs = [r["accuracy"] for r in res["folds"]]
    assert res["accuracy"]["mean"] == pytest.approx(np.mean(accs))
    assert res["accuracy"]["std"] == pytest.approx(np.std(accs, ddof=1))
    assert res["accuracy"]["mean"] > 0.9
    assert json.loads((tmp_path / "cv" / "cv.json").read_text()) == res
    with pytest.raises(RnnkitError, match="already holds a cross-validation"):
        cross_validate(data, tmp_path / "cv", SMALL, folds=3)
