"""Attention: weights, masking, the papers' formulas written out, gradients, precomputed keys."""

import math

import pytest
import torch
from torch.func import functional_call

from rnnkit.errors import RnnkitError
from rnnkit.nn import AdditiveAttention, MultiplicativeAttention

B, S, Tq, Q, K, V = 3, 5, 4, 6, 7, 2
LENGTHS = [5, 2, 1]

ATTENTIONS = {
    "additive": lambda: AdditiveAttention(Q, K, attn_size=8),
    "dot": lambda: MultiplicativeAttention(K, K, form="dot"),
    "general": lambda: MultiplicativeAttention(Q, K, form="general"),
}


def inputs(attn, dtype=torch.float32):
    query = torch.randn(B, Tq, attn.query_size, dtype=dtype)
    keys = torch.randn(B, S, K, dtype=dtype)
    values = torch.randn(B, S, V, dtype=dtype)
    mask = torch.arange(S) < torch.tensor(LENGTHS).unsqueeze(1)
    return query, keys, values, mask


@torch.no_grad()
def reference(attn, query, keys, values, mask):
    """The module docstring's e_s, α_s and c, one query and one source position at a time."""
    contexts, weights = torch.zeros(B, Tq, values.shape[2]), torch.zeros(B, Tq, S)
    for b in range(B):
        for t in range(Tq):
            q = query[b, t]
            e = []
            for s in range(S):
                k = keys[b, s]
                if isinstance(attn, AdditiveAttention):
                    e.append(attn.v @ torch.tanh(attn.W_q @ q + attn.W_k @ k))
                elif attn.form == "dot":
                    e.append(q @ k)
                else:
                    e.append(q @ attn.W @ k)
            exp = [math.exp(e_s) if mask[b, s] else 0.0 for s, e_s in enumerate(e)]
            for s in range(S):
                weights[b, t, s] = exp[s] / sum(exp)
                contexts[b, t] += weights[b, t, s] * values[b, s]
    return contexts, weights


@pytest.mark.parametrize("form", ATTENTIONS)
def test_matches_the_formula_written_out(form):
    attn = ATTENTIONS[form]()
    query, keys, values, mask = inputs(attn)
    context, weights = attn(query, keys, values, mask)
    ref_context, ref_weights = reference(attn, query, keys, values, mask)
    torch.testing.assert_close(weights, ref_weights)
    torch.testing.assert_close(context, ref_context)


def test_dot_attention_by_hand():
    """q = (1, 0) against keys (1, 0), (0, 1), (2, 0): e = 1, 0, 2."""
    attn = MultiplicativeAttention(2, 2, form="dot")
    query = torch.tensor([[1.0, 0.0]])
    keys = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]]])
    values = torch.tensor([[[10.0], [20.0], [30.0]]])
    context, weights = attn(query, keys, values)
    Z = math.e + 1 + math.e**2
    expected = torch.tensor([[math.e / Z, 1 / Z, math.e**2 / Z]])
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(context, expected @ values[0])
    # Masking the best position renormalises over the other two.
    _, weights = attn(query, keys, values, torch.tensor([[True, True, False]]))
    torch.testing.assert_close(weights, torch.tensor([[math.e, 1, 0]]) / (math.e + 1))


@pytest.mark.parametrize("form", ATTENTIONS)
def test_weights_sum_to_one_and_padding_gets_exactly_zero(form):
    attn = ATTENTIONS[form]()
    query, keys, values, mask = inputs(attn)
    keys[~mask] = 1e4  # padding that would dominate if it leaked into the softmax
    for q in (query, query[:, 0]):
        context, weights = attn(q, keys, values, mask)
        assert weights.shape == q.shape[:-1] + (S,)
        assert context.shape == q.shape[:-1] + (V,)
        torch.testing.assert_close(weights.sum(-1), torch.ones(q.shape[:-1]))
        w = weights if weights.dim() == 3 else weights.unsqueeze(1)  # (B, Tq, S)
        assert (w[~mask.unsqueeze(1).expand_as(w)] == 0).all()
        assert (weights > 0).sum() == mask.sum() * (Tq if q.dim() == 3 else 1)
    _, weights = attn(query, torch.randn(B, S, K))  # no mask, values = keys
    assert (weights > 0).all()


@pytest.mark.parametrize("form", ATTENTIONS)
def test_precomputed_keys_give_identical_results(form):
    attn = ATTENTIONS[form]()
    query, keys, values, mask = inputs(attn)
    memory = attn.precompute_keys(keys)
    for q in (query, query[:, 0]):
        plain = attn(q, keys, values, mask)
        reused = attn(q, memory, values, mask)
        assert all(torch.equal(a, b) for a, b in zip(plain, reused, strict=True))
    assert torch.equal(attn(query, memory)[0], attn(query, keys)[0])  # values default to keys
    # A decoder's loop, one step at a time with the same memory, gives the batched answer.
    steps = [attn(query[:, t], memory, values, mask) for t in range(Tq)]
    torch.testing.assert_close(
        torch.stack([c for c, _ in steps], 1), attn(query, keys, values, mask)[0]
    )


@pytest.mark.parametrize("form", ["additive", "general"])
def test_gradcheck_inputs_and_parameters(form):
    attn = ATTENTIONS[form]().double()
    query, keys, values, mask = inputs(attn, torch.float64)
    query, keys, values = query[:2, :2], keys[:2, :3], values[:2, :3]  # tiny: gradcheck is O(n²)
    mask = mask[:2, :3]
    names = [name for name, _ in attn.named_parameters()]

    def f(query, keys, values, *params):
        return functional_call(
            attn, dict(zip(names, params, strict=True)), (query, keys, values, mask)
        )

    tensors = [t.clone().requires_grad_(True) for t in (query, keys, values, *attn.parameters())]
    assert torch.autograd.gradcheck(f, tensors)


@pytest.mark.parametrize("form", ATTENTIONS)
def test_gradients_reach_every_parameter_but_not_padding(form):
    attn = ATTENTIONS[form]()
    query, keys, values, mask = inputs(attn)
    keys.requires_grad_(True)
    values.requires_grad_(True)
    context, _ = attn(query, keys, values, mask)
    context.pow(2).sum().backward()
    for name, p in attn.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # A key moves the output through its weight, which is constant 1 in a one-position row.
    competing = mask & (mask.sum(1, keepdim=True) > 1)
    assert (keys.grad[competing].abs().sum(-1) > 0).all()
    assert (values.grad[mask].abs().sum(-1) > 0).all()
    assert keys.grad[~mask].abs().max() == 0 and values.grad[~mask].abs().max() == 0


def test_errors_name_the_argument_and_the_expected_shape():
    attn = AdditiveAttention(Q, K, 8)
    query, keys, values, mask = inputs(attn)
    cases = [
        (
            lambda: attn(query[..., :3], keys),
            rf"query must have shape \(B, {Q}\) or \(B, Tq, {Q}\)",
        ),
        (lambda: attn(query[0, 0], keys), r"query must have shape"),
        (lambda: attn(query[:2], keys), "query has batch size 2 but keys have 3"),
        (lambda: attn(query, keys[..., :3]), rf"keys must have shape \(B, S, {K}\)"),
        (lambda: attn(query, keys[0]), r"keys must have shape"),
        (lambda: attn(query, keys[:, :0]), "at least one position"),
        (lambda: attn.precompute_keys(keys[..., :3]), rf"keys must have shape \(B, S, {K}\)"),
        (lambda: attn(query, keys, values[:, :4]), rf"values must have shape \(3, {S}, V\)"),
        (lambda: attn(query, keys, values[0]), "values must have shape"),
        (
            lambda: attn(query, keys, values, mask[:, :4]),
            rf"mask must be a bool tensor of shape \(3, {S}\)",
        ),
        (lambda: attn(query, keys, values, mask.float()), "mask must be a bool tensor"),
        (lambda: attn(query, keys, values, mask & (torch.arange(3) > 0)[:, None]), "at least one"),
        (lambda: AdditiveAttention(Q, K, 0), "attn_size must be an integer >= 1"),
        (
            lambda: MultiplicativeAttention(Q, K, form="dot"),
            "form='dot' needs query_size == key_size",
        ),
        (lambda: MultiplicativeAttention(Q, K, form="concat"), "form must be one of"),
        (lambda: MultiplicativeAttention(0, K, form="general"), "query_size must be"),
    ]
    for call, message in cases:
        with pytest.raises(RnnkitError, match=message):
            call()
