"""Integrated gradients and occlusion: completeness, exactness on a linear model, errors."""

import pytest
import torch
from torch import nn

from recur.diagnostics import integrated_gradients, occlusion, plot_attributions
from recur.models.classifier import ClassifierConfig, SequenceClassifier


class BagOfEmbeddings(nn.Module):
    """A linear score: F = Σ_t w·e_t. IG of a linear model is exact: IG_t = w·(e_t − e′_t)."""

    def __init__(self, vocab: int = 10, dim: int = 4) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim, padding_idx=0)
        self.w = nn.Linear(dim, 1, bias=False)

    def forward(self, tokens, lengths):
        return self.w(self.embedding(tokens)).sum(dim=(1, 2))     # (B,) a binary logit


def test_linear_model_attributions_are_exact():
    torch.manual_seed(0)
    model = BagOfEmbeddings()
    tokens = torch.tensor([3, 1, 4, 1, 5])
    attr = integrated_gradients(model, tokens, target=1, steps=2)
    want = (model.w(model.embedding(tokens)).squeeze(-1)).double().detach()
    torch.testing.assert_close(attr.scores, want)
    occ = occlusion(model, tokens, replacement=0, target=1)      # padding row is zero
    torch.testing.assert_close(occ.scores, want, atol=1e-6, rtol=1e-6)
    flipped = integrated_gradients(model, tokens, target=0, steps=2)
    torch.testing.assert_close(flipped.scores, -want)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_completeness_on_a_recurrent_classifier(cell):
    torch.manual_seed(1)
    model = SequenceClassifier(ClassifierConfig(vocab_size=30, embed_dim=8, hidden_size=8,
                                                cell=cell, bidirectional=True, pooling="max"))
    tokens = torch.randint(1, 30, (9,))
    attr = integrated_gradients(model, tokens, steps=256)
    assert attr.scores.shape == (9,)
    # Σ IG = F(x) − F(baseline) up to the trapezoid rule's error
    assert abs(attr.delta) < 1e-2 * max(1.0, abs(attr.score - attr.baseline_score))
    assert attr.score == pytest.approx(attr.baseline_score + float(attr.scores.sum()), abs=1e-2)
    assert model.training                                           # mode restored


def test_multiclass_target_and_pad_baseline(tmp_path):
    torch.manual_seed(2)
    model = SequenceClassifier(ClassifierConfig(vocab_size=12, embed_dim=4, hidden_size=4,
                                                num_classes=3)).eval()
    tokens = torch.tensor([2, 5, 7])
    logits = model(tokens.unsqueeze(0), torch.tensor([3])).detach()
    attr = integrated_gradients(model, tokens, baseline="pad", steps=128)
    assert attr.target == int(logits.argmax())
    assert attr.score == pytest.approx(float(logits[0, attr.target]), abs=1e-5)
    occ = occlusion(model, tokens, replacement=1)
    plot_attributions(["a", "b", "c"], [attr, occ], tmp_path / "a.png")
    assert (tmp_path / "a.png").stat().st_size > 1000


def test_bad_arguments_are_named():
    model = BagOfEmbeddings()
    with pytest.raises(ValueError, match="tokens must be a non-empty 1-D long tensor"):
        integrated_gradients(model, torch.tensor([[1, 2]]))
    with pytest.raises(ValueError, match="steps must be an int >= 2"):
        integrated_gradients(model, torch.tensor([1, 2]), steps=1)
    with pytest.raises(ValueError, match="target must be a class index in \\[0, 1\\]"):
        integrated_gradients(model, torch.tensor([1, 2]), target=2)
    with pytest.raises(ValueError, match="baseline must be one of"):
        integrated_gradients(model, torch.tensor([1, 2]), baseline="mean")
    with pytest.raises(ValueError, match="replacement must be a token id"):
        occlusion(model, torch.tensor([1, 2]), replacement=-1)
