"""record_gates: the gates each cell computes, against hand computation and the layer output."""

import math

import pytest
import torch

from recur import Recurrent
from recur.cells import CELLS
from recur.diagnostics import plot_gates, record_gates
from recur.models.classifier import ClassifierConfig, SequenceClassifier

GATES = {
    "elman": (), "rnn": (), "gated": ("g", "n"), "gru": ("r", "z", "n"), "lstm": ("i", "f", "g", "o"),
    "mingru": ("z", "candidate"), "minlstm": ("f", "i", "candidate"),
}


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_recorded_states_equal_the_layer_outputs(cell):
    torch.manual_seed(0)
    layer = Recurrent(cell, 3, 5, num_layers=2).double()
    x = torch.randn(4, 7, 3, dtype=torch.float64)
    lengths = torch.tensor([7, 5, 2, 7])
    rec = record_gates(layer, {"x": x, "lengths": lengths})
    outputs = layer(x, lengths=lengths).outputs                   # (B, T, H), zeros when padded
    h = rec.values["h"].double()
    mask = torch.arange(7) < lengths.unsqueeze(1)                 # (B, T)
    torch.testing.assert_close(h[mask], outputs[mask].float().double(), atol=1e-6, rtol=1e-5)
    assert torch.isnan(h[~mask]).all()
    assert rec.gate_names == GATES[cell]
    assert rec.layer == 1 and rec.cell == cell


def test_lstm_gates_follow_the_equations():
    torch.manual_seed(1)
    layer = Recurrent("lstm", 2, 3).double()
    x = torch.randn(1, 4, 2, dtype=torch.float64)
    rec = record_gates(layer, x)
    cell = layer.cells[0]
    h = c = torch.zeros(1, 3, dtype=torch.float64)
    for t in range(4):
        pre = x[:, t] @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
        i, f, g, o = pre.chunk(4, dim=-1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        for name, want in dict(i=i, f=f, g=g, o=o, c=c, h=h).items():
            torch.testing.assert_close(rec.values[name][0, t].double(), want[0].detach(),
                                       atol=1e-6, rtol=1e-6)


def test_reverse_direction_is_aligned_with_input_positions():
    torch.manual_seed(2)
    layer = Recurrent("gru", 2, 3, bidirectional=True)
    x = torch.randn(2, 5, 2)
    lengths = torch.tensor([5, 3])
    rec = record_gates(layer, (x, None, lengths), direction=1)
    outputs = layer(x, lengths=lengths).outputs[..., 3:]          # the reverse half
    torch.testing.assert_close(rec.values["h"][1, :3], outputs[1, :3])
    torch.testing.assert_close(rec.values["h"][0], outputs[0])
    assert torch.isnan(rec.values["h"][1, 3:]).all()


def test_classifier_and_plot(tmp_path):
    torch.manual_seed(3)
    model = SequenceClassifier(ClassifierConfig(vocab_size=20, embed_dim=4, hidden_size=6,
                                                head_sizes=()))
    tokens = torch.randint(1, 20, (1, 6))
    rec = record_gates(model, (tokens, torch.tensor([6])))
    assert set(rec.values) == {"i", "f", "g", "o", "h", "c"}
    assert all(v.shape == (1, 6, 6) for v in rec.values.values())
    means = rec.mean_over_units()
    assert means["f"].shape == (6,) and 0 < float(means["f"].min()) < 1
    path = plot_gates(rec, tmp_path / "g.png", tokens=list("abcdef"))
    assert (tmp_path / "g.png").stat().st_size > 1000 and path.endswith("g.png")
    with pytest.raises(ValueError, match="tokens must have one label per step"):
        plot_gates(rec, tmp_path / "x.png", tokens=["a"])


def test_bad_arguments_are_named():
    layer = Recurrent("lstm", 2, 3)
    with pytest.raises(ValueError, match="layer must be"):
        record_gates(layer, torch.zeros(1, 2, 2), layer=3)
    with pytest.raises(ValueError, match="direction must be"):
        record_gates(layer, torch.zeros(1, 2, 2), direction=1)
    assert not math.isnan(float(record_gates(layer, torch.zeros(1, 2, 2)).values["h"].sum()))
