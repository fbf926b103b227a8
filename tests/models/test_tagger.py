"""The tagger model: shapes, padding, the CRF and softmax outputs, char encoders, metrics, and
that it learns a small entity task to F1 1.0."""

import random

import numpy as np
import pytest
import torch

from rnnkit.data.tag_encoding import casing_of
from rnnkit.errors import RnnkitError
from rnnkit.metrics.spans import span_scores
from rnnkit.models.tagger import Tagger, TaggerConfig, tag_counts
from rnnkit.nn.crf import FORBIDDEN

TAGS = ("B-LOC", "B-PER", "I-LOC", "I-PER", "O")
SMALL = dict(
    hidden_size=12,
    embedding_size=8,
    char_embedding_size=6,
    char_hidden_size=5,
    vocab_size=20,
    char_vocab_size=12,
    tags=TAGS,
    tag_scheme="BIO",
    rare_from=20,
)


def config(**kw) -> TaggerConfig:
    return TaggerConfig(**{**SMALL, **kw})


def batch(lengths, V=20, C=12, W=5, seed=0):
    """A random padded batch in the layout of rnnkit.data.tag_encoding.TagBatches."""
    g = torch.Generator().manual_seed(seed)
    B, T = len(lengths), max(lengths)
    lengths = torch.tensor(lengths)
    real = torch.arange(T)[None, :] < lengths[:, None]
    words = torch.randint(2, V, (B, T), generator=g) * real
    chars = torch.randint(2, C, (B, T, W), generator=g)
    word_len = torch.randint(1, W + 1, (B, T), generator=g)
    chars = chars * (torch.arange(W)[None, None, :] < word_len[..., None]) * real[..., None]
    casing = torch.randint(1, 8, (B, T), generator=g) * real
    targets = torch.randint(0, len(TAGS), (B, T), generator=g).masked_fill(~real, -1)
    return {
        "words": words,
        "chars": chars,
        "casing": casing,
        "lengths": lengths,
        "targets": targets,
    }


@pytest.mark.parametrize("char_encoder", ["lstm", "cnn", "none"])
@pytest.mark.parametrize("output", ["crf", "softmax"])
def test_shapes_loss_and_decoding(char_encoder, output):
    model = Tagger(config(char_encoder=char_encoder, output=output, casing_size=3))
    b = batch([4, 2, 3])
    emissions = model(b["words"], b["chars"], b["lengths"], b["casing"])
    assert emissions.shape == (3, 4, len(TAGS))
    out = model.compute_loss(b)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss) and out.num_tokens == 9
    assert out.metrics == {}  # counts only in eval mode
    out.loss.backward()
    assert model.embed.weight.grad is not None
    model.eval()
    tags = model.tag(b)
    assert tags.shape == (3, 4)
    assert (tags[1, 2:] == -1).all() and (tags[2, 3:] == -1).all()
    assert (tags[b["targets"] >= 0] >= 0).all()
    metrics = model.compute_loss(b).metrics
    assert metrics["spans"].shape == (2, 3)  # LOC, PER × (correct, predicted, gold)
    assert int(metrics["sentences"]) == 3


@pytest.mark.parametrize("char_encoder", ["lstm", "cnn"])
def test_padding_changes_nothing(char_encoder):
    """A sentence scores the same alone and beside a longer one (and char padding too)."""
    model = Tagger(config(char_encoder=char_encoder, casing_size=3)).eval()
    b = batch([5, 3])
    alone = {k: v[1:2, :3] if v.dim() > 1 else v[1:2] for k, v in b.items()}
    with torch.no_grad():
        both = model(b["words"], b["chars"], b["lengths"], b["casing"])[1, :3]
        one = model(alone["words"], alone["chars"], alone["lengths"], alone["casing"])[0]
    torch.testing.assert_close(both, one, atol=1e-5, rtol=1e-5)
    assert torch.equal(model.tag(b)[1, :3], model.tag(alone)[0])


def test_crf_loss_is_the_sentence_nll_per_word_and_decoding_respects_bio():
    model = Tagger(config())
    b = batch([4, 3])
    mask = b["targets"] >= 0
    model.eval()  # no dropout: the two calls below see the same emissions
    out = model.compute_loss(b)
    emissions = model(b["words"], b["chars"], b["lengths"], b["casing"]).float()
    nll = model.crf.neg_log_likelihood(emissions, b["targets"], mask, "sum")
    assert out.loss.item() == pytest.approx(nll.item() / 7, rel=1e-5)
    start, A, _ = model.crf.transition_scores()
    o, i_per = TAGS.index("O"), TAGS.index("I-PER")
    assert A[o, i_per] == FORBIDDEN and start[i_per] == FORBIDDEN
    # Emissions that shout I-PER everywhere still decode to a valid BIO sequence.
    loud = torch.zeros(1, 4, len(TAGS))
    loud[..., i_per] = 5.0
    path = model.decode(loud)[0].tolist()
    assert TAGS[path[0]] != "I-PER"
    no_constraints = Tagger(config(constraints=False)).eval()
    assert no_constraints.decode(loud)[0].tolist() == [i_per] * 4


def test_unk_replace_only_while_training():
    model = Tagger(config(unk_replace=1.0, rare_from=2, dropout=0.0))
    b = batch([4, 4])
    seen = []
    model.embed.register_forward_hook(lambda m, args, out: seen.append(args[0].clone()))
    model(b["words"], b["chars"], b["lengths"], b["casing"])
    model.eval()
    model(b["words"], b["chars"], b["lengths"], b["casing"])
    assert (seen[0] == 1).all()  # every word is 'rare' here: all became <unk>
    assert torch.equal(seen[1], b["words"])


def test_pretrained_rows_replace_the_random_ones():
    vectors = np.full((20, 8), np.nan, dtype=np.float32)
    vectors[5] = np.arange(8)
    model = Tagger(config())
    before = model.embed.weight.detach().clone()
    model.load_embeddings(vectors)
    assert torch.equal(model.embed.weight[5], torch.arange(8.0))
    others = torch.arange(20) != 5
    assert torch.equal(model.embed.weight[others], before[others])  # NaN rows keep theirs
    assert (model.embed.weight[0] == 0).all()
    with pytest.raises(RnnkitError, match="shape"):
        model.load_embeddings(np.zeros((3, 8), dtype=np.float32))


def test_config_checks():
    with pytest.raises(RnnkitError, match="char_encoder"):
        config(char_encoder="rnn")
    with pytest.raises(RnnkitError, match="output"):
        config(output="hmm")
    with pytest.raises(RnnkitError, match="vocab_size"):
        Tagger(config(vocab_size=2))


def test_counts_match_conlleval_scores_and_plain_tags_score_accuracy():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-LOC"]]
    pred = [["B-PER", "I-PER", "O", "B-PER"], ["O", "B-LOC"]]
    counts = tag_counts(gold, pred, spans=True)
    assert counts == {"LOC": (1, 1, 2), "PER": (1, 2, 1)}
    model = Tagger(config()).eval()
    ids = {t: i for i, t in enumerate(TAGS)}

    def tensor(seqs):
        return torch.tensor([[ids[t] for t in s] + [-1] * (4 - len(s)) for s in seqs])

    m = model.count(tensor(pred), tensor(gold))
    got = model.summarize_metrics(m, num_tokens=6)
    want = span_scores(gold, pred)
    for key in ("f1", "precision", "recall", "accuracy"):
        assert got[key] == pytest.approx(want[key])
    plain = tag_counts([["NN", "VB", "NN"]], [["NN", "NN", "NN"]], spans=False)
    assert plain == {"NN": (2, 3, 2), "VB": (0, 0, 1)}


def test_casing_classes():
    got = [casing_of(t) for t in ("1999", "12a4", "paris", "EU", "Paris", "1-a-B", "-")]
    assert got == [1, 2, 3, 4, 5, 6, 7]


# ---- learning ----------------------------------------------------------------------------------

# Each tag draws its words from its own pool; I-PER only ever follows B-PER.
POOLS = {"B-PER": [2, 3, 4, 5], "I-PER": [6, 7], "B-LOC": [8, 9, 10], "O": [11, 12, 13, 14, 15]}
NEXT = {"O": ["O", "O", "B-PER", "B-LOC"], "B-PER": ["I-PER", "O", "B-LOC"], "I-PER": ["O"]}


def synthetic(n, seed):
    """n sentences of 3-12 words as (word ids, tag ids), tags from a small chain."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length, tags = rng.randint(3, 12), [rng.choice(["O", "B-PER", "B-LOC"])]
        while len(tags) < length:
            tags.append(rng.choice(NEXT.get(tags[-1], ["O"])))
        words = [rng.choice(POOLS[t]) for t in tags]
        out.append((words, [TAGS.index(t) for t in tags]))
    return out


def as_batch(examples):
    T = max(len(w) for w, _ in examples)
    words = torch.tensor([w + [0] * (T - len(w)) for w, _ in examples])
    targets = torch.tensor([t + [-1] * (T - len(t)) for _, t in examples])
    lengths = torch.tensor([len(w) for w, _ in examples])
    return {"words": words, "lengths": lengths, "targets": targets}


@pytest.mark.parametrize("output", ["crf", "softmax"])
def test_learns_a_small_entity_task_to_f1_one(output):
    torch.manual_seed(0)
    cfg = config(char_encoder="none", output=output, vocab_size=16, dropout=0.0, unk_replace=0.0)
    model = Tagger(cfg)
    train = [as_batch(synthetic(16, seed)) for seed in range(8)]
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(6):
        for b in train:
            opt.zero_grad()
            model.compute_loss(b).loss.backward()
            opt.step()
    model.eval()
    test = as_batch(synthetic(40, seed=100))
    out = model.compute_loss(test)
    scores = model.summarize_metrics(dict(out.metrics), out.num_tokens)
    assert scores["f1"] == 1.0 and scores["accuracy"] == 1.0
