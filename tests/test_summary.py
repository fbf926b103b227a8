"""rnnkit.summary: the layer table with per-sub-layer parameter formulas."""

import torch
from torch import nn

import rnnkit
from rnnkit.nn import GRU, LSTM, RNNCell


class TinyLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(100, 64)
        self.rnn = LSTM(64, 512, num_layers=2, bidirectional=True)
        self.head = nn.Linear(1024, 64)
        self.decoder = nn.Linear(64, 100)
        self.decoder.weight = self.embedding.weight  # tied weights

    def forward(self, tokens):
        return self.decoder(self.head(self.rnn(self.embedding(tokens))[0]))


def test_summary_lists_layers_formulas_and_totals(capsys):
    model = TinyLM()
    text = rnnkit.summary(model)
    assert capsys.readouterr().out == ""  # returned, not printed: a REPL shows it once
    assert repr(text) == str(text)  # ... laid out, not as a quoted string
    lines = text.splitlines()
    assert lines[0] == "Model: TinyLM"
    row = next(line for line in lines if line.startswith("rnn (LSTM)"))
    assert row.split()[-1] == "8,658,944" and "(B, T, 1024)" in row
    formula = "4·(N·d + N² + N) = 4·(512·64 + 512² + 512) = 1,181,696  ✓"
    assert any("LSTM layer 0 fwd  d=64 N=512" in line and formula in line for line in lines)
    assert any(
        "LSTM layer 1 bwd  d=1024 N=512" in line and "3,147,776  ✓" in line for line in lines
    )
    total = sum(p.numel() for p in model.parameters())  # tied weight once
    assert total == 6_400 + 8_658_944 + (1024 * 64 + 64) + 100
    assert f"Total params: {total:,}" in text
    assert f"Trainable params: {total:,}" in text
    assert "shared parameters counted once: 6,400" in text


def test_summary_with_example_input_shows_real_shapes():
    model = TinyLM()
    model.train()
    text = rnnkit.summary(model, torch.randint(0, 100, (2, 7)), print_fn=None)
    assert "(2, 7, 1024)" in next(line for line in text.splitlines() if "(LSTM)" in line)
    assert model.training  # the mode is restored after the example run


def test_summary_marks_a_count_that_breaks_the_formula():
    layer = GRU(3, 4)
    layer.cells[0].extra = nn.Parameter(torch.zeros(5))
    text = rnnkit.summary(layer, print_fn=None)
    assert "3·(4·3 + 4² + 4) = 96  ✗ (holds 101)" in text


def test_summary_of_cells_and_frozen_parameters():
    model = nn.Sequential(RNNCell(3, 4), nn.Linear(4, 2))
    model[1].requires_grad_(False)
    text = rnnkit.summary(model, print_fn=None)
    assert "N·d + N² + N = 4·3 + 4² + 4 = 32  ✓" in text
    assert "Trainable params: 32" in text and "Non-trainable params: 10" in text
