"""The tagging task through its Python API: train, resume, init_from, evaluate, predict."""

import random

import pytest
import torch
from safetensors.torch import load_file

from rnnkit.data.conll import read_tagged
from rnnkit.data.tag_schemes import convert_tags, detect_scheme
from rnnkit.errors import RnnkitError
from rnnkit.metrics.spans import token_counts
from rnnkit.models.tagger import Tagger, TaggerConfig
from rnnkit.tasks.tag import TAG_TASK, TagDataConfig, TagPredictor, train_tagger
from rnnkit.training import TrainConfig

SMALL = dict(hidden_size=16, embedding_size=8, char_embedding_size=4, char_hidden_size=4)
FIRST = ["Ann", "Bob", "Eve", "Max", "Ida"]
LAST = ["Smith", "Jones", "Brown"]
PLACES = ["Rome", "Oslo", "Lima", "Kiev", "Bern"]
OTHER = ["saw", "met", "in", "the", "and", "near", "then", "."]


def sentences(n, seed):
    """(tokens, BIO tags) of sentences with people (one or two words) and places."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        toks, tags = [], []
        for _ in range(rng.randint(3, 7)):
            r = rng.random()
            if r < 0.3:
                toks.append(rng.choice(FIRST))
                tags.append("B-PER")
                if rng.random() < 0.5:
                    toks.append(rng.choice(LAST))
                    tags.append("I-PER")
            elif r < 0.5:
                toks.append(rng.choice(PLACES))
                tags.append("B-LOC")
            else:
                toks.append(rng.choice(OTHER))
                tags.append("O")
        out.append((toks, tags))
    return out


def write_conll(path, n=80, seed=0, scheme="BIO", extra=()):
    """A CoNLL file: token, a POS-like column, tag in ``scheme``; ``extra`` sentences too."""
    lines = ["-DOCSTART- -X- O", ""]
    for toks, tags in [*sentences(n, seed), *extra]:
        tags = convert_tags(tags, "BIO", scheme) if scheme != "BIO" else tags
        lines += [f"{t} X {g}" for t, g in zip(toks, tags, strict=True)] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def train_cfg(**kw):
    base = dict(epochs=6, lr=0.03, progress=False, device="cpu", log_every=10, threads=1)
    return TrainConfig(**{**base, "monitor": "val_f1", **kw})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tagger trained on BIO data converted to BIOES, with a validation file."""
    tmp = tmp_path_factory.mktemp("tag")
    train = write_conll(tmp / "train.txt", n=60)
    val = write_conll(tmp / "val.txt", n=30, seed=1)
    data = TagDataConfig(val=str(val), scheme="bioes", batch_size=8)
    result = train_tagger(train, tmp / "run", TaggerConfig(**SMALL), data, train_cfg(epochs=4))
    return tmp, result


def test_training_reaches_a_high_validation_f1(trained):
    tmp, result = trained
    assert result.monitor == "val_f1"
    assert result.best_metrics["val_f1"] > 0.9
    assert {"val_precision", "val_recall", "val_accuracy"} <= set(result.best_metrics)
    model = TagPredictor.load(tmp / "run").model
    assert model.config.tag_scheme == "BIOES" and "E-PER" in model.config.tags


def test_eval_scores_and_output_round_trip_in_the_files_scheme(trained, tmp_path):
    tmp, _ = trained
    test = write_conll(tmp_path / "test.iob1", n=40, seed=2, scheme="IOB1")
    tagger = TagPredictor.load(tmp / "run")
    out = tmp_path / "pred.txt"
    scores = tagger.evaluate(test, output=out)
    assert set(scores) == {"f1", "precision", "recall", "accuracy", "per_type", "num_sentences"}
    assert scores["num_sentences"] == 40 and scores["f1"] > 0.9
    assert set(scores["per_type"]) == {"LOC", "PER"}
    assert set(scores["per_type"]["PER"]) == {"precision", "recall", "f1", "support"}
    gold = read_tagged(test)
    written = read_tagged(out)  # the last column: the predictions
    assert [s.tokens for s in written.sentences] == [s.tokens for s in gold.sentences]
    assert read_tagged(out, tag_column=-2).tags == gold.tags
    assert detect_scheme(written.tags) in ("IOB1", None)  # written back as the file has them
    correct, total = token_counts(gold.tags, written.tags)
    assert correct / total == pytest.approx(scores["accuracy"])


def test_a_tag_the_model_never_saw_counts_as_wrong(trained, tmp_path):
    tmp, _ = trained
    odd = [(["Acme", "met", "Ann"], ["B-ORG", "O", "B-PER"])]
    test = write_conll(tmp_path / "test.txt", n=5, seed=3, extra=odd)
    tagger = TagPredictor.load(tmp / "run")
    result = tagger.evaluate_corpus(tagger.data_config.read(test))
    first_line = 3 + sum(len(toks) + 1 for toks, _ in sentences(5, 3))  # after -DOCSTART-
    assert result.unseen == {"B-ORG": (1, first_line)}
    assert result.scores["per_type"]["ORG"]["recall"] == 0.0
    assert result.scores["per_type"]["ORG"]["support"] == 1


def test_predict_gives_entities_with_character_offsets(trained):
    tmp, _ = trained
    tagger = TagPredictor.load(tmp / "run")
    text = "Ann  Smith met Bob in Rome ."
    [tagged] = tagger.predict([text])
    assert tagged.tokens == ["Ann", "Smith", "met", "Bob", "in", "Rome", "."]
    assert tagged.tags == ["B-PER", "E-PER", "O", "S-PER", "O", "S-LOC", "O"]
    spans = [(e.type, e.text, e.start, e.end, e.first, e.last) for e in tagged.entities]
    assert spans == [
        ("PER", "Ann  Smith", 0, 10, 0, 2),
        ("PER", "Bob", 15, 18, 3, 4),
        ("LOC", "Rome", 22, 26, 5, 6),
    ]
    [pre] = tagger.predict([["Ann", "Smith", "met", "Bob"]], scheme="BIO")
    assert pre.tags == ["B-PER", "I-PER", "O", "B-PER"] and pre.text == "Ann Smith met Bob"
    assert pre.entities[1].start == 14
    with pytest.raises(RnnkitError, match="input 2 is empty"):
        tagger.predict(["Ann", "  "])


def weights(run, ckpt="last"):
    return load_file(run / ckpt / "model.safetensors")


def test_resume_is_exact_and_init_from_starts_a_new_run(tmp_path):
    train = write_conll(tmp_path / "train.txt", n=24)
    data = TagDataConfig(batch_size=8, val_fraction=0.25)
    model = TaggerConfig(**SMALL, char_encoder="cnn", casing_size=2)
    full = train_tagger(train, tmp_path / "full", model, data, train_cfg(epochs=2))
    train_tagger(train, tmp_path / "part", model, data, train_cfg(epochs=1))
    resumed = train_tagger(train, tmp_path / "part", train=train_cfg(epochs=2), resume=True)
    assert resumed.steps == full.steps == 6
    a, b = weights(tmp_path / "full"), weights(tmp_path / "part")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    other = write_conll(tmp_path / "other.txt", n=24, seed=5)
    with pytest.raises(RnnkitError, match="not the data the run"):
        train_tagger(other, tmp_path / "part", train=train_cfg(epochs=3), resume=True)

    start = train_cfg(epochs=1, init_from=str(tmp_path / "full" / "last"))
    tuned = TaggerConfig(**SMALL, char_encoder="cnn", casing_size=2, dropout=0.1)
    train_tagger(other, tmp_path / "tuned", tuned, data, start)
    loaded = TagPredictor.load(tmp_path / "tuned")
    assert loaded.model.config.dropout == 0.1
    assert (
        loaded.saved.extras["vocab.json"]
        == TagPredictor.load(tmp_path / "full").saved.extras["vocab.json"]
    )
    with pytest.raises(RnnkitError, match="hidden_size"):
        bigger = TaggerConfig(**{**SMALL, "hidden_size": 32})
        train_tagger(other, tmp_path / "bigger", bigger, data, start)
    assert not (tmp_path / "bigger").exists()


def test_word_vectors_start_the_embedding(tmp_path):
    train = write_conll(tmp_path / "train.txt", n=10)
    vectors = tmp_path / "vec.txt"
    vectors.write_text("rome 1 2 3 4 5 6 7 8\nann 8 7 6 5 4 3 2 1\nzzz 0 0 0 0 0 0 0 0\n")
    data = TagDataConfig(word_vectors=str(vectors), val_fraction=0)
    prepared = TAG_TASK.prepare(
        train, tmp_path / "run", TaggerConfig(**SMALL), data, train_cfg(), None
    )
    assert prepared.extra_files["dataset.json"]["vectors_found"] == 2
    model = Tagger(prepared.model)
    prepared.initialize(model)  # what the run lifecycle does to a fresh model
    words = prepared.extra_files["vocab.json"]["itos"]
    assert model.embed.weight[words.index("rome")].tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    assert model.embed.weight[words.index("bob")].abs().max() < 1  # random: U(±sqrt(3/E))
    data = TagDataConfig(word_vectors=str(vectors), val_fraction=0)
    with pytest.raises(RnnkitError, match=r"vec\.txt:1: the vectors have 8 dimensions but"):
        train_tagger(train, tmp_path / "r", TaggerConfig(**{**SMALL, "embedding_size": 4}), data)
    assert not (tmp_path / "r").exists()


def test_parts_of_speech_from_conllu(tmp_path):
    rows = []
    for s, (toks, tags) in enumerate(sentences(20, 7)):
        rows.append(f"# sent_id = {s}")
        for i, (t, g) in enumerate(zip(toks, tags, strict=True), 1):
            upos = {"B-PER": "PROPN", "I-PER": "PROPN", "B-LOC": "PROPN"}.get(g, "X")
            rows.append(f"{i}\t{t}\t_\t{upos}\t_\t_\t0\t_\t_\t_")
        rows.append("")
    path = tmp_path / "pos.conllu"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    data = TagDataConfig(tag_column="upos", batch_size=8)
    result = train_tagger(path, tmp_path / "run", TaggerConfig(**SMALL), data, train_cfg(epochs=2))
    assert "val_f1" in result.last_metrics
    tagger = TagPredictor.load(tmp_path / "run")
    assert tagger.scheme == "" and tagger.tags == ("PROPN", "X")
    scores = tagger.evaluate(path)
    assert scores["f1"] == pytest.approx(scores["accuracy"])  # a word is a span of its tag
    assert set(scores["per_type"]) == {"PROPN", "X"}
    words = sum(len(toks) for toks, _ in sentences(20, 7))
    assert sum(t["support"] for t in scores["per_type"].values()) == words
