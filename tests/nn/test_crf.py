"""CRF: the forward algorithm, path scores and Viterbi against enumeration of all K^L paths."""

import itertools

import pytest
import torch

from rnnkit.errors import RnnkitError
from rnnkit.nn import CRF, bio_constraints
from rnnkit.nn.crf import FORBIDDEN

LENGTHS = [4, 3, 1, 2]  # padding of every amount, and a one-step sequence
K = 3


def random_crf(num_tags: int = K, constraints=None) -> CRF:
    """Parameters of order 1 (not the small initial ones), so transitions matter."""
    crf = CRF(num_tags, constraints).double()
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    return crf


def batch(lengths: list[int], num_tags: int = K) -> tuple[torch.Tensor, torch.Tensor]:
    """Emissions (B, T, K) and the prefix mask; padding emissions are huge, so any leak shows."""
    B, T = len(lengths), max(lengths)
    mask = torch.arange(T) < torch.tensor(lengths).unsqueeze(1)
    emissions = torch.randn(B, T, num_tags, dtype=torch.float64)
    emissions[~mask] = 1e3
    return emissions, mask


def path_score(crf: CRF, emissions: torch.Tensor, path: tuple[int, ...]) -> torch.Tensor:
    """s(x, y) of one unpadded row (L, K), written as the sum in the module docstring."""
    start, A, end = crf.transition_scores()
    s = start[path[0]] + emissions[0, path[0]]
    for t in range(1, len(path)):
        s = s + A[path[t - 1], path[t]] + emissions[t, path[t]]
    return s + end[path[-1]]


def all_paths(crf: CRF, emissions: torch.Tensor) -> tuple[list[tuple[int, ...]], torch.Tensor]:
    L, num_tags = emissions.shape
    paths = list(itertools.product(range(num_tags), repeat=L))
    return paths, torch.stack([path_score(crf, emissions, p) for p in paths])


def test_log_partition_matches_enumeration():
    crf = random_crf()
    emissions, mask = batch(LENGTHS)
    log_Z = crf.log_partition(emissions, mask)
    for b, L in enumerate(LENGTHS):
        _, scores = all_paths(crf, emissions[b, :L])
        torch.testing.assert_close(log_Z[b], torch.logsumexp(scores, 0))


def test_score_matches_the_sum_and_mask_none_means_all_steps():
    crf = random_crf()
    emissions, mask = batch(LENGTHS)
    tags = torch.randint(0, K, mask.shape)
    tags[~mask] = -1  # padding tags are never read
    scores = crf.score(emissions, tags, mask)
    for b, L in enumerate(LENGTHS):
        torch.testing.assert_close(scores[b], path_score(crf, emissions[b, :L], tags[b, :L]))
    full = torch.randint(0, K, (2, 4))
    e = emissions[:2].clone().fill_(0.5)
    torch.testing.assert_close(crf.score(e, full), crf.score(e, full, torch.ones(2, 4).bool()))
    torch.testing.assert_close(crf.log_partition(e), crf.log_partition(e, torch.ones(2, 4).bool()))


def test_viterbi_matches_enumeration():
    crf = random_crf(num_tags=4)
    emissions, mask = batch(LENGTHS, num_tags=4)
    tags, best = crf.decode(emissions, mask)
    assert tags.dtype == torch.long and tags.shape == mask.shape
    for b, L in enumerate(LENGTHS):
        paths, scores = all_paths(crf, emissions[b, :L])
        assert tags[b, :L].tolist() == list(paths[scores.argmax()])
        assert (tags[b, L:] == -1).all()
        torch.testing.assert_close(best[b], scores.max())
    torch.testing.assert_close(best, crf.score(emissions, tags, mask))


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_nll_gradients_match_autograd_through_enumeration(reduction):
    crf = random_crf()
    emissions, mask = batch(LENGTHS)
    emissions.requires_grad_(True)
    tags = torch.randint(0, K, mask.shape)

    nll = crf.neg_log_likelihood(emissions, tags, mask, reduction=reduction)
    ours = torch.autograd.grad(nll, [emissions, *crf.parameters()])
    brute = []
    for b, L in enumerate(LENGTHS):
        _, scores = all_paths(crf, emissions[b, :L])
        gold = path_score(crf, emissions[b, :L], tuple(tags[b, :L].tolist()))
        brute.append(torch.logsumexp(scores, 0) - gold)
    brute_nll = torch.stack(brute).sum() if reduction == "sum" else torch.stack(brute).mean()
    reference = torch.autograd.grad(brute_nll, [emissions, *crf.parameters()])

    torch.testing.assert_close(nll, brute_nll)
    for a, r in zip(ours, reference, strict=True):
        torch.testing.assert_close(a, r)
    assert ours[0][~mask].abs().max() == 0  # padding emissions get no gradient


def test_reductions_and_forward():
    crf = random_crf()
    emissions, mask = batch(LENGTHS)
    tags = torch.randint(0, K, mask.shape)
    each = crf.neg_log_likelihood(emissions, tags, mask, reduction="none")
    assert each.shape == (4,) and (each > 0).all()  # -log p > 0 with K^L > 1 paths
    torch.testing.assert_close(crf.neg_log_likelihood(emissions, tags, mask, "sum"), each.sum())
    torch.testing.assert_close(crf(emissions, tags, mask), each.mean())


# ---------------------------------------------------------------- constraints

BIO_TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def named(tags: list[str], pairs: list[tuple[int, int]]) -> set[tuple[str, str]]:
    names = [*tags, "START", "END"]
    return {(names[i], names[j]) for i, j in pairs}


def test_bio_constraints():
    allowed = named(BIO_TAGS, bio_constraints(BIO_TAGS, "BIO"))
    for pair in [("O", "I-PER"), ("B-PER", "I-LOC"), ("I-LOC", "I-PER"), ("START", "I-LOC")]:
        assert pair not in allowed
    for pair in [("O", "B-PER"), ("B-PER", "I-PER"), ("I-PER", "I-PER"), ("I-PER", "B-PER")]:
        assert pair in allowed
    assert {("START", t) for t in ["O", "B-PER", "B-LOC"]} <= allowed
    assert {(t, "END") for t in BIO_TAGS} <= allowed
    # 25 pairs, less the 3 x 2 ways into an I-x from the wrong tag; 3 starts; 5 ends
    assert len(allowed) == 25 - 3 * 2 + 3 + 5


def test_iob1_constraints():
    allowed = named(BIO_TAGS, bio_constraints(BIO_TAGS, "IOB1"))
    assert ("START", "I-PER") in allowed and ("START", "B-PER") not in allowed
    assert ("O", "I-LOC") in allowed and ("I-PER", "I-LOC") in allowed  # a new LOC chunk
    assert ("I-PER", "B-PER") in allowed and ("O", "B-PER") not in allowed
    assert ("I-PER", "B-LOC") not in allowed


def test_bioes_constraints():
    tags = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
    allowed = named(tags, bio_constraints(tags, "BIOES"))
    starts = {j for i, j in allowed if i == "START"}
    ends = {i for i, j in allowed if j == "END"}
    assert starts == {"O", "B-PER", "S-PER", "B-LOC", "S-LOC"}
    assert ends == {"O", "E-PER", "S-PER", "E-LOC", "S-LOC"}
    assert {("B-PER", "I-PER"), ("B-PER", "E-PER"), ("I-PER", "E-PER"), ("E-PER", "B-LOC")} <= (
        allowed
    )
    forbidden = [("B-PER", "O"), ("I-PER", "O"), ("O", "I-PER"), ("O", "E-PER"), ("S-PER", "I-PER")]
    forbidden += [("B-PER", "E-LOC"), ("E-PER", "E-PER"), ("B-PER", "B-PER")]
    assert not set(forbidden) & allowed


def forbidden_moves(tags: list[str], pairs, path: list[int]) -> list[tuple[str, str]]:
    allowed = named(tags, pairs)
    names = ["START", *(tags[i] for i in path), "END"]
    return [move for move in itertools.pairwise(names) if move not in allowed]


@pytest.mark.parametrize("scheme", ["BIO", "BIOES"])
def test_decoding_never_takes_a_forbidden_transition(scheme):
    tags = BIO_TAGS if scheme == "BIO" else ["O", "B-X", "I-X", "E-X", "S-X", "B-Y", "E-Y", "S-Y"]
    pairs = bio_constraints(tags, scheme)
    crf = random_crf(len(tags), pairs)
    lengths = torch.randint(1, 8, (200,)).tolist()
    emissions, mask = batch(lengths, len(tags))
    emissions = 3 * emissions.masked_fill(~mask.unsqueeze(2), 0)  # strong, often "wrong" tags
    decoded, _ = crf.decode(emissions, mask)
    for row, L in zip(decoded.tolist(), lengths, strict=True):
        assert forbidden_moves(tags, pairs, row[:L]) == []


def test_forbidden_paths_have_zero_probability():
    pairs = bio_constraints(BIO_TAGS, "BIO")
    crf = random_crf(len(BIO_TAGS), pairs)
    emissions = 3 * torch.randn(4, len(BIO_TAGS), dtype=torch.float64)
    paths, scores = all_paths(crf, emissions)
    p = torch.exp(scores - crf.log_partition(emissions.unsqueeze(0)))
    bad = torch.tensor([forbidden_moves(BIO_TAGS, pairs, list(path)) != [] for path in paths])
    assert bad.sum() > 0 and (~bad).sum() > 0
    assert (p[bad] == 0).all()
    torch.testing.assert_close(p[~bad].sum(), torch.tensor(1.0, dtype=torch.float64))
    # The learned values of forbidden entries are never used, so they get no gradient.
    tags = torch.tensor([[1, 2, 0, 3]])
    crf(emissions.unsqueeze(0), tags).backward()
    assert crf.transitions.grad[~crf.allowed_transitions].abs().max() == 0
    assert crf.start_transitions.grad[~crf.allowed_start].abs().max() == 0
    # A gold path that breaks the constraints costs about -FORBIDDEN: finite, but huge.
    assert crf(emissions.unsqueeze(0), torch.tensor([[0, 2, 2, 0]])) > -FORBIDDEN / 2


# ---------------------------------------------------------------- learning


def test_crf_learns_a_transition_pattern():
    """Emissions show only the first tag; the rest of each path must come from transitions
    learned from data that always steps tag k → (k + 1) mod K."""
    num_tags, T = 4, 6

    def data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        first = torch.randint(0, num_tags, (n, 1))
        tags = (first + torch.arange(T)) % num_tags
        emissions = torch.zeros(n, T, num_tags)
        emissions[:, 0] = 4 * torch.nn.functional.one_hot(first[:, 0], num_tags)
        return emissions + 0.1 * torch.randn(n, T, num_tags), tags

    crf = CRF(num_tags)
    optimizer = torch.optim.Adam(crf.parameters(), lr=0.1)
    emissions, tags = data(32)
    before = crf(emissions, tags).item()
    for _ in range(60):
        optimizer.zero_grad()
        crf(emissions, tags).backward()
        optimizer.step()
    assert crf(emissions, tags).item() < before / 10
    test_emissions, test_tags = data(16)
    assert torch.equal(crf.decode(test_emissions)[0], test_tags)


# ---------------------------------------------------------------- errors


def test_errors_name_the_argument_and_the_expected_shape():
    crf = CRF(3)
    e, mask = torch.randn(2, 4, 3), torch.ones(2, 4, dtype=torch.bool)
    tags = torch.zeros(2, 4, dtype=torch.long)
    cases = [
        (lambda: crf.log_partition(torch.randn(2, 4, 5)), r"emissions must have shape \(B, T, 3\)"),
        (lambda: crf.decode(torch.randn(4, 3)), r"emissions must have shape \(B, T, 3\)"),
        (
            lambda: crf.log_partition(e, mask[:, :3]),
            r"mask must be a bool tensor of shape \(2, 4\)",
        ),
        (lambda: crf.log_partition(e, mask.long()), "mask must be a bool tensor"),
        (lambda: crf.log_partition(e, mask.flip(1) & (torch.arange(4) > 0)), "first step"),
        (lambda: crf.decode(e, torch.tensor([[1, 0, 1, 1]] * 2).bool()), "prefix"),
        (lambda: crf.score(e, tags[:, :3], mask), r"tags must have shape \(2, 4\)"),
        (lambda: crf.score(e, tags.float(), mask), "tags must be integers"),
        (lambda: crf.score(e, tags + 3, mask), r"tags must be in \[0, 3\)"),
        (lambda: crf.neg_log_likelihood(e, tags, mask, "avg"), "reduction must be one of"),
        (lambda: CRF(0), "num_tags must be an integer >= 1"),
        (lambda: CRF(3, [(0, 3)]), r"out of range.*END = 4"),
        (lambda: CRF(3, [(4, 0)]), r"out of range.*START = 3"),
        (lambda: CRF(3, [(0,)]), "must be \\(from, to\\) pairs"),
        (lambda: bio_constraints(["O", "B-PER"], "BILOU"), "scheme must be one of"),
        (lambda: bio_constraints(["O", "E-PER"], "BIO"), r"tag 1 'E-PER' is not 'O'"),
        (lambda: bio_constraints(["O", "B-"], "BIO"), r"tag 1 'B-'"),
        (lambda: bio_constraints(["<pad>", "O"], "BIOES"), r"tag 0 '<pad>'"),
    ]
    for call, message in cases:
        with pytest.raises(RnnkitError, match=message):
            call()
    # Padding tags may hold anything: only real steps are checked.
    crf.score(e, torch.tensor([[0, 1, -1, 99]] * 2), torch.tensor([[1, 1, 0, 0]] * 2).bool())
