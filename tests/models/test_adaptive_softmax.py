"""The adaptive softmax of the language model: an exact distribution, a cheap loss equal
to the full one, tied to the embedding, and every consumer of the model still working."""

import json

import pytest
import torch

from recur.cli import main
from recur.models.adaptive_softmax import AdaptiveSoftmax, frequency_order
from recur.models.language_model import LanguageModel, LanguageModelConfig
from recur.tasks.language_model import TrainedLanguageModel

V = 40


def adaptive_model(**options) -> LanguageModel:
    config = {"vocab_size": V, "embed_dim": 8, "hidden_size": 12, "num_layers": 2,
              "tie_weights": True, "adaptive_cutoffs": (6, 20)} | options
    torch.manual_seed(0)
    model = LanguageModel(LanguageModelConfig(**config)).eval()
    model.set_word_order(torch.randperm(V, generator=torch.Generator().manual_seed(1)))
    with torch.no_grad():  # biases away from zero, so a bias in the wrong place would show
        for p in model.parameters():
            if p.dim() == 1:
                p.normal_()
    return model


@pytest.mark.parametrize("options", [{}, {"tie_weights": False}, {"adaptive_cutoffs": (1,)},
                                     {"adaptive_cutoffs": (3, 9, 30), "adaptive_div": 2}])
def test_log_probs_sum_to_one_over_the_whole_vocabulary(options):
    model = adaptive_model(**options)
    with torch.no_grad():
        log_probs, _ = model(torch.randint(V, (3, 5)))
    assert log_probs.shape == (3, 5, V)
    torch.testing.assert_close(log_probs.logsumexp(-1), torch.zeros(3, 5), atol=1e-5, rtol=0)


@pytest.mark.parametrize("options", [{}, {"tie_weights": False}])
def test_loss_equals_the_nll_of_the_full_log_probs_and_skips_ignored_targets(options):
    model = adaptive_model(**options)
    tokens, targets = torch.randint(V, (4, 9)), torch.randint(V, (4, 9))
    targets[1, 2:5] = -100
    with torch.no_grad():
        log_probs, _ = model(tokens)
        loss, _ = model(tokens, targets=targets)
    expected = torch.nn.functional.nll_loss(log_probs.flatten(0, 1), targets.flatten())
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(model.loss(log_probs, targets), expected)  # logits path too


def test_loss_gradients_equal_those_of_the_full_log_probs_and_reach_the_tied_embedding():
    model = adaptive_model().train()  # no dropout in this config: train == eval numerically
    tokens, targets = torch.randint(V, (3, 7)), torch.randint(V, (3, 7))
    model(tokens, targets=targets).loss.backward()
    cheap = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    log_probs, _ = model(tokens)
    torch.nn.functional.nll_loss(log_probs.flatten(0, 1), targets.flatten()).backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(cheap[name], p.grad, atol=1e-6, rtol=1e-4, msg=name)
    assert not hasattr(model, "decoder")
    tail_words = model.adaptive.order[6:]
    assert model.embedding.weight.grad[tail_words].abs().sum() > 0  # tail rows learn too
    assert all(p.grad is not None for p in model.parameters())


def test_a_cluster_without_targets_still_gives_every_parameter_a_gradient():
    model = adaptive_model().train()
    head_word = model.adaptive.order[0]
    model(torch.randint(V, (2, 3)), targets=torch.full((2, 3), int(head_word))).loss.backward()
    assert all(p.grad is not None for p in model.parameters())  # what DDP expects


def test_both_orders_of_the_tail_product_agree():
    head = adaptive_model().adaptive
    w = torch.randn(V, 8)
    for rows in (1, 50):
        h = torch.randn(rows, 8)
        for i in range(2):
            torch.testing.assert_close(head._tail(i, h, w, keys_first=True),
                                       head._tail(i, h, w, keys_first=False))


def test_step_by_step_log_probs_equal_the_whole_window():
    model = adaptive_model()
    tokens = torch.randint(V, (2, 6))
    with torch.no_grad():
        log_probs, final = model(tokens)
        state = None
        for t in range(6):
            step_lp, state = model.step(tokens[:, t], state)
            torch.testing.assert_close(step_lp, log_probs[:, t], atol=1e-5, rtol=1e-5)


def test_frequency_order_ranks_by_count_then_id():
    ids = torch.tensor([3, 3, 3, 1, 1, 4, 4, 0])
    assert frequency_order(ids, 6).tolist() == [3, 1, 4, 0, 2, 5]


def test_word_order_must_be_a_permutation():
    head = AdaptiveSoftmax(4, 10, (3,))
    with pytest.raises(ValueError, match="permutation of the 10 word ids"):
        head.set_order(torch.tensor([0, 0, 1, 2, 3, 4, 5, 6, 7, 8]))


def test_full_softmax_configs_and_weights_are_unchanged():
    config = LanguageModelConfig(vocab_size=V, embed_dim=8, hidden_size=8, tie_weights=True)
    assert config.adaptive_cutoffs is None
    keys = set(LanguageModel(config).state_dict())
    assert "decoder.bias" in keys and not any(k.startswith("adaptive") for k in keys)
    old = {k: v for k, v in config.to_dict().items() if not k.startswith("adaptive")}
    assert LanguageModelConfig.from_dict(old) == config  # checkpoints written before load


def test_config_round_trips_through_json():
    config = adaptive_model().config
    again = LanguageModelConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and again.adaptive_cutoffs == (6, 20)


@pytest.mark.parametrize("cutoffs, message", [
    ((20, 6), "strictly increasing"),
    ((6, 40), "below vocab_size = 40"),
    ((0, 6), "strictly increasing positive"),
    ((), "adaptive_cutoffs must be"),
    ("20", "adaptive_cutoffs must be"),
    ((2.5,), "adaptive_cutoffs must be"),
])
def test_bad_cutoffs_name_the_option(cutoffs, message):
    with pytest.raises(ValueError, match=message) as err:
        LanguageModelConfig(vocab_size=V, adaptive_cutoffs=cutoffs)
    assert "adaptive_cutoffs" in str(err.value)


def write_text(path, lines=600):
    rng = torch.Generator().manual_seed(0)
    sentences = ["the clouds are in the sky", "the sun is bright", "the rain falls",
                 "the sun is in the sky", "a cat sat on the mat", "birds fly south"]
    picks = torch.randint(len(sentences), (lines,), generator=rng).tolist()
    path.write_text("".join(sentences[i] + "\n" for i in picks), encoding="utf-8")
    return path


def test_cli_trains_saves_and_reloads_an_adaptive_word_model(tmp_path, capsys):
    train = write_text(tmp_path / "train.txt")
    out = tmp_path / "word"
    assert main(["train", "lm", "--train", str(train), "--valid-fraction", "0.1", "--level",
                 "word", "--preset", "tiny", "--out", str(out), "--epochs", "4", "--bptt", "8",
                 "--lr", "0.02", "--adaptive-cutoffs", "4,9", "--tie-weights", "--quiet"]) == 0
    model = TrainedLanguageModel.load(out)
    assert model.model.config.adaptive_cutoffs == (4, 9)
    rank = model.model.adaptive.rank  # restored from the checkpoint, not the identity
    assert rank[model.codec.tokenizer.token_to_id("the")] == 0  # the most frequent word
    assert rank[model.codec.eos_id] == 1  # <eos>: the tokenizer's last id, ranked second
    assert model.complete("the clouds are in the", k=3)[0].text == "sky"
    line = "".join(model.generate("the clouds are", 20, temperature=0.0, stop_at_eos=True))
    assert line == " in the sky"
    assert model.beam("the clouds are", 5, beam_size=3) == "in the sky"
    assert 0 < model.evaluate("the sun is bright\n")["loss"] < 3


@pytest.mark.parametrize("value, message", [
    ("9,4", "--adaptive-cutoffs must be strictly increasing"),
    ("4,x", "--adaptive-cutoffs must be comma-separated ints"),
    ("4,500", "adaptive_cutoffs must be strictly increasing positive ints, each below"),
])
def test_cli_bad_cutoffs_name_the_option(tmp_path, capsys, value, message):
    train = write_text(tmp_path / "train.txt", 50)
    assert main(["train", "lm", "--train", str(train), "--level", "word", "--preset", "tiny",
                 "--out", str(tmp_path / "run"), "--adaptive-cutoffs", value, "--quiet"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_adaptive_model_exports_to_onnx_with_log_probs_as_logits(tmp_path):
    pytest.importorskip("onnxruntime")
    from recur.export import export_language_model_step

    result = export_language_model_step(adaptive_model(), tmp_path / "lm.onnx")
    assert result.max_abs_diff < 1e-4


def test_presets_auto_cutoffs_fit_the_vocabulary():
    """The word presets' "auto": a 2,000-word head for PTB-sized vocabularies, the full
    softmax for small ones (where a head of 2,000 would leave no tail)."""
    from recur.tasks.language_model import PRESETS, resolve_cutoffs

    assert PRESETS["word"].model["adaptive_cutoffs"] == "auto"
    assert resolve_cutoffs({"adaptive_cutoffs": "auto"}, 10_002)["adaptive_cutoffs"] == (2000,)
    assert resolve_cutoffs({"adaptive_cutoffs": "auto"}, 3_999)["adaptive_cutoffs"] is None
    assert resolve_cutoffs({"adaptive_cutoffs": (4, 9)}, 20) == {"adaptive_cutoffs": (4, 9)}
