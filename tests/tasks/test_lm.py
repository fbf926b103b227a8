"""The language-modelling task through its Python API: train, resume, fine-tune, generate, eval."""

import itertools
import json
import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from rnnkit.checkpoint import read_config
from rnnkit.data import Vocab
from rnnkit.errors import RnnkitError
from rnnkit.models.language_model import LanguageModel, LMConfig
from rnnkit.tasks.lm import (
    LMDataConfig,
    evaluate_language_model,
    load_configs,
    load_vocab,
    train_language_model,
)
from rnnkit.tasks.text_generator import TextGenerator
from rnnkit.training import TrainConfig

SMALL = dict(hidden_size=24, num_layers=1, embedding_size=8)
WORDS = [
    "the",
    "cat",
    "dog",
    "sat",
    "ran",
    "on",
    "in",
    "a",
    "mat",
    "hat",
    "big",
    "red",
    "old",
    "house",
    "猫",
    "🐱",
]


def write_corpus(path, lines=150, seed=0, words=WORDS):
    rng = random.Random(seed)
    text = "".join(" ".join(rng.choice(words) for _ in range(6)) + "\n" for _ in range(lines))
    path.write_text(text, encoding="utf-8")
    return path


def train_cfg(**kw) -> TrainConfig:
    base = dict(epochs=2, progress=False, device="cpu", log_every=5, lr=0.01)
    return TrainConfig(**{**base, **kw})


def data_cfg(**kw) -> LMDataConfig:
    return LMDataConfig(**{**dict(seq_length=16, batch_size=4), **kw})


@pytest.fixture(scope="module")
def char_run(tmp_path_factory):
    """A char-level LSTM trained for two short epochs on text with CJK and emoji."""
    tmp = tmp_path_factory.mktemp("char")
    corpus = write_corpus(tmp / "corpus.txt")
    # unk=False: a char model that refuses characters it never saw (the default has <unk>)
    result = train_language_model(
        corpus, tmp / "run", LMConfig(**SMALL), data_cfg(unk=False), train_cfg()
    )
    return tmp / "run", corpus, result


@pytest.fixture(scope="module")
def word_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("word")
    corpus = write_corpus(tmp / "corpus.txt", lines=200, words=WORDS + ["rare"])
    with open(corpus, "a", encoding="utf-8") as f:
        f.write("once only\n")  # seen once: min_freq=2 sends both words to <unk>
    result = train_language_model(
        corpus,
        tmp / "run",
        LMConfig(cell="gru", **SMALL),
        data_cfg(level="word", seq_length=8, min_freq=2),
        train_cfg(epochs=3),
    )
    return tmp / "run", corpus, result


def greedy_chain(model: LanguageModel, ids: list[int], length: int) -> list[int]:
    """Greedy decoding with the torch model itself: the reference for the step engine."""
    model.eval()
    out = []
    with torch.no_grad():
        logits, state = model(torch.tensor([ids]))
        for _ in range(length):
            token = int(logits[0, -1].argmax())
            out.append(token)
            logits, state = model(torch.tensor([[token]]), state)
    return out


# ---- training ---------------------------------------------------------------------------------


def test_training_writes_a_complete_run_and_learns(char_run):
    run, _, result = char_run
    assert result.stopped_reason == "completed"
    for ckpt in ("best", "last"):
        names = {p.name for p in (run / ckpt).iterdir()}
        assert {"config.json", "vocab.json", "data.json", "model.safetensors"} <= names
    assert (run / "log.csv").is_file()
    losses = [r["train_loss"] for r in result.history if r["train_loss"] is not None]
    assert losses[-1] < losses[0] - 0.5  # from ~ln V down: it learned something
    assert result.best_val_loss < math.log(len(load_vocab(run)))


def test_saved_configs_are_those_of_the_run(char_run):
    run, _, _ = char_run
    model, data, train = load_configs(run)
    assert (model.hidden_size, model.num_layers, model.embedding_size) == (24, 1, 8)
    assert model.vocab_size == len(load_vocab(run))
    assert data == data_cfg(unk=False)
    assert train == train_cfg()


def test_a_fresh_run_replaces_the_run_in_its_directory(tmp_path):
    corpus = write_corpus(tmp_path / "c.txt", lines=60)
    out = tmp_path / "run"
    train_language_model(corpus, out, LMConfig(**SMALL), data_cfg(), train_cfg(epochs=1))
    assert (out / "best").is_dir()
    with pytest.raises(RnnkitError, match="already holds a run: --resume .* --overwrite"):
        train_language_model(corpus, out, LMConfig(**SMALL), data_cfg(), train_cfg(max_steps=1))
    assert load_configs(out)[2].max_steps == 0  # untouched
    # The old best/ must not stand in: best/ is the new run's final validation, at step 1.
    train_language_model(
        corpus, out, LMConfig(**SMALL), data_cfg(), train_cfg(max_steps=1), overwrite=True
    )
    assert read_config(out / "best")["step"] == 1
    assert load_configs(out)[2].max_steps == 1
    gen = TextGenerator.load(out)
    last = load_file(out / "last" / "model.safetensors")
    assert all(torch.equal(gen.model.state_dict()[k], v) for k, v in last.items())


def test_a_run_that_cannot_start_leaves_no_directory(tmp_path):
    corpus = write_corpus(tmp_path / "c.txt", lines=3)
    with pytest.raises(RnnkitError, match="batch_size 16 × seq_length 100"):
        train_language_model(corpus, tmp_path / "run", LMConfig(**SMALL), LMDataConfig())
    assert not (tmp_path / "run").exists()


def test_a_run_inside_its_data_folder_does_not_read_itself(tmp_path):
    data = tmp_path / "texts"
    data.mkdir()
    write_corpus(data / "a.txt", lines=60)
    out = data / "runs" / "lm"
    train_language_model(data, out, LMConfig(**SMALL), data_cfg(), train_cfg(max_steps=3))
    # Its checkpoints, log and PNG now lie below the data folder: resuming must skip them.
    result = train_language_model(data, out, train=train_cfg(max_steps=5), resume=True)
    assert result.steps == 5


def test_shifted_streams_move_each_epoch_and_resume_exactly(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt")
    data, model = data_cfg(shift_streams=True), LMConfig(**SMALL)
    whole = train_language_model(corpus, tmp_path / "whole", model, data, train_cfg(epochs=3))
    per_epoch = whole.steps // 3
    part = train_language_model(
        corpus, tmp_path / "part", model, data, train_cfg(epochs=3, max_steps=per_epoch + 2)
    )
    assert part.steps == per_epoch + 2  # stopped inside the second epoch
    resumed = train_language_model(
        corpus, tmp_path / "part", model, data, train_cfg(epochs=3), resume=True
    )
    assert resumed.steps == whole.steps
    a = load_file(tmp_path / "whole" / "last" / "model.safetensors")
    b = load_file(tmp_path / "part" / "last" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert load_configs(tmp_path / "whole")[1].shift_streams


def test_resume_checks_the_run_and_the_data(char_run, tmp_path):
    run, corpus, _ = char_run
    with pytest.raises(RnnkitError, match="nothing to resume in .*no last/ checkpoint"):
        train_language_model(corpus, tmp_path / "none", resume=True)
    other = tmp_path / "other.txt"
    other.write_text(corpus.read_text(encoding="utf-8").replace("猫", "犬"), encoding="utf-8")
    with pytest.raises(RnnkitError, match="not the data the run .* new: '犬'.*missing: '猫'"):
        train_language_model(other, run, resume=True)
    with pytest.raises(RnnkitError, match=r"keeps its model config; hidden_size 32 \(saved 24\)"):
        train_language_model(corpus, run, LMConfig(**{**SMALL, "hidden_size": 32}), resume=True)


def test_init_from_starts_a_new_run_from_the_weights(char_run, tmp_path):
    run, corpus, _ = char_run
    out = tmp_path / "tuned"
    # A time budget of ~0 stops before the first step: last/ holds the initial weights.
    result = train_language_model(
        corpus, out, None, data_cfg(batch_size=2), train_cfg(init_from=str(run), max_minutes=1e-9)
    )
    assert (result.stopped_reason, result.steps) == ("time_budget", 0)
    source, start = (
        load_file(run / "best" / "model.safetensors"),
        load_file(out / "last" / "model.safetensors"),
    )
    assert source.keys() == start.keys()
    assert all(torch.equal(source[k], start[k]) for k in source)
    assert load_vocab(out) == load_vocab(run)
    assert load_configs(out)[1].batch_size == 2


def test_init_from_keeps_shape_vocabulary_and_level(char_run, tmp_path):
    run, corpus, _ = char_run
    cfg = train_cfg(init_from=str(run), max_steps=1)
    with pytest.raises(RnnkitError, match=r"fixes the model's shape; hidden_size 64 \(saved 24\)"):
        train_language_model(
            corpus, tmp_path / "a", LMConfig(**{**SMALL, "hidden_size": 64}), train=cfg
        )
    with pytest.raises(RnnkitError, match="char-level model, the data config says level='word'"):
        train_language_model(corpus, tmp_path / "b", None, data_cfg(level="word", unk=False), cfg)
    unseen = write_corpus(tmp_path / "unseen.txt", words=["zebra", "cat"])
    with pytest.raises(RnnkitError, match="'z' .* is not in the vocabulary"):
        train_language_model(unseen, tmp_path / "c", None, data_cfg(unk=False), cfg)
    with pytest.raises(RnnkitError, match="lies in .* which the new run replaces"):
        train_language_model(corpus, run, None, data_cfg(unk=False), cfg, overwrite=True)
    # Dropout may change for fine-tuning: it is not part of the shape.
    tuned = LMConfig(**{**SMALL, "dropout": 0.3})
    train_language_model(corpus, tmp_path / "d", tuned, data_cfg(), cfg)
    assert load_configs(tmp_path / "d")[0].dropout == 0.3


# ---- generation -------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("embedding_size", [8, 0])
def test_greedy_generation_is_the_torch_models_argmax_chain(cell, embedding_size):
    torch.manual_seed(1)
    vocab = Vocab.from_text("abcdefgh ij\n", "char")
    model = LanguageModel(
        LMConfig(
            vocab_size=len(vocab),
            cell=cell,
            hidden_size=16,
            num_layers=2,
            embedding_size=embedding_size,
        )
    )
    with torch.no_grad():  # well-separated logits: float32 rounding cannot flip an argmax
        model.head.weight.mul_(8)
    gen = TextGenerator(model, vocab)
    text = "".join(gen.sample("abc", length=40, greedy=True))
    assert vocab.encode(text) == greedy_chain(model, vocab.encode("abc"), 40)


def test_a_checkpoint_generates_on_cpu_like_its_torch_model(char_run):
    run, _, _ = char_run
    gen = TextGenerator.load(run)
    assert next(gen.model.parameters()).device.type == "cpu"
    text = "".join(gen.sample("the ", length=30, greedy=True))
    assert gen.vocab.encode(text) == greedy_chain(gen.model, gen.vocab.encode("the "), 30)


def test_sampling_is_reproducible_and_seeded(char_run):
    gen = TextGenerator.load(char_run[0])

    def draw(seed, **kw):
        return "".join(gen.sample("the", length=60, seed=seed, **kw))

    assert draw(1) == draw(1)
    assert draw(1) != draw(2)
    greedy = "".join(gen.sample("the", length=60, greedy=True))
    assert draw(5, top_k=1) == greedy
    assert draw(5, temperature=1e-6) == greedy
    assert draw(5, top_p=1e-9) == greedy
    assert len(draw(3, top_k=3, top_p=0.9, temperature=0.7)) == 60


def test_sampling_streams_with_constant_memory(char_run):
    gen = TextGenerator.load(char_run[0])
    pieces = list(itertools.islice(gen.sample("a", length=10**9), 5))  # lazy: returns at once
    assert len(pieces) == 5 and all(len(p) == 1 for p in pieces)


def test_a_stop_string_ends_the_sample_right_after_it(char_run):
    gen = TextGenerator.load(char_run[0])
    full = "".join(gen.sample("the", length=80, greedy=True))
    stop = full[10:13]  # may be cut across several tokens
    end = full.find(stop) + len(stop)
    assert "".join(gen.sample("the", length=80, greedy=True, stop=stop)) == full[:end]
    assert "".join(gen.sample("the", length=80, greedy=True, stop="不在")) == full


def test_unicode_round_trips_through_training_and_sampling(char_run):
    run, corpus, _ = char_run
    gen = TextGenerator.load(run)
    text = corpus.read_text(encoding="utf-8")
    assert {"猫", "🐱"} <= set(gen.vocab.itos)
    assert gen.vocab.decode(gen.vocab.encode(text)) == text
    sample = "".join(gen.sample("🐱 猫", length=300, seed=0))
    assert set(sample) <= set(text)  # whole code points only: no stray bytes or U+FFFD
    assert {"猫", "🐱"} & set(sample)
    assert gen.predict("🐱", top=3)[0][1] > 0


def test_a_prime_the_model_never_saw_is_an_error_naming_the_character(char_run):
    gen = TextGenerator.load(char_run[0])
    with pytest.raises(RnnkitError, match=r"'é' \(U\+00E9\) at character 4 of the prime is not"):
        next(gen.sample("the é"))
    with pytest.raises(RnnkitError, match="not in the vocabulary"):
        gen.predict("é")
    with pytest.raises(RnnkitError, match="length must be >= 1"):
        next(gen.sample("the", length=0))


def test_predict_ranks_the_next_tokens(char_run):
    gen = TextGenerator.load(char_run[0])
    preds = gen.predict("the ", top=5)
    assert len(preds) == 5
    probs = [p for _, p in preds]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    every = gen.predict("the ", top=len(gen.vocab) + 10)
    assert len(every) == len(gen.vocab)
    assert sum(p for _, p in every) == pytest.approx(1.0, abs=1e-5)
    assert gen.predict("", top=1)[0][0] in gen.vocab.itos
    with pytest.raises(RnnkitError, match="top must be >= 1"):
        gen.predict("the", top=0)


def test_word_level_end_to_end(word_run):
    run, _, result = word_run
    assert result.stopped_reason == "completed"
    gen = TextGenerator.load(run)
    vocab = gen.vocab
    assert vocab.itos[:2] == ("<unk>", "<eos>")
    assert "once" not in vocab.stoi and "rare" in vocab.stoi
    text = "".join(gen.sample("", length=60, seed=0))
    lines = text.split("\n")
    assert len(lines) > 2  # <eos> became line breaks
    assert not any(line.startswith(" ") or line.endswith(" ") for line in lines)
    assert set(text.split()) <= set(vocab.itos)
    # An unknown word in the prime is <unk>, not an error; continuation starts with a space.
    cont = "".join(gen.sample("the zebra", length=5, greedy=True))
    assert cont.startswith((" ", "\n"))
    assert not "".join(gen.sample("the ", length=3, greedy=True)).startswith(" ")
    assert gen.predict("the zebra", top=3)[0][0] in vocab.itos
    # Beam hypotheses end at <eos>: the line break is not part of the text.
    beams = gen.beam("the cat", length=12, width=4, n_best=3)
    assert len(beams) == 3
    assert all(not text.endswith("\n") for text, _ in beams)
    scores = [lp for _, lp in beams]
    assert scores == sorted(scores, reverse=True) and scores[0] < 0


def test_word_level_greedy_matches_the_torch_chain(word_run):
    gen = TextGenerator.load(word_run[0])
    ids = gen.vocab.encode("the cat sat")
    text = "".join(gen.sample("the cat sat", length=20, greedy=True))
    expected = gen.vocab.decode(greedy_chain(gen.model, ids, 20))
    assert text.lstrip(" ") == expected


def test_beam_of_width_one_is_greedy(char_run):
    gen = TextGenerator.load(char_run[0])
    [(text, log_prob)] = gen.beam("the", length=20, width=1)
    assert text == "".join(gen.sample("the", length=20, greedy=True))
    assert log_prob < 0


# ---- evaluation -------------------------------------------------------------------------------


def test_evaluation_reports_consistent_units(char_run, tmp_path):
    run, corpus, _ = char_run
    res = evaluate_language_model(run, corpus)
    assert res["level"] == "char"
    assert res["bits_per_char"] == res["bits_per_token"] == pytest.approx(res["loss"] / math.log(2))
    assert res["perplexity"] == pytest.approx(math.exp(res["loss"]))
    assert res["tokens"] == len(corpus.read_text(encoding="utf-8")) - 1
    json.dumps(res)  # the CLI prints it as JSON


def test_evaluation_scores_every_token_of_the_text(char_run, tmp_path):
    run, _, _ = char_run
    text = "the cat sat on a mat\nthe dog 🐱\n"  # 31 characters: 30 predictions
    path = tmp_path / "short.txt"
    path.write_text(text, encoding="utf-8")
    model = TextGenerator.load(run).model
    ids = torch.tensor(load_vocab(run).encode(text))

    def nats(start, stop):  # summed loss of predicting ids[start+1 : stop+1], from a zero state
        with torch.no_grad():
            logits, _ = model(ids[None, start:stop])
        return F.cross_entropy(logits[0], ids[start + 1 : stop + 1], reduction="sum").item()

    # Shorter than one training batch (4 x 16): scored all the same, as one stream.
    res = evaluate_language_model(run, path)
    assert res["tokens"] == 30
    assert res["loss"] == pytest.approx(nats(0, 30) / 30, rel=1e-5)
    # One stream read 4 tokens at a time: the carried state makes it the same sum.
    res = evaluate_language_model(run, path, batch_size=1, seq_length=4)
    assert res["loss"] == pytest.approx(nats(0, 30) / 30, rel=1e-5)
    # Four streams of 7 predictions; the 2 left over continue the last stream.
    res = evaluate_language_model(run, path, batch_size=4, seq_length=4)
    expected = nats(0, 7) + nats(7, 14) + nats(14, 21) + nats(21, 30)
    assert res["tokens"] == 30
    assert res["loss"] == pytest.approx(expected / 30, rel=1e-5)


def test_evaluation_errors(char_run, word_run, tmp_path):
    run, _, _ = char_run
    bad = tmp_path / "bad.txt"
    bad.write_text("the cat é", encoding="utf-8")
    with pytest.raises(RnnkitError, match="'é'.*bad.txt.* not in the vocabulary"):
        evaluate_language_model(run, bad)
    one = tmp_path / "one.txt"
    one.write_text("t", encoding="utf-8")
    with pytest.raises(RnnkitError, match="holds 1 token"):
        evaluate_language_model(run, one)
    with pytest.raises(RnnkitError, match="batch_size and seq_length must be >= 0"):
        evaluate_language_model(run, bad, batch_size=-1)
    # A word model scores unknown words as <unk>, in bits per word.
    bad.write_text("the zebra sat on the mat\n" * 5, encoding="utf-8")
    res = evaluate_language_model(word_run[0], bad)
    assert res["level"] == "word" and "bits_per_word" in res


def test_generator_rejects_a_vocabulary_of_another_size(char_run):
    gen = TextGenerator.load(char_run[0])
    with pytest.raises(RnnkitError, match="the vocabulary has"):
        TextGenerator(gen.model, Vocab.from_text("abc", "char"))
    np.testing.assert_allclose(np.exp(gen.prime("the")[0]).sum(), 1.0, rtol=1e-5)


def test_suggest_completes_the_word_being_typed(char_run, word_run):
    chars = TextGenerator.load(char_run[0])
    for word, p in chars.suggest("the ca", top=3):
        assert word.startswith("ca") and len(word) > 2 and 0 < p <= 1
        assert all(ch.isalnum() or ch == "_" for ch in word)
    words = TextGenerator.load(word_run[0])
    got = words.suggest("the c", top=5)
    assert got and all(w.startswith("c") for w, _ in got)
    probs = [p for _, p in got]
    assert probs == sorted(probs, reverse=True)
    after_space = words.suggest("the ", top=3)
    predicted = [w for w, _ in words.predict("the ", 6) if w not in ("<eos>", "<unk>")]
    assert [w for w, _ in after_space] == predicted[:3]  # next words, specials left out


def test_by_default_unseen_characters_are_scored_as_unk_and_counted(tmp_path):
    corpus = write_corpus(tmp_path / "c.txt", lines=40)
    run = tmp_path / "run"
    train_language_model(corpus, run, LMConfig(**SMALL), data_cfg(), train_cfg(max_steps=3))
    assert Vocab.from_dict(json.loads((run / "last" / "vocab.json").read_text())).unk_id == 0
    other = tmp_path / "other.txt"
    other.write_text("the cat sat # on\x96 the mat\n", encoding="utf-8")
    res = evaluate_language_model(run, other)
    assert res["unknown_tokens"] == 2 and res["unknown_rate"] == pytest.approx(2 / res["tokens"])
    gen = TextGenerator.load(run)
    assert len(gen.predict("the # c", top=3)) == 3
