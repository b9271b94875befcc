"""The continuous cache (Grave et al. 2017) against a per-position loop, its grid search,
and its wiring into ``TrainedLanguageModel.evaluate`` and ``recur evaluate``."""

import json
import math

import pytest
import torch

from recur.cli import main
from recur.models.neural_cache import NeuralCache, cache_log_probs, fit_cache
from recur.tasks.language_model import TrainedLanguageModel


def loop_oracle(hidden, targets, log_p, cache):
    """The equations position by position: p = (1 − λ) p_model + λ Σ softmax(θ h_tᵀ h_i)
    over the last ``size`` positions i < t, each voting for targets[i] (= w_{i+1})."""
    B, L, _ = hidden.shape
    out = torch.empty(B, L, dtype=torch.float64)
    for b in range(B):
        for t in range(L):
            keys = range(max(0, t - cache.size), t)
            if not keys:
                out[b, t] = log_p[b, t]
                continue
            scores = torch.stack([cache.theta * hidden[b, t] @ hidden[b, i] for i in keys])
            weights = torch.softmax(scores, 0)
            p_cache = sum(w for w, i in zip(weights, keys) if targets[b, i] == targets[b, t])
            out[b, t] = math.log((1 - cache.lam) * math.exp(log_p[b, t]) + cache.lam * p_cache)
    return out


def random_stream(B=3, L=40, E=5, V=6, seed=0):
    torch.manual_seed(seed)
    hidden = torch.randn(B, L, E, dtype=torch.float64)
    targets = torch.randint(V, (B, L))
    log_p = torch.log_softmax(torch.randn(B, L, V, dtype=torch.float64), -1)
    return hidden, targets, log_p.gather(-1, targets.unsqueeze(-1))[..., 0]


@pytest.mark.parametrize("size, chunk", [(1, 7), (5, 7), (12, 5), (100, 16)])
def test_equals_the_per_position_equations(size, chunk):
    """Chunks smaller, larger and not dividing the cache size all give the loop's answer."""
    hidden, targets, log_p = random_stream()
    cache = NeuralCache(size, theta=0.7, lam=0.25)
    expected = loop_oracle(hidden, targets, log_p, cache)
    got = cache_log_probs(hidden, targets, log_p, cache, chunk=chunk)
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=1e-5)


def test_lambda_zero_is_the_model_and_repeats_become_likely():
    hidden, targets, log_p = random_stream()
    plain = cache_log_probs(hidden, targets, log_p, NeuralCache(10, 0.5, 0.0))
    torch.testing.assert_close(plain, log_p.float())
    # a stream that repeats one word after identical contexts: the cache makes it likely
    hidden = torch.ones(1, 30, 4)
    targets = torch.full((1, 30), 2)
    log_p = torch.full((1, 30), math.log(0.01))
    mixed = cache_log_probs(hidden, targets, log_p, NeuralCache(10, 1.0, 0.5))
    assert mixed[0, 0] == pytest.approx(math.log(0.01))          # no history yet
    assert mixed[0, 1:].exp().min() > 0.5                          # 0.5·0.01 + 0.5·1


def test_fit_cache_finds_the_grid_minimum():
    hidden, targets, log_p = random_stream(L=60, seed=1)
    grid = {"sizes": (3, 20), "thetas": (0.1, 1.0), "lams": (0.05, 0.3)}
    best, loss = fit_cache(hidden, targets, log_p, chunk=16, **grid)
    losses = {NeuralCache(n, th, la): -float(cache_log_probs(hidden, targets, log_p,
                                                             NeuralCache(n, th, la)).mean())
              for n in grid["sizes"] for th in grid["thetas"] for la in grid["lams"]}
    assert best == min(losses, key=losses.get)
    assert loss == pytest.approx(losses[best], rel=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"size": 0}, "cache size must be a positive int"),
    ({"theta": -1.0}, "cache theta must be a finite number >= 0"),
    ({"lam": 1.0}, "cache lambda must be a number in [0, 1)"),
    ({"lam": True}, "cache lambda must be a number in [0, 1)"),
])
def test_bad_settings_name_the_setting(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")):
        NeuralCache(**kwargs)


@pytest.fixture(scope="module")
def word_model(tmp_path_factory):
    """A tiny word-level LM on a text whose sentences reuse rare names: cache-friendly."""
    import random

    root = tmp_path_factory.mktemp("cache")
    rng = random.Random(0)
    names = [f"name{i}" for i in range(60)]

    def text(lines):
        out, name = [], rng.choice(names)
        for k in range(lines):
            if k % 8 == 0:
                name = rng.choice(names)                          # a new "article" topic
            out.append(rng.choice(["mr {} said it", "the {} company rose", "{} was here"])
                       .format(name))
        return "\n".join(out) + "\n"

    (root / "train.txt").write_text(text(1500))
    (root / "valid.txt").write_text(text(300))
    out = root / "run"
    assert main(["train", "lm", "--train", str(root / "train.txt"), "--valid",
                 str(root / "valid.txt"), "--level", "word", "--preset", "tiny", "--out",
                 str(out), "--epochs", "2", "--quiet"]) == 0
    return out, root / "valid.txt"


def test_evaluate_with_a_cache_reports_both_and_fit_helps(word_model, capsys):
    out, valid = word_model
    model = TrainedLanguageModel.load(out)
    text = valid.read_text()
    plain = model.evaluate(text)
    best, fitted_loss = model.fit_cache(text, sizes=(50, 200), thetas=(0.3, 1.0),
                                        lams=(0.1, 0.3))
    metrics = model.evaluate(text, cache=best)
    # the model's own loss over the full rows is the plain evaluation's, up to the tail
    assert metrics["model_loss"] == pytest.approx(plain["loss"], rel=0.01)
    assert metrics["loss"] == pytest.approx(fitted_loss, rel=1e-5)
    assert metrics["loss"] < metrics["model_loss"]      # recurring names: the cache helps
    capsys.readouterr()
    assert main(["evaluate", str(out), "--data", str(valid), "--cache-size", str(best.size),
                 "--cache-theta", str(best.theta), "--cache-lambda", str(best.lam),
                 "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["perplexity"] == pytest.approx(metrics["perplexity"], rel=1e-5)
    assert printed["model_perplexity"] == pytest.approx(metrics["model_perplexity"], rel=1e-5)


def test_cache_flags_are_checked(word_model, capsys):
    out, valid = word_model
    assert main(["evaluate", str(out), "--data", str(valid), "--cache-theta", "0.3"]) == 2
    assert "--cache-theta and --cache-lambda need --cache-size N" in capsys.readouterr().err
    assert main(["evaluate", str(out), "--data", str(valid), "--cache-size", "10",
                 "--cache-lambda", "1.5"]) == 2
    assert "cache lambda must be a number in [0, 1), got 1.5" in capsys.readouterr().err
