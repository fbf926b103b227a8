r"""A linear-chain conditional random field over tag sequences, as on top of a BiLSTM tagger.

Lample et al. (2016) score a tag sequence y = (y_1, …, y_L) of a sentence x with the encoder's
per-step emission scores φ_t (a BiLSTM's output projected to K tags) and learned transition
scores A (Lafferty et al. 2001):

.. math::
    s(x, y) &= a^{start}_{y_1} + \sum_{t=1}^{L} φ_t(y_t)
               + \sum_{t=2}^{L} A_{y_{t-1} y_t} + a^{end}_{y_L}\\
    p(y \mid x) &= \exp s(x, y) \,/\, Z(x), \qquad Z(x) = \sum_{y'} \exp s(x, y')

Z sums over all K^L tag sequences; the forward algorithm computes it in O(L·K²), in log space
so that nothing overflows:

.. math::
    α_1(j) &= a^{start}_j + φ_1(j)\\
    α_t(j) &= φ_t(j) + \operatorname{logsumexp}_i \big(α_{t-1}(i) + A_{ij}\big)\\
    \log Z(x) &= \operatorname{logsumexp}_j \big(α_L(j) + a^{end}_j\big)

Viterbi decoding is the same recursion with max for logsumexp, keeping the argmax ψ_t(j) as a
back-pointer; the best path is read backwards from argmax_j (δ_L(j) + a^{end}_j).

Shapes (B sequences of at most T steps, K tags; every call is batched, batch first):

================  ===============  ==================================================
name              shape            meaning
================  ===============  ==================================================
``emissions``     (B, T, K)        φ_t(j), float
``tags``          (B, T)           gold y_t, integers in [0, K) on real steps
``mask``          (B, T)           bool, True on real steps: a prefix of each row, so
                                   row b has L_b = mask[b].sum() >= 1 steps
``transitions``   (K, K)           A_ij, score of tag i followed by tag j (from → to)
``start/end``     (K,)             a^{start}_j, a^{end}_j
log_partition     (B,)             log Z(x)
score             (B,)             s(x, y)
decode            (B, T) and (B,)  best tags (-1 on padding) and their scores s(x, ŷ)
================  ===============  ==================================================

Padding steps leave α (and δ) unchanged, so row b stops at its own length L_b. Loops run over
time only, never over sequences.

Constraints (e.g. a BIO tagger never writes ``O`` then ``I-PER``) are pairs of allowed
transitions; :func:`bio_constraints` builds them from tag names. A forbidden transition scores
:data:`FORBIDDEN` = -10⁴ instead of its learned value, in training and in decoding alike.
-10⁴ rather than -∞: exp(-10⁴) is exactly 0 in float32 and float64, so a forbidden path has
probability exactly zero, while no logsumexp ever sees only -∞ terms (their gradient is NaN,
which a tag that cannot be reached at some step would otherwise spread to every parameter).
"""

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from rnnkit.errors import RnnkitError

FORBIDDEN = -1.0e4  # the score of a forbidden transition; see the module docstring
SCHEMES = ("BIO", "IOB1", "BIOES")
REDUCTIONS = ("mean", "sum", "none")


class CRF(nn.Module):
    r"""Linear-chain CRF: NLL for training, log Z by the forward algorithm, Viterbi decoding.

    Args:
        num_tags: K.
        constraints: None (every transition allowed), or the allowed transitions as pairs
            (i, j): tag i may be followed by tag j. Index K stands for START (``(K, j)``: a
            sequence may begin with j) and K + 1 for END (``(i, K + 1)``: it may end with i),
            the convention of :func:`bio_constraints` and of AllenNLP. Every pair not listed
            is forbidden. Constraints are configuration, not state: they are not in the
            ``state_dict``; pass the same ones when rebuilding the model.

    Parameters ``transitions`` (K, K), ``start_transitions`` (K,) and ``end_transitions`` (K,)
    start at U(-0.1, 0.1); forbidden entries keep their values but are never used (and get no
    gradient).

    Call: ``crf(emissions, tags, mask)`` is :meth:`neg_log_likelihood` (mean over the batch),
    the loss to minimise. Shapes are in the module docstring.
    """

    def __init__(self, num_tags: int, constraints: Iterable[tuple[int, int]] | None = None):
        super().__init__()
        if isinstance(num_tags, bool) or not isinstance(num_tags, int) or num_tags < 1:
            raise RnnkitError(f"CRF num_tags must be an integer >= 1, got {num_tags!r}")
        K = self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.empty(K, K))  # A[i, j]: i → j
        self.start_transitions = nn.Parameter(torch.empty(K))
        self.end_transitions = nn.Parameter(torch.empty(K))
        # One (K + 2, K + 2) table of what is allowed, rows "from", columns "to", with START
        # and END as the two extra indices; only its three useful blocks are kept.
        allowed = torch.ones(K + 2, K + 2, dtype=torch.bool)
        if constraints is not None:
            allowed.fill_(False)
            for pair in constraints:
                i, j = _check_pair(pair, K)
                allowed[i, j] = True
        self.constrained = constraints is not None
        self.register_buffer("allowed_transitions", allowed[:K, :K].clone(), persistent=False)
        self.register_buffer("allowed_start", allowed[K, :K].clone(), persistent=False)
        self.register_buffer("allowed_end", allowed[:K, K + 1].clone(), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in (self.transitions, self.start_transitions, self.end_transitions):
            nn.init.uniform_(p, -0.1, 0.1)

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}, constrained={self.constrained}"

    # ---------------------------------------------------------------- the model

    def transition_scores(self) -> tuple[Tensor, Tensor, Tensor]:
        """(a^start (K,), A (K, K), a^end (K,)) with forbidden entries set to FORBIDDEN."""
        return (
            self.start_transitions.masked_fill(~self.allowed_start, FORBIDDEN),
            self.transitions.masked_fill(~self.allowed_transitions, FORBIDDEN),
            self.end_transitions.masked_fill(~self.allowed_end, FORBIDDEN),
        )

    def forward(self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None) -> Tensor:
        """The training loss: :meth:`neg_log_likelihood` averaged over the batch."""
        return self.neg_log_likelihood(emissions, tags, mask)

    def neg_log_likelihood(
        self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None, reduction: str = "mean"
    ) -> Tensor:
        r"""-log p(y | x) = log Z(x) - s(x, y) per sequence.

        ``reduction``: 'mean' (over the B sequences; a scalar), 'sum' (a scalar) or 'none' (B,).
        A gold path with a forbidden transition costs about 10⁴: the constraints contradict
        the data.
        """
        if reduction not in REDUCTIONS:
            raise RnnkitError(f"CRF reduction must be one of {list(REDUCTIONS)}, got {reduction!r}")
        nll = self.log_partition(emissions, mask) - self.score(emissions, tags, mask)
        if reduction == "mean":
            return nll.mean()
        return nll.sum() if reduction == "sum" else nll

    def score(self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None) -> Tensor:
        r"""s(x, y) of the given tag sequences: (B, T, K), (B, T), (B, T) → (B,)."""
        mask = self._check(emissions, mask, tags)
        start, A, end = self.transition_scores()
        y = tags.long().masked_fill(~mask, 0)  # any index will do on padding: it is masked out
        emitted = emissions.gather(2, y.unsqueeze(2)).squeeze(2)  # φ_t(y_t), (B, T)
        moved = A[y[:, :-1], y[:, 1:]]  # A_{y_{t-1} y_t}, (B, T - 1)
        last = y.gather(1, mask.sum(1, keepdim=True) - 1).squeeze(1)  # y_{L_b}, (B,)
        zero = emissions.new_zeros(())
        return (
            start[y[:, 0]]
            + torch.where(mask, emitted, zero).sum(1)
            + torch.where(mask[:, 1:], moved, zero).sum(1)
            + end[last]
        )

    def log_partition(self, emissions: Tensor, mask: Tensor | None = None) -> Tensor:
        r"""log Z(x) by the forward algorithm: (B, T, K), (B, T) → (B,)."""
        mask = self._check(emissions, mask)
        start, A, end = self.transition_scores()
        α = start + emissions[:, 0]  # (B, K)
        for t in range(1, emissions.shape[1]):
            # (B, K_from, 1) + (K_from, K_to), summed out over "from"
            α_t = emissions[:, t] + torch.logsumexp(α.unsqueeze(2) + A, dim=1)
            α = torch.where(mask[:, t : t + 1], α_t, α)
        return torch.logsumexp(α + end, dim=1)

    @torch.no_grad()
    def decode(self, emissions: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        r"""Viterbi: the highest-scoring tag sequence of each row and its score s(x, ŷ).

        Returns ``(tags, scores)``: ``tags`` a LongTensor (B, T) with -1 on padding steps
        (``tags[b, :L_b]`` is row b's path), ``scores`` (B,). Under constraints the path never
        takes a forbidden transition while an allowed path exists. Ties go to the lowest tag
        index. Runs without autograd; :meth:`score` of the returned tags gives a
        differentiable score if one is needed.
        """
        mask = self._check(emissions, mask)
        start, A, end = self.transition_scores()
        B, T, K = emissions.shape
        identity = torch.arange(K, device=emissions.device).expand(B, K)
        δ = start + emissions[:, 0]  # (B, K)
        ψ = []  # ψ[t - 1][b, j]: the best tag at t - 1 given tag j at t
        for t in range(1, T):
            best, argbest = (δ.unsqueeze(2) + A).max(dim=1)
            real = mask[:, t : t + 1]
            δ = torch.where(real, emissions[:, t] + best, δ)
            # On padding the back-pointer is the identity: the path stays on its last tag.
            ψ.append(torch.where(real, argbest, identity))
        scores, y_T = (δ + end).max(dim=1)
        path = [y_T]
        for ψ_t in reversed(ψ):
            path.append(ψ_t.gather(1, path[-1].unsqueeze(1)).squeeze(1))
        tags = torch.stack(path[::-1], dim=1)
        return tags.masked_fill(~mask, -1), scores

    # ---------------------------------------------------------------- input checks

    def _check(self, emissions: Tensor, mask: Tensor | None, tags: Tensor | None = None) -> Tensor:
        """Raise RnnkitError on a bad shape or mask; return the mask (all True when None)."""
        K = self.num_tags
        if not isinstance(emissions, Tensor) or emissions.dim() != 3 or emissions.shape[2] != K:
            shape = tuple(emissions.shape) if isinstance(emissions, Tensor) else type(emissions)
            raise RnnkitError(f"CRF emissions must have shape (B, T, {K}), got {shape}")
        if not emissions.is_floating_point():
            raise RnnkitError(f"CRF emissions must be floating point, got {emissions.dtype}")
        B, T = emissions.shape[:2]
        if T < 1:
            raise RnnkitError("CRF emissions must have at least one time step, got T = 0")
        if mask is None:
            mask = torch.ones(B, T, dtype=torch.bool, device=emissions.device)
        elif not isinstance(mask, Tensor) or mask.shape != (B, T) or mask.dtype != torch.bool:
            got = f"{mask.dtype} {tuple(mask.shape)}" if isinstance(mask, Tensor) else type(mask)
            raise RnnkitError(f"CRF mask must be a bool tensor of shape ({B}, {T}), got {got}")
        elif not mask[:, 0].all():
            raise RnnkitError("CRF mask must be True at the first step of every sequence")
        elif (mask[:, 1:] & ~mask[:, :-1]).any():
            raise RnnkitError("CRF mask must be a prefix of True per row (padding at the end)")
        if tags is not None:
            if not isinstance(tags, Tensor) or tags.shape != (B, T):
                shape = tuple(tags.shape) if isinstance(tags, Tensor) else type(tags)
                raise RnnkitError(f"CRF tags must have shape ({B}, {T}) like mask, got {shape}")
            if tags.is_floating_point() or tags.dtype == torch.bool:
                raise RnnkitError(f"CRF tags must be integers, got {tags.dtype}")
            real = tags[mask]
            if real.numel() and (real.min() < 0 or real.max() >= K):
                raise RnnkitError(
                    f"CRF tags must be in [0, {K}) on real steps, got values from "
                    f"{real.min().item()} to {real.max().item()}"
                )
        return mask


def _check_pair(pair: object, K: int) -> tuple[int, int]:
    try:
        i, j = pair  # type: ignore[misc]
        i, j = int(i), int(j)
    except (TypeError, ValueError):
        raise RnnkitError(
            f"CRF constraints must be (from, to) pairs of ints, got {pair!r}"
        ) from None
    if not (0 <= i < K or i == K) or not (0 <= j < K or j == K + 1):
        raise RnnkitError(
            f"CRF constraint {pair!r} out of range: 'from' must be a tag in [0, {K}) or "
            f"START = {K}, 'to' a tag in [0, {K}) or END = {K + 1}"
        )
    return i, j


def bio_constraints(tags: list[str], scheme: str = "BIO") -> list[tuple[int, int]]:
    """The allowed transitions of a chunk-tagging scheme, for ``CRF(constraints=...)``.

    ``tags`` are the tag names in index order: ``'O'`` or ``'<prefix>-<type>'`` such as
    ``'B-PER'``. Returns pairs (i, j) of tag indices, with START = len(tags) as ``i`` and
    END = len(tags) + 1 as ``j``. The rules (x, y entity types, P any prefix):

    =======  ========================  ==========================================
    scheme   may start with            allowed i → j (END allowed after)
    =======  ========================  ==========================================
    BIO      O, B-x                    P → O, P → B-y, B-x/I-x → I-x (after any)
    IOB1     O, I-x                    P → O, P → I-y, B-x/I-x → B-x (after any)
    BIOES    O, B-x, S-x               O/E/S → O, B-y, S-y; B-x/I-x → I-x, E-x
                                       (after O, E-x, S-x)
    =======  ========================  ==========================================

    So under BIO, ``O → I-PER``, ``B-PER → I-LOC`` and START → ``I-PER`` are forbidden. IOB1
    (CoNLL-2003's original tags) writes I for every chunk token and B only to split two
    adjacent chunks of one type.
    """
    if scheme not in SCHEMES:
        raise RnnkitError(f"bio_constraints scheme must be one of {list(SCHEMES)}, got {scheme!r}")
    prefixes = {"BIO": "BI", "IOB1": "BI", "BIOES": "BIES"}[scheme]
    parsed = []
    for k, tag in enumerate(tags):
        prefix, _, kind = tag.partition("-") if isinstance(tag, str) else ("", "", "")
        if tag == "O":
            parsed.append(("O", ""))
        elif len(prefix) == 1 and prefix in prefixes and kind:
            parsed.append((prefix, kind))
        else:
            raise RnnkitError(
                f"bio_constraints: tag {k} {tag!r} is not 'O' or one of "
                f"{[p + '-<type>' for p in prefixes]} ({scheme} scheme)"
            )
    K = len(tags)
    START, END = K, K + 1
    allowed = [(START, j) for j, (p, _) in enumerate(parsed) if _may_start(scheme, p)]
    allowed += [(i, END) for i, (p, _) in enumerate(parsed) if _may_end(scheme, p)]
    for i, (p, x) in enumerate(parsed):
        for j, (q, y) in enumerate(parsed):
            if _may_follow(scheme, p, x, q, y):
                allowed.append((i, j))
    return allowed


def _may_start(scheme: str, q: str) -> bool:
    return q in {"BIO": "OB", "IOB1": "OI", "BIOES": "OBS"}[scheme]


def _may_end(scheme: str, p: str) -> bool:
    return scheme != "BIOES" or p in "OES"


def _may_follow(scheme: str, p: str, x: str, q: str, y: str) -> bool:
    """May tag (prefix p, type x) be followed by tag (prefix q, type y)?"""
    inside = p in "BI" and x == y  # p-x opened a chunk of y's type that is still open
    if scheme == "BIO":
        return q in "OB" or (q == "I" and inside)
    if scheme == "IOB1":
        return q in "OI" or (q == "B" and inside)
    return (q in "OBS" and p in "OES") or (q in "IE" and inside)
