"""CNN + RNN: ConvRecurrent shapes, the ConvGRU against torch's GRUCell, the digits split."""

import json

import numpy as np
import pytest
import torch

from recur.cli import main
from recur.models.conv import ConvGRU1d, ConvRecurrent, ConvRecurrentConfig
from recur.tasks.images import digit_splits


@pytest.mark.parametrize("conv", ["2d", "1d", "mixed"])
def test_conv_recurrent_shapes_and_loss(conv):
    config = ConvRecurrentConfig(num_classes=10, height=8, width=8, conv=conv, channels=(4, 6),
                                 hidden_size=12)
    model = ConvRecurrent(config)
    x = torch.rand(5, 8, 8)
    logits = model(x, torch.full((5,), 8))
    assert logits.shape == (5, 10)
    loss = model.loss(logits, torch.arange(5))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    torch.testing.assert_close(model.probabilities(logits).sum(-1), torch.ones(5))


def test_rnn_after_cnn_reads_rows_in_order():
    """Changing only the last row changes the output; the RNN sees rows as time steps."""
    torch.manual_seed(0)
    model = ConvRecurrent(ConvRecurrentConfig(num_classes=3, height=6, width=4, channels=(2,),
                                              kernel_size=1, hidden_size=5)).eval()
    x = torch.rand(1, 6, 4)
    y = x.clone()
    y[0, -1] += 1.0
    assert not torch.allclose(model(x), model(y))


def test_padded_lengths_are_refused():
    model = ConvRecurrent(ConvRecurrentConfig(num_classes=3, height=4, width=4))
    with pytest.raises(ValueError, match="full-length inputs"):
        model(torch.rand(2, 4, 4), torch.tensor([4, 3]))


def test_conv_gru_with_1x1_kernels_equals_torch_gru_cell_per_pixel():
    """With kernel size 1 every pixel of the row is its own GRU (torch's reset-after form)."""
    torch.manual_seed(0)
    conv = ConvGRU1d(in_channels=3, channels=4, kernel_size=1)
    cell = torch.nn.GRUCell(3, 4)
    # ours: z, r, n with h = (1 - z) h + z n; torch: r, z, n with h = (1 - z) n + z h, so
    # torch's z is our 1 - z = σ(-a): its z rows are ours negated.
    with torch.no_grad():
        for ours, theirs_w, theirs_b in ((conv.x_gates, cell.weight_ih, cell.bias_ih),
                                        (conv.h_gates, cell.weight_hh, cell.bias_hh)):
            w, b = ours.weight[:, :, 0].view(3, 4, -1), ours.bias.view(3, 4)
            theirs_w.copy_(torch.cat([w[1], -w[0], w[2]]))
            theirs_b.copy_(torch.cat([b[1], -b[0], b[2]]))
    rows = torch.randn(2, 5, 3, 7)                    # (B, T, C_in, W)
    last = conv(rows)                                 # (B, C, W)
    for pixel in range(7):
        h = torch.zeros(2, 4)
        for t in range(5):
            h = cell(rows[:, t, :, pixel], h)
        torch.testing.assert_close(last[:, :, pixel], h, atol=1e-6, rtol=1e-5)


def test_config_checks():
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        ConvRecurrentConfig(num_classes=10, height=8, width=8, kernel_size=4)
    with pytest.raises(ValueError, match="conv must be one of"):
        ConvRecurrentConfig(num_classes=10, height=8, width=8, conv="3d")


def test_digits_split_is_fixed_stratified_and_disjoint():
    train, valid, test = digit_splits("row")
    again = digit_splits("row")
    assert (len(train.y), len(valid.y), len(test.y)) == (1293, 144, 360)
    np.testing.assert_array_equal(test.x, again[2].x)
    np.testing.assert_array_equal(train.y, again[0].y)
    assert np.bincount(test.y).min() >= 35                # ~36 of each digit
    pixel = digit_splits("pixel")
    assert pixel[2].x.shape == (360, 64, 1)
    np.testing.assert_array_equal(pixel[2].x.reshape(360, 8, 8), test.x)
    seen = {x.tobytes() for x in train.x} | {x.tobytes() for x in valid.x}
    # the digits set has a few exact duplicate images; almost all test images are unseen
    assert sum(x.tobytes() in seen for x in test.x) < 5


def test_cli_train_and_evaluate_digits(tmp_path, capsys):
    out = tmp_path / "digits"
    assert main(["train", "digits", "--mode", "cnn", "--epochs", "1", "--hidden-size", "16",
                 "--out", str(out), "--quiet"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert main(["evaluate", str(out), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["mode"] == "cnn" and metrics["count"] == 360 and metrics["accuracy"] > 0.2  # chance: 0.1
    code = main(["train", "digits", "--mode", "row", "--cell", "lstm", "--irnn", "--out",
                 str(tmp_path / "x")])
    assert code == 2 and "--irnn is the identity-initialised ReLU Elman" in capsys.readouterr().err
