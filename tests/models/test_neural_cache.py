"""The continuous cache (Grave et al. 2017) against a per-position loop, its grid search,
its token-by-token decoding form against the whole-stream form, and its wiring into
``TrainedLanguageModel`` (evaluate, generate, beam, complete) and the CLI."""

import json
import math

import pytest
import torch

from recur.cli import main
from recur.models.language_model import LanguageModel, LanguageModelConfig
from recur.models.neural_cache import CachedDecoding, NeuralCache, cache_log_probs, fit_cache, next_log_probs
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
            p_cache = sum(w for w, i in zip(weights, keys, strict=True) if targets[b, i] == targets[b, t])
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


# -- decoding ---------------------------------------------------------------------------------


def small_lm(V=7, seed=0):
    torch.manual_seed(seed)
    return LanguageModel(LanguageModelConfig(vocab_size=V, embed_dim=6, hidden_size=5,
                                             num_layers=2)).eval()


@torch.no_grad()
def whole_stream(model, tokens, cache):
    """cache_log_probs over tokens (B, L): log p(tokens[:, t+1]) for t < L - 1."""
    features, _ = model.features(tokens[:, :-1])
    targets = tokens[:, 1:]
    log_p = model.log_probs(features).gather(-1, targets.unsqueeze(-1))[..., 0]
    return cache_log_probs(features, targets, log_p, cache)


@pytest.mark.parametrize("size", [1, 4, 50])
@torch.no_grad()
def test_decoding_token_by_token_equals_the_whole_stream(size):
    model, cache = small_lm(), NeuralCache(size, theta=0.8, lam=0.3)
    tokens = torch.randint(7, (2, 20), generator=torch.Generator().manual_seed(1))
    expected = whole_stream(model, tokens, cache)
    decoding = CachedDecoding(model, cache)
    # the first 6 tokens primed in one pass, the rest fed one at a time
    state = decoding.prime(tokens[:, :5], decoding.start())
    got = []
    for t in range(5, 19):
        log_probs, state = decoding.step(tokens[:, t], state)               # (2, V)
        got.append(log_probs.gather(1, tokens[:, t + 1:t + 2])[:, 0])
        assert state.keys.shape[1] == min(size, t)
    torch.testing.assert_close(torch.stack(got, 1), expected[:, 5:], atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_decoding_distributions_are_normalised_and_lambda_zero_is_the_model():
    model = small_lm()
    tokens = torch.tensor([[1, 2, 3, 1, 2]])
    mixed = CachedDecoding(model, NeuralCache(10, 1.0, 0.4))
    plain = CachedDecoding(model, NeuralCache(10, 1.0, 0.0))
    state_m = mixed.prime(tokens[:, :-1], mixed.start())
    state_p = plain.prime(tokens[:, :-1], plain.start())
    log_probs, _ = mixed.step(tokens[:, -1], state_m)
    assert float(log_probs.exp().sum()) == pytest.approx(1.0, abs=1e-5)
    model_log_probs, _ = model.step(tokens[:, -1], model(tokens[:, :-1])[1])
    torch.testing.assert_close(plain.step(tokens[:, -1], state_p)[0], model_log_probs)
    # next_log_probs without keys is the model itself
    empty = torch.zeros(1, 0, 5)
    torch.testing.assert_close(next_log_probs(torch.ones(1, 5), empty, empty.long()[..., 0],
                                              model_log_probs, NeuralCache(10, 1.0, 0.4)),
                               model_log_probs)


@torch.no_grad()
def test_reorder_moves_each_row_with_its_cache():
    """Rows picked by ``reorder`` continue exactly as the rows they were taken from."""
    model, cache = small_lm(), NeuralCache(8, theta=0.5, lam=0.5)
    tokens = torch.randint(7, (3, 12), generator=torch.Generator().manual_seed(2))
    decoding = CachedDecoding(model, cache)
    state = decoding.prime(tokens[:, :8], decoding.start())
    index = torch.tensor([2, 0, 2, 1])
    picked = decoding.reorder(state, index)
    got, _ = decoding.step(tokens[index, 8], picked)
    expected, _ = decoding.step(tokens[:, 8], state)
    torch.testing.assert_close(got, expected[index])


def test_complete_with_a_cache_favours_the_prompt_s_words(word_model, capsys):
    out, _ = word_model
    model = TrainedLanguageModel.load(out)
    prompt = "name7 was here\nmr name7 said it\nthe name7 company rose\nmr"
    plain = {c.text: c.probability for c in model.next_tokens(prompt, k=100)}
    cached = {c.text: c.probability
              for c in model.next_tokens(prompt, k=100, cache=NeuralCache(50, 1.0, 0.3))}
    assert cached["name7"] > plain.get("name7", 0.0)
    assert sum(cached.values()) == pytest.approx(1.0, abs=1e-4)      # k ≥ V: everything
    # λ = 0: the model's own distribution, through the cached decoding path
    zero = model.next_tokens(prompt, k=5, cache=NeuralCache(50, 1.0, 0.0))
    for a, b in zip(zero, model.next_tokens(prompt, k=5), strict=True):
        assert a.text == b.text and a.probability == pytest.approx(b.probability, rel=1e-5)
    # beam search over several words reorders the cache with the beams
    two = model.complete(prompt, k=3, words=2, cache=NeuralCache(50, 1.0, 0.3))
    assert len(two) == 3 and all(len(c.text.split()) == 2 for c in two)
    assert main(["complete", str(out), "--prompt", prompt, "--k", "3", "--json",
                 "--cache-size", "50", "--cache-theta", "1.0", "--cache-lambda", "0.3"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    top = model.next_tokens(prompt, k=3, cache=NeuralCache(50, 1.0, 0.3))
    assert [p["text"] for p in printed] == [c.text for c in top]


def test_generate_with_a_cache(word_model, capsys):
    out, _ = word_model
    model = TrainedLanguageModel.load(out)
    prompt = "mr name3 said it\nname3 was here\n"
    # greedy with λ = 0 is the plain model's greedy text
    assert "".join(model.generate(prompt, 12, temperature=0, cache=NeuralCache(20, 1.0, 0.0))) \
        == "".join(model.generate(prompt, 12, temperature=0))
    first = "".join(model.generate(prompt, 30, seed=5, cache=NeuralCache(20, 1.0, 0.5)))
    assert first == "".join(model.generate(prompt, 30, seed=5, cache=NeuralCache(20, 1.0, 0.5)))
    assert model.beam(prompt, 6, beam_size=3, cache=NeuralCache(20, 1.0, 0.5))
    assert main(["generate", str(out), "--prompt", prompt, "--length", "5", "--seed", "1",
                 "--cache-size", "20"]) == 0
    assert capsys.readouterr().out.startswith(prompt)
    assert main(["generate", str(out), "--prompt", "mr", "--cache-lambda", "0.2"]) == 2
    assert "--cache-theta and --cache-lambda need --cache-size N" in capsys.readouterr().err


def test_char_model_completes_with_a_cache(tmp_path):
    text = "".join(f"the {w} sat. " for w in ["zebra", "cat", "dog", "zebu"] * 60)
    (tmp_path / "t.txt").write_text(text)
    assert main(["train", "lm", "--train", str(tmp_path / "t.txt"), "--level", "char",
                 "--preset", "tiny", "--out", str(tmp_path / "run"), "--epochs", "1",
                 "--quiet"]) == 0
    model = TrainedLanguageModel.load(tmp_path / "run")
    found = model.complete("the zebra sat. the ze", k=3, cache=NeuralCache(30, 1.0, 0.3))
    assert len(found) == 3 and all(c.text.startswith("ze") for c in found)
    assert found[0].probability >= found[-1].probability
