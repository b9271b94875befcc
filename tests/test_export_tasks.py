"""ONNX export of the language model (one step, state in and out) and of the tagger's
emission network: parity with torch under onnxruntime (< 1e-4) for LSTM and GRU cells,
the onnx backends of ``recur generate`` / ``recur tag`` giving the torch backend's text,
no compiled kernel traced, and refusals that name the reason and the option."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
from serve_models import tiny_language_model, tiny_sentiment, tiny_tagger  # noqa: E402

from recur.cli import main  # noqa: E402
from recur.export import (  # noqa: E402
    WEIGHTS_DIGEST,
    ExportError,
    OnnxLanguageModel,
    OnnxLanguageModelStep,
    OnnxNERModel,
    OnnxTaggerEmissions,
    _tagger_check_batch,
    default_onnx_path,
    export_language_model_step,
    export_onnx,
    export_tagger_emissions,
)
from recur.layers import Recurrent  # noqa: E402
from recur.models.language_model import LanguageModel, LanguageModelConfig  # noqa: E402
from recur.models.tagger import SequenceTagger, TaggerConfig  # noqa: E402
from recur.tasks.language_model import TrainedLanguageModel  # noqa: E402
from recur.tasks.tagger import NERModel  # noqa: E402

SENTENCES = [["John", "lives", "in", "Paris", "."], ["Mary", "visited", "Berlin", "today", "."],
             ["Zyzzyva", "met", "Quixote", "in", "Xanadu"], ["London"], [],
             ["the", "city", "of", "Rome", "and", "the", "city", "of", "Vienna"] * 4]
PROMPTS = ["the film", "", "a superb moving story and", "w"]  # the tiny LM knows these characters


# -- language model -------------------------------------------------------------------------


def assert_step_parity(net: LanguageModel, session: OnnxLanguageModelStep, tokens: torch.Tensor,
                       state=None) -> None:
    """Feed ``tokens`` (B, T) one step at a time through onnxruntime; the logits of every
    step and the final state must equal torch's forward over the whole window."""
    with torch.no_grad():
        expected, expected_state = net(tokens, state)                           # (B, T, V)
    onnx_state = state
    for t in range(tokens.shape[1]):
        logits, onnx_state = session.run(tokens[:, t], onnx_state)
        assert logits.shape == expected[:, t].shape
        assert (logits - expected[:, t]).abs().max() < 1e-4
    for s, o in zip(expected_state, onnx_state, strict=True):
        assert s.shape == o.shape and (s - o).abs().max() < 1e-4


@pytest.mark.parametrize("config", [
    {"cell": "lstm", "num_layers": 2},
    {"cell": "gru", "num_layers": 2},
    {"cell": "lstm", "tie_weights": True, "hidden_size": 12},  # projection H -> E, tied decoder
    {"cell": "gru", "weight_drop": 0.5, "num_conditions": 2},  # parametrized W_hh
])
def test_language_model_step_matches_torch_for_any_batch(tmp_path, config):
    c = {"vocab_size": 30, "embed_dim": 8, "hidden_size": 10} | config
    torch.manual_seed(0)
    net = LanguageModel(LanguageModelConfig(**c)).eval()
    result = export_language_model_step(net, tmp_path / "lm.onnx")
    names = ["h", "c"] if c["cell"] == "lstm" else ["h"]
    assert result.inputs == ["tokens", *(f"state_{n}" for n in names)]
    assert result.outputs == ["logits", *(f"next_state_{n}" for n in names)]
    assert result.max_abs_diff < 1e-4
    session = OnnxLanguageModelStep(result.path)
    g = torch.Generator().manual_seed(1)
    for B, T in [(1, 6), (7, 3)]:  # batch sizes the export never saw
        tokens = torch.randint(0, 30, (B, T), generator=g)
        state = tuple(torch.randn(net.config.num_layers, B, c["hidden_size"], generator=g)
                      for _ in names)
        assert_step_parity(net, session, tokens, state)
        assert_step_parity(net, session, tokens)  # state None: zeros
    with torch.no_grad():  # (no_grad: no compiled GRU kernel to build)
        net.train()(torch.zeros(2, 3, dtype=torch.long))  # the exported model is left as it was


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    run = tiny_language_model()
    assert main(["export", str(run)]) == 0  # default: model.onnx next to the weights
    assert default_onnx_path(run).is_file()
    return run


def test_trained_language_model_matches_torch_on_real_text(lm_run):
    torch_model = TrainedLanguageModel.load(lm_run)
    onnx_model = OnnxLanguageModel.load(lm_run)
    for prompt in PROMPTS[:3]:
        ids = torch_model._prompt(prompt)                                        # (1, P)
        assert_step_parity(torch_model.model, onnx_model.session, ids)


def generate(capsys, *argv) -> str:
    capsys.readouterr()
    assert main(["generate", *argv]) == 0
    return capsys.readouterr().out


def test_greedy_generation_with_the_onnx_backend_gives_the_torch_text(lm_run, capsys):
    for prompt in PROMPTS:
        args = [str(lm_run), "--prompt", prompt, "--length", "80", "--temperature", "0"]
        by_torch = generate(capsys, *args)
        assert by_torch == generate(capsys, *args, "--backend", "onnx")
        assert len(by_torch) > len(prompt) + 20
    args = [str(lm_run), "--prompt", "the", "--length", "60", "--seed", "3"]  # sampling
    assert generate(capsys, *args) == generate(capsys, *args, "--backend", "onnx")
    args = [str(lm_run), "--prompt", "the", "--length", "20", "--beam", "4"]
    assert generate(capsys, *args) == generate(capsys, *args, "--backend", "onnx")



def test_the_onnx_backend_refuses_a_continuous_cache(lm_run, capsys):
    """The step graph returns logits, not the output vectors the cache keys on."""
    args = [str(lm_run), "--prompt", "the", "--length", "5", "--cache-size", "20"]
    assert main(["generate", *args, "--backend", "onnx"]) == 2
    assert "the continuous cache needs the model's output vectors" in capsys.readouterr().err
    assert len(generate(capsys, *args)) > len("the")                     # torch: fine


def test_gru_greedy_generation_equals_torch_through_the_same_decoder(lm_run, tmp_path):
    """An untrained GRU with spread-out logits (decoder scaled up, so the argmax is never a
    near-tie), swapped into the trained model's codec: one decoder, two step functions."""
    trained = TrainedLanguageModel.load(lm_run)
    torch.manual_seed(0)
    net = LanguageModel(LanguageModelConfig(vocab_size=trained.codec.vocab_size, embed_dim=8,
                                            cell="gru", hidden_size=16, num_layers=2)).eval()
    with torch.no_grad():
        net.decoder.weight.mul_(20)
    torch_model = TrainedLanguageModel(net, trained.codec, trained.data)
    onnx_model = OnnxLanguageModel(net, trained.codec, trained.data)
    onnx_model.session = OnnxLanguageModelStep(export_language_model_step(net, tmp_path / "g.onnx").path)
    for prompt in PROMPTS:
        text = "".join(torch_model.generate(prompt, 100, temperature=0.0))
        assert text == "".join(onnx_model.generate(prompt, 100, temperature=0.0))
        assert len(text) > 0


def test_export_traces_no_recurrent_layer_and_no_compiled_kernel(tmp_path, monkeypatch):
    """The twin replaces every Recurrent: neither torch's fused kernels nor recur's compiled
    CPU loops (GRU, Elman) run while exporting, and the graph holds ONNX's own GRU operator."""
    net = LanguageModel(LanguageModelConfig(vocab_size=20, embed_dim=8, cell="gru",
                                            hidden_size=8, num_layers=2)).eval()

    def refuse(*args, **kwargs):
        raise AssertionError("a Recurrent ran during export")

    monkeypatch.setattr(Recurrent, "forward", refuse)
    monkeypatch.setattr("recur.layers.run_compiled_cell", refuse)
    path = export_language_model_step(net, tmp_path / "gru.onnx", check=False).path
    graph = onnx.load(str(path)).graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("GRU") == 2
    assert {node.domain for node in graph.node} == {""}  # standard operators only


# -- tagger ---------------------------------------------------------------------------------


def assert_emission_parity(net: SequenceTagger, session: OnnxTaggerEmissions) -> None:
    for seed, lengths in enumerate([[1], [12, 3, 7], [4] * 9]):
        batch = _tagger_check_batch(net, lengths, seed=seed)
        with torch.no_grad():
            expected = net(batch)                                                # (B, T, K)
        got = session.emissions(batch)
        assert got.shape == expected.shape
        mask = net.mask(batch).unsqueeze(-1)  # padded positions: never read by Viterbi
        assert ((got - expected) * mask).abs().max() < 1e-4
        assert net.crf is None or net.crf.decode(got, net.mask(batch)).paths == \
            net.crf.decode(expected, net.mask(batch)).paths


@pytest.fixture(scope="module")
def tagger_run(tmp_path_factory):
    run = tiny_tagger()
    out = tmp_path_factory.mktemp("onnx") / "tagger.onnx"
    assert main(["export", str(run), "--out", str(out)]) == 0
    return run, out


def test_trained_tagger_matches_torch_on_real_and_random_sentences(tagger_run):
    run, path = tagger_run
    torch_model, onnx_model = NERModel.load(run), OnnxNERModel.load(run, onnx=path)
    tags = torch_model.tag(SENTENCES)
    assert onnx_model.tag(SENTENCES) == tags
    assert tags[0] == ["B-PER", "O", "O", "B-LOC", "O"]  # the model is trained: real tags
    assert onnx_model.tag(SENTENCES, batch_size=1) == tags
    assert_emission_parity(torch_model.model, onnx_model.session)


@pytest.mark.parametrize("config", [
    {"cell": "gru", "char_encoder": "cnn", "num_layers": 2},
    {"cell": "lstm", "char_encoder": "none", "casing_dim": 0, "head": "softmax"},
])
def test_tagger_emissions_match_torch_for_gru_and_without_characters(tmp_path, config):
    torch.manual_seed(0)
    net = SequenceTagger(TaggerConfig(num_words=50, num_chars=20, tags=("O", "B-PER", "I-PER"),
                                      word_dim=8, char_dim=4, char_hidden=5, hidden_size=6,
                                      **config)).eval()
    result = export_tagger_emissions(net, tmp_path / "t.onnx")
    assert result.max_abs_diff < 1e-4
    assert_emission_parity(net, OnnxTaggerEmissions(result.path))


def test_recur_tag_with_the_onnx_backend_prints_the_torch_entities(tagger_run, tmp_path, capsys):
    run, path = tagger_run
    text = tmp_path / "news.txt"
    text.write_text("John lives in Paris. Mary visited Berlin and Anna went to Rome.\n")
    outputs = []
    for backend in (["--backend", "torch"], ["--backend", "onnx", "--onnx", str(path)]):
        capsys.readouterr()
        assert main(["tag", str(run), "--input", str(text), "--json", *backend]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert {json.loads(line)["text"] for line in outputs[0].splitlines()} >= {"John", "Paris"}
    capsys.readouterr()
    assert main(["predict", str(run), "John lives in Paris.", "--backend", "onnx",
                 "--onnx", str(path)]) == 0
    assert "[John]PER" in capsys.readouterr().out


# -- refusals -------------------------------------------------------------------------------


def test_onnx_backend_without_a_file_names_the_option(tmp_path, capsys):
    run = tmp_path / "lm"
    import shutil

    shutil.copytree(tiny_language_model(), run)
    default_onnx_path(run).unlink(missing_ok=True)
    assert main(["generate", str(run), "--backend", "onnx"]) == 2
    err = capsys.readouterr().err
    assert "no ONNX file" in err and "--onnx FILE" in err and "recur export" in err
    assert main(["generate", str(run), "--onnx", str(tmp_path / "x.onnx")]) == 2
    assert "add --backend onnx" in capsys.readouterr().err
    assert main(["generate", str(run), "--backend", "onnx", "--onnx", str(tmp_path / "x.onnx")]) == 2
    assert "--onnx " + str(tmp_path / "x.onnx") + " does not exist" in capsys.readouterr().err


def test_a_file_of_another_kind_or_other_weights_is_refused(lm_run, tagger_run, tmp_path, capsys):
    _, tagger_file = tagger_run
    assert main(["generate", str(lm_run), "--backend", "onnx", "--onnx", str(tagger_file)]) == 2
    err = capsys.readouterr().err
    assert "is not a language-model step graph: its inputs are words" in err
    model = onnx.load(str(default_onnx_path(lm_run)))
    for prop in model.metadata_props:
        if prop.key == WEIGHTS_DIGEST:
            prop.value = "0" * 64
    stale = tmp_path / "stale.onnx"
    onnx.save(model, str(stale))
    with pytest.raises(ExportError, match="exported from other weights.*export again: recur export"):
        OnnxLanguageModel.load(lm_run, onnx=stale)


def test_exporting_a_forecaster_says_which_tasks_export(tmp_path, capsys):
    pytest.importorskip("pandas")
    import pandas as pd

    t = np.arange(48)
    pd.DataFrame({"units": 100 + 10 * np.sin(t / 2)}).to_csv(tmp_path / "s.csv", index=False)
    assert main(["train", "forecast", "--csv", str(tmp_path / "s.csv"), "--column", "units",
                 "--horizon", "3", "--steps", "2", "--hidden-size", "4",
                 "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "f.onnx")]) == 2
    err = capsys.readouterr().err
    assert "holds a 'forecast' model; ONNX export exists for the tasks sentiment, " \
           "language_model, tagger" in err
    assert not (tmp_path / "f.onnx").exists()


def test_cells_without_an_onnx_operator_are_refused_for_the_language_model(tmp_path):
    net = LanguageModel(LanguageModelConfig(vocab_size=20, embed_dim=8, cell="minlstm",
                                            hidden_size=8, num_layers=1))
    with pytest.raises(ExportError, match="cannot export a MinLSTM cell.*cells that export: lstm"):
        export_language_model_step(net, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_export_onnx_of_a_sentiment_run_still_writes_next_to_the_weights(tmp_path):
    import shutil

    run = tmp_path / "imdb"
    shutil.copytree(tiny_sentiment(), run)
    result = export_onnx(run)
    assert result.path == default_onnx_path(run) and result.max_abs_diff < 1e-4
