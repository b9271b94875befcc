"""SequenceClassifier: the notes' seed model, pooling over padding, and config checks."""

import pytest
import torch

from recur.models import ClassifierConfig, SequenceClassifier
from recur.summary import summary, summary_rows


def test_seed_model_has_the_notes_181761_parameters():
    model = SequenceClassifier(ClassifierConfig.seed())
    assert sum(p.numel() for p in model.parameters()) == 181_761
    rows = {r.name: r for r in summary_rows(model)}
    assert rows["embedding"].params == 128_128
    assert rows["rnn"].params == 49_408
    assert rows["rnn"].output_shape == "(None, 100, 64)"
    assert rows["head"].params == 4_160
    assert rows["out"].params == 65
    assert "Total params: 181,761" in summary(model)


def test_seed_model_runs_the_fused_kernel():
    assert SequenceClassifier(ClassifierConfig.seed()).rnn.use_fused


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_does_not_change_the_prediction(pooling, bidirectional):
    config = ClassifierConfig(vocab_size=50, embed_dim=8, hidden_size=6, pooling=pooling,
                              bidirectional=bidirectional, num_classes=3)
    model = SequenceClassifier(config).eval()
    tokens = torch.randint(2, 50, (1, 5))
    alone = model(tokens, torch.tensor([5]))
    padded = torch.cat([tokens, torch.randint(2, 50, (1, 4))], dim=1)
    torch.testing.assert_close(model(padded, torch.tensor([5])), alone)
    assert alone.shape == (1, 3)


def test_binary_uses_one_logit_and_probabilities_sum_to_one():
    model = SequenceClassifier(ClassifierConfig(vocab_size=20, embed_dim=4, hidden_size=3))
    logits = model(torch.randint(0, 20, (4, 7)), torch.tensor([7, 3, 1, 5]))
    assert logits.shape == (4,)
    probs = model.probabilities(logits)
    torch.testing.assert_close(probs.sum(-1), torch.ones(4))
    loss = model.loss(logits, torch.tensor([0, 1, 1, 0]))
    assert loss.dim() == 0 and loss > 0


def test_config_round_trip_and_bad_values():
    config = ClassifierConfig.seed()
    assert ClassifierConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="pooling must be one of last, mean, max, attention"):
        ClassifierConfig(vocab_size=10, pooling="sum")
    with pytest.raises(ValueError, match="num_classes must be an int >= 2, got 1"):
        ClassifierConfig(vocab_size=10, num_classes=1)
    with pytest.raises(ValueError, match="unknown keys \\['colour'\\]"):
        ClassifierConfig.from_dict(config.to_dict() | {"colour": "red"})
