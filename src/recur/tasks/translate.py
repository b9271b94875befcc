"""Machine translation (encoder-decoder): sentence pairs → Seq2Seq → translations, BLEU.

The task the Trainer runs, the presets, and the CLI verbs built on them:

    recur train translate --train-src PATH --train-tgt PATH --valid-src PATH --valid-tgt PATH
                          --out DIR [--preset small|multi30k] [--time-budget MIN] ...
    recur translate DIR "Ein Satz." ... | --input FILE [--beam 5] [--json]
    recur evaluate DIR --src PATH --ref PATH [--beam 5] [--json]

Validation after every epoch reports the teacher-forced loss and the BLEU and chrF of
greedy translations (sacrebleu on detokenized text: the standard way to report them);
the best checkpoint is the one with the highest validation BLEU.

Bad input: an empty source line translates to an empty line (the model is not asked);
a source longer than the checkpoint's ``max_source_length`` tokens is truncated with a
warning; characters the tokenizer has never seen become its unknown token; ``--beam``
must be >= 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from recur.cells import CELLS
from recur.cells.base import check_positive_int
from recur.data.parallel import (
    ParallelBatch,
    ParallelBatcher,
    ParallelTexts,
    ParallelTokenizerConfig,
    ParallelTokenizers,
    encode_pairs,
    encode_sources,
    parallel_summary,
    read_lines,
    read_parallel,
)
from recur.models.seq2seq import (
    ARCHITECTURES,
    Seq2Seq,
    Seq2SeqConfig,
    Translation,
    count_parameters,
    max_target_length,
)
from recur.training import Task, TrainConfig, register_task, run_training
from recur.training.checkpoint import load_checkpoint
from recur.training.config import add_ema_argument, fast_cpu_precision
from recur.training.task import StepOutput


@dataclass(frozen=True)
class TranslationDataConfig:
    """How sentence pairs become batches, and decoding limits (saved in config.json)."""

    tokenizer: str = "bpe"                # bpe | word
    joint_vocab: bool = False             # one BPE for both languages
    vocab_size: int = 6000                # per language (all of it when joint)
    min_freq: int = 2
    lowercase: bool = False
    max_length: int = 64                  # training pairs with a longer side are dropped
    max_source_length: int = 200          # longer sources are truncated (with a warning)
    batch_size: int = 64
    bucket: bool = True                   # batch similar source lengths together
    label_smoothing: float = 0.1
    teacher_forcing: float = 1.0          # probability of feeding the true previous token
    max_length_ratio: float = 2.0         # decode at most ratio · source length + 5 tokens
    length_penalty: float = 1.0           # beam score = log p / length ** length_penalty

    def __post_init__(self) -> None:
        if self.tokenizer not in ("bpe", "word"):
            raise ValueError(f"tokenizer must be bpe or word, got {self.tokenizer!r}")
        for name in ("vocab_size", "min_freq", "max_length", "max_source_length", "batch_size"):
            check_positive_int(name, getattr(self, name))
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if not 0 <= self.teacher_forcing <= 1:
            raise ValueError(f"teacher_forcing must be in [0, 1], got {self.teacher_forcing!r}")
        if not self.max_length_ratio > 0:
            raise ValueError(f"max_length_ratio must be > 0, got {self.max_length_ratio!r}")

    @property
    def tokenizer_config(self) -> ParallelTokenizerConfig:
        return ParallelTokenizerConfig(kind=self.tokenizer, joint=self.joint_vocab,
                                       vocab_size=self.vocab_size, min_freq=self.min_freq,
                                       lowercase=self.lowercase)

    @classmethod
    def from_dict(cls, data: dict) -> TranslationDataConfig:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True)
class Preset:
    data: TranslationDataConfig
    model: dict[str, Any]      # Seq2SeqConfig fields but the vocabulary sizes and specials
    training: TrainConfig


PRESETS: dict[str, Preset] = {
    # a tiny model for tests and smoke runs
    "small": Preset(
        TranslationDataConfig(vocab_size=1000, batch_size=32, label_smoothing=0.0),
        {"architecture": "luong", "embed_dim": 64, "cell": "gru", "encoder_hidden": 64,
         "decoder_hidden": 128, "dropout": 0.1},
        TrainConfig(epochs=10, optimizer="adam", lr=3e-3, clip_norm=1.0, monitor="bleu",
                    mode="max"),
    ),
    # the measured Multi30k run (docs/translation.md)
    "multi30k": Preset(
        TranslationDataConfig(vocab_size=6000, batch_size=64, label_smoothing=0.1),
        {"architecture": "luong", "attention": "general", "embed_dim": 256, "cell": "lstm",
         "encoder_hidden": 256, "decoder_hidden": 512, "dropout": 0.2},
        TrainConfig(epochs=6, max_steps=1000, optimizer="adam", lr=2e-3, clip_norm=1.0,
                    schedule="cosine", warmup_steps=200, precision=fast_cpu_precision(), monitor="bleu",
                    mode="max", time_budget_min=35.0, log_every=50),
    ),
}


# -- metrics --------------------------------------------------------------------------------------


def corpus_scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """sacrebleu's corpus BLEU (13a tokenization, cased) and chrF on detokenized text."""
    try:
        import sacrebleu
    except ImportError as err:  # an optional extra
        raise ImportError("BLEU and chrF need sacrebleu: pip install 'recur[translate]'") from err
    if len(hypotheses) != len(references):
        raise ValueError(f"need one hypothesis per reference, got {len(hypotheses)} and "
                         f"{len(references)}")
    return {"bleu": sacrebleu.corpus_bleu(hypotheses, [references]).score,
            "chrf": sacrebleu.corpus_chrf(hypotheses, [references]).score}


# -- the task -------------------------------------------------------------------------------------


def seq2seq(model: nn.Module) -> Seq2Seq:
    """The Seq2Seq inside ``model`` (unwrapping DistributedDataParallel)."""
    return getattr(model, "module", model)


class TranslateTask(Task):
    """Translation for the Trainer: encoded pairs, bucketed batches, loss, BLEU.

    Args:
        train, valid: sentence pairs (``valid`` may be None).
        tokenizers: fitted tokenizers.
        data: the data config; model: the Seq2Seq config; seed: per-epoch shuffles.
    """

    name = "translate"

    def __init__(self, train: ParallelTexts, valid: ParallelTexts | None,
                 tokenizers: ParallelTokenizers, data: TranslationDataConfig,
                 model: Seq2SeqConfig, seed: int = 0) -> None:
        self.tokenizers, self.data, self.model_config, self.seed = tokenizers, data, model, seed
        self.train_src, self.train_tgt, kept = encode_pairs(tokenizers, train, data.max_length)
        if not kept:
            raise ValueError(f"no training pair is left after dropping empty pairs and pairs "
                             f"longer than max_length={data.max_length} tokens")
        self.stats = parallel_summary(train, self.train_src, self.train_tgt)
        self.valid_src, self.valid_tgt, self.valid_refs = [], [], []
        if valid is not None:
            self.valid_src, self.valid_tgt, kept = encode_pairs(tokenizers, valid)
            self.valid_src = [s[: data.max_source_length] for s in self.valid_src]
            self.valid_refs = [valid.tgt[i] for i in kept]
        self.generator = torch.Generator().manual_seed(seed)
        self._train: ParallelBatcher | None = None

    def build_model(self) -> nn.Module:
        return Seq2Seq(self.model_config)

    def batcher(self, src, tgt, shuffle: bool, seed: int = 0) -> ParallelBatcher:
        t = self.tokenizers
        return ParallelBatcher(src, tgt, bos_id=t.bos_id, eos_id=t.eos_id, pad_id=t.pad_id,
                               batch_size=self.data.batch_size, shuffle=shuffle, seed=seed,
                               bucket=self.data.bucket)

    def train_batches(self, epoch: int):
        if self._train is None:
            self._train = self.batcher(self.train_src, self.train_tgt, True, self.seed)
        return _Sized(self._train, epoch)

    def valid_batches(self):
        if not self.valid_src:
            return ()
        return _Sized(self.batcher(self.valid_src, self.valid_tgt, False), 0)

    def loss(self, model: nn.Module, batch: ParallelBatch, state: Any = None) -> StepOutput:
        net = seq2seq(model)
        tf = self.data.teacher_forcing if net.training else 1.0
        loss = net.token_loss(batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out,
                              self.data.label_smoothing if net.training else 0.0, tf,
                              self.generator)
        return StepOutput(loss, batch.num_tokens)

    def evaluate(self, model: nn.Module, batches) -> dict[str, float]:
        """Teacher-forced loss (no label smoothing) and greedy BLEU / chrF."""
        net = seq2seq(model)
        total, items = 0.0, 0
        hyps: dict[int, str] = {}
        for batch in batches:
            out = self.loss(model, batch)
            total += float(out.loss) * out.num_items
            items += out.num_items
            limit = max_target_length(batch.src_lengths, self.data.max_length_ratio)
            for i, t in zip(batch.index.tolist(), net.greedy(batch.src, batch.src_lengths, limit),
                            strict=True):
                hyps[i] = self.tokenizers.decode(t.tokens)
        order = sorted(hyps)
        scores = corpus_scores([hyps[i] for i in order], [self.valid_refs[i] for i in order])
        return {"loss": total / max(items, 1), **scores, "count": len(order)}

    def configs(self) -> dict[str, Any]:
        return {"model": self.model_config.to_dict(), "data": asdict(self.data)}

    def files(self, folder: Path) -> None:
        self.tokenizers.save(folder)


class _Sized:
    """One epoch of a ParallelBatcher, with a len() (for schedules and progress bars)."""

    def __init__(self, batcher: ParallelBatcher, epoch: int) -> None:
        self.batcher, self.epoch = batcher, epoch

    def __len__(self) -> int:
        return len(self.batcher)

    def __iter__(self):
        return self.batcher.batches(self.epoch)


def _load_model(configs: dict[str, Any], folder: Path) -> nn.Module:
    return Seq2Seq(Seq2SeqConfig.from_dict(configs["model"]))


register_task("translate", _load_model)


# -- using a trained model ----------------------------------------------------------------------


class Output(NamedTuple):
    """One translated sentence: the text, its score and the attention weights
    (target tokens × source tokens) when the model has attention."""

    source: str
    text: str
    score: float
    weights: torch.Tensor | None
    ids: tuple[int, ...] = ()     # the generated target ids (eos excluded)


class Translator:
    """A trained model with its tokenizers: ``Translator.load(DIR).translate(sentences)``."""

    def __init__(self, model: Seq2Seq, tokenizers: ParallelTokenizers,
                 data: TranslationDataConfig) -> None:
        self.model, self.tokenizers, self.data = model.eval(), tokenizers, data

    @classmethod
    def load(cls, path: str | Path) -> Translator:
        checkpoint = load_checkpoint(path, task="translate")
        configs = checkpoint.config["configs"]
        data = TranslationDataConfig.from_dict(configs["data"])
        tokenizers = ParallelTokenizers.load(checkpoint.folder, data.tokenizer_config)
        return cls(checkpoint.model, tokenizers, data)

    @torch.no_grad()
    def translate(self, sentences: list[str], beam: int = 1, batch_size: int = 64,
                  n_best: int = 1, length_penalty: float | None = None,
                  max_length_ratio: float | None = None) -> list[list[Output]]:
        """The ``n_best`` translations of each sentence (greedy when ``beam`` is 1).

        ``length_penalty`` (beam score = log p / length ** alpha) and ``max_length_ratio``
        (at most ratio · source length + 5 tokens) default to the checkpoint's data config.
        """
        alpha = self.data.length_penalty if length_penalty is None else length_penalty
        ratio = self.data.max_length_ratio if max_length_ratio is None else max_length_ratio
        if not ratio > 0:
            raise ValueError(f"max_length_ratio must be > 0, got {ratio!r}")
        if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
            raise ValueError(f"beam must be an int >= 1, got {beam!r}")
        check_positive_int("batch_size", batch_size)
        if not 1 <= n_best <= beam:
            raise ValueError(f"n_best must be in [1, beam={beam}], got {n_best!r}")
        sentences = list(sentences)
        results: list[list[Output]] = [[Output(s, "", 0.0, None)] for s in sentences]
        ids = encode_sources(self.tokenizers, sentences, self.data.max_source_length)
        todo = [i for i, s in enumerate(ids) if s]  # an empty source translates to ""
        if not todo:
            return results
        t = self.tokenizers
        batcher = ParallelBatcher([ids[i] for i in todo], None, bos_id=t.bos_id, eos_id=t.eos_id,
                                  pad_id=t.pad_id, batch_size=batch_size)
        for batch in batcher.batches(0):
            limit = max_target_length(batch.src_lengths, ratio)
            if beam == 1:
                found = [[h] for h in self.model.greedy(batch.src, batch.src_lengths, limit)]
            else:
                found = self.model.beam_search(batch.src, batch.src_lengths, int(limit.max()),
                                               beam_size=beam, n_best=n_best,
                                               length_penalty=alpha)
            for position, hyps in zip(batch.index.tolist(), found, strict=True):
                i = todo[position]
                results[i] = [self._output(sentences[i], h) for h in hyps]
        return results

    def tokens(self, output: Output) -> tuple[list[str], list[str]]:
        """The source and target subword strings, as the attention weights index them."""
        t = self.tokenizers
        ids = encode_sources(t, [output.source], self.data.max_source_length)[0]
        return [t.src.id_to_token(i) for i in ids], [t.tgt.id_to_token(i) for i in output.ids]

    def plot_attention(self, output: Output, path: str | Path) -> Path:
        """A PNG heatmap of ``output.weights``: target tokens (rows) × source tokens."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if output.weights is None:
            raise ValueError("this model has no attention (architecture sutskever or cho); "
                             "there is no alignment to draw")
        src, tgt = self.tokens(output)
        weights = output.weights.float().numpy()
        fig = Figure(figsize=(1.5 + 0.4 * len(src), 1.5 + 0.35 * (len(tgt) + 1)))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(src)), src, rotation=90)
        ax.set_yticks(range(len(tgt)), tgt)
        ax.set_xlabel("source")
        ax.set_ylabel("translation")
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=100)
        return path

    def _output(self, source: str, hyp: Translation) -> Output:
        return Output(source, self.tokenizers.decode(hyp.tokens), hyp.score, hyp.weights,
                      tuple(hyp.tokens))

    def evaluate(self, data: ParallelTexts, beam: int = 1) -> dict[str, Any]:
        """BLEU and chrF of the translations of ``data.src`` against ``data.tgt``."""
        hyps = [o[0].text for o in self.translate(data.src, beam=beam)]
        return {**corpus_scores(hyps, data.tgt), "beam": beam, "count": len(hyps)}


# -- CLI ------------------------------------------------------------------------------------------


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train-src", required=True, help="training sources, one per line (.gz ok)")
    parser.add_argument("--train-tgt", required=True, help="training targets, line-aligned")
    parser.add_argument("--valid-src", help="validation sources (BLEU each epoch)")
    parser.add_argument("--valid-tgt", help="validation targets")
    parser.add_argument("--out", required=True, help="run folder to create")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="multi30k")
    parser.add_argument("--architecture", choices=ARCHITECTURES)
    parser.add_argument("--attention", choices=["additive", "dot", "general"])
    parser.add_argument("--input-feeding", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--cell", choices=sorted(CELLS))
    parser.add_argument("--embed-dim", type=int)
    parser.add_argument("--encoder-hidden", type=int)
    parser.add_argument("--encoder-layers", type=int)
    parser.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--decoder-hidden", type=int)
    parser.add_argument("--decoder-layers", type=int)
    parser.add_argument("--dropout", type=float)
    parser.add_argument("--tie-embeddings", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--tokenizer", choices=["bpe", "word"])
    parser.add_argument("--joint-vocab", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--vocab-size", type=int, help="per language (in all when joint)")
    parser.add_argument("--max-length", type=int, help="drop training pairs longer than this")
    parser.add_argument("--label-smoothing", type=float)
    parser.add_argument("--teacher-forcing", type=float, help="probability in [0, 1]")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--max-steps", type=int,
                        help="stop after this many optimizer steps (cosine decays over them)")
    parser.add_argument("--lr", type=float)
    parser.add_argument("--schedule", choices=["constant", "step", "cosine", "plateau"])
    parser.add_argument("--clip-norm", type=float)
    add_ema_argument(parser)
    parser.add_argument("--time-budget", type=float, metavar="MIN",
                        help="stop cleanly after MIN minutes, keeping the best model")
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, metavar="N", help="use only N training pairs")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _given(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def configs_from_args(args: argparse.Namespace) -> tuple[TranslationDataConfig, dict, TrainConfig]:
    preset = PRESETS[args.preset]
    data = replace(preset.data, **_given({
        "tokenizer": args.tokenizer, "joint_vocab": args.joint_vocab,
        "vocab_size": args.vocab_size, "max_length": args.max_length,
        "label_smoothing": args.label_smoothing, "teacher_forcing": args.teacher_forcing,
        "batch_size": args.batch_size}))
    model = dict(preset.model) | _given({
        "architecture": args.architecture, "attention": args.attention,
        "input_feeding": args.input_feeding, "cell": args.cell, "embed_dim": args.embed_dim,
        "encoder_hidden": args.encoder_hidden, "encoder_layers": args.encoder_layers,
        "bidirectional": args.bidirectional, "decoder_hidden": args.decoder_hidden,
        "decoder_layers": args.decoder_layers, "dropout": args.dropout,
        "tie_embeddings": args.tie_embeddings})
    if model["architecture"] in ("sutskever", "cho"):
        model.pop("attention", None)
    if model["architecture"] != "luong":
        model.pop("input_feeding", None)
    training = replace(preset.training, **_given({
        "epochs": args.epochs, "max_steps": args.max_steps, "lr": args.lr,
        "schedule": args.schedule,
        "clip_norm": args.clip_norm, "time_budget_min": args.time_budget, "ema_decay": args.ema,
        "precision": args.precision, "device": args.device, "seed": args.seed,
        "quiet": args.quiet or None, "batch_size": data.batch_size}))
    return data, model, training


def train(train_data: ParallelTexts, valid_data: ParallelTexts | None, out: str | Path,
          data: TranslationDataConfig, model: dict, training: TrainConfig, *,
          overwrite: bool = False, resume: bool = False, say=print):
    """Fit tokenizers and a Seq2Seq; returns (FitResult, Translator of the best model)."""
    tokenizers = ParallelTokenizers.fit(train_data, data.tokenizer_config)
    config = Seq2SeqConfig(src_vocab_size=tokenizers.src_vocab_size,
                           tgt_vocab_size=tokenizers.tgt_vocab_size, bos_id=tokenizers.bos_id,
                           eos_id=tokenizers.eos_id, pad_id=tokenizers.pad_id, **model)
    task = TranslateTask(train_data, valid_data, tokenizers, data, config, seed=training.seed)
    s = task.stats
    say(f"data: {s['kept']:,} of {s['pairs']:,} training pairs (max_length {data.max_length}), "
        f"{s['tgt_tokens']:,} target tokens; {len(task.valid_src):,} valid pairs; vocabulary "
        f"{tokenizers.src_vocab_size:,} source / {tokenizers.tgt_vocab_size:,} target")
    say(f"model: {config.architecture} ({config.attention_kind or 'no'} attention), "
        f"{config.cell}, {count_parameters(Seq2Seq(config)):,} parameters")
    result = run_training(task, training, out, overwrite=overwrite, resume=resume)
    return result, Translator.load(out)


def _read_pair_args(src: str | None, tgt: str | None, what: str) -> ParallelTexts | None:
    if (src is None) != (tgt is None):
        raise ValueError(f"give both --{what}-src and --{what}-tgt, or neither; got only "
                         f"{'--' + what + '-src' if src else '--' + what + '-tgt'}")
    return read_parallel(src, tgt) if src else None


def train_command(args: argparse.Namespace) -> int:
    data, model, training = configs_from_args(args)
    train_data = _read_pair_args(args.train_src, args.train_tgt, "train")
    valid_data = _read_pair_args(args.valid_src, args.valid_tgt, "valid")
    if args.limit is not None:
        check_positive_int("--limit", args.limit)
        train_data = train_data.subset(range(min(args.limit, len(train_data))))
    result, best = train(train_data, valid_data, args.out, data, model, training,
                         overwrite=args.overwrite, resume=args.resume)
    metrics = result.valid_metrics
    if valid_data is not None:
        print(f"saved to {args.out}; best validation BLEU (greedy) {result.best_metric:.2f}")
    else:
        print(f"saved to {args.out}; final training loss {metrics.get('loss', float('nan'))}")
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    if not getattr(args, "src", None) or not getattr(args, "ref", None):
        raise ValueError("evaluate of a translation model needs --src PATH and --ref PATH")
    translator = Translator.load(args.model)
    metrics = translator.evaluate(read_parallel(args.src, args.ref), beam=args.beam or 1)
    if args.json:
        print(json.dumps(metrics))
    else:
        print(f"BLEU {metrics['bleu']:.2f}   chrF {metrics['chrf']:.2f}   "
              f"(beam {metrics['beam']}, {metrics['count']:,} sentences)")
    return 0


def add_translate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="checkpoint or run folder")
    parser.add_argument("texts", nargs="*", help="sentences to translate")
    parser.add_argument("--input", help="file with one sentence per line (.gz ok)")
    parser.add_argument("--beam", type=int, default=5, help="beam size (1: greedy)")
    parser.add_argument("--n-best", type=int, default=1, help="translations per sentence")
    parser.add_argument("--length-penalty", type=float,
                        help="beam score = log p / length ** this (default: the checkpoint's, 1.0)")
    parser.add_argument("--max-length-ratio", type=float,
                        help="generate at most ratio x source length + 5 tokens (default 2.0)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    parser.add_argument("--attention-png", metavar="PATH",
                        help="draw the first sentence's attention (alignment heatmap) to PATH")


def translate_command(args: argparse.Namespace) -> int:
    sentences = list(args.texts)
    if args.input:
        sentences += read_lines(args.input, "--input")
    if not sentences:
        raise ValueError("give sentences to translate as arguments or --input FILE, got none")
    translator = Translator.load(args.model)
    results = translator.translate(sentences, beam=args.beam, batch_size=args.batch_size,
                                   n_best=args.n_best, length_penalty=args.length_penalty,
                                   max_length_ratio=args.max_length_ratio)
    if args.attention_png:
        path = translator.plot_attention(results[0][0], args.attention_png)
        print(f"attention of sentence 1 drawn to {path}", file=sys.stderr)
    for outputs in results:
        for o in outputs:
            if args.json:
                print(json.dumps({"source": o.source, "translation": o.text, "score": o.score}))
            else:
                print(o.text)
    sys.stdout.flush()
    return 0


def inspect_command(args: argparse.Namespace) -> int:
    """``recur inspect DIR --text ...``: each sentence's greedy translation; with --out, the
    attention alignment, the encoder's gates and the gradient flow through the encoder
    (a folder of PNGs, or one self-contained HTML report for a .html path)."""
    import contextlib

    from recur.diagnostics import gradient_flow, plot_gates, plot_gradient_flow, record_gates
    from recur.diagnostics.report import Report

    if not args.text:
        raise ValueError("give the text to inspect with --text, got none")
    translator = Translator.load(args.model)
    model, t = translator.model, translator.tokenizers
    report = (Report(args.out, title=f"recur inspect {args.model}", model=model)
              if args.out else None)
    with report or contextlib.nullcontext():
        for n, output in enumerate(o[0] for o in translator.translate(args.text, beam=1)):
            src_tokens, tgt_tokens = translator.tokens(output)
            text = (f"{output.source}\n  -> {output.text}\n  source tokens: "
                    f"{' '.join(src_tokens)}\n  translation tokens: {' '.join(tgt_tokens)}")
            print(text)
            if report is None:
                continue
            if not src_tokens:
                report.add(f"text {n}: {output.source!r}", text + "\n  (empty source: "
                           "nothing to inspect)")
                continue
            stem = f"text{n}"
            figures = []
            if output.weights is not None:
                figures.append(("attention alignment: translation tokens (rows) × source "
                                "tokens, greedy decoding",
                                translator.plot_attention(output, report.figure(f"{stem}-attention.png"))))
            else:
                text += "\n  (this model has no attention: no alignment to draw)"
            src = torch.tensor([encode_sources(t, [output.source], translator.data.max_source_length)[0]])
            lengths = torch.tensor([src.shape[1]])
            tgt_in = torch.tensor([[t.bos_id, *output.ids]])                    # (1, T)
            tgt_out = torch.tensor([*output.ids, t.eos_id])                     # (T,)
            inputs = (src, lengths, tgt_in)
            gates = plot_gates(record_gates(model, inputs, recurrent="encoder"),
                               report.figure(f"{stem}-encoder-gates.png"), tokens=src_tokens)
            figures.append(("gates and states of the encoder's last layer (forward direction) "
                            "over the source tokens", gates))
            # L = -log p(the model's own translation | source), teacher-forced
            jacobian = None if model.config.encoder_hidden > 256 else "spectral"
            flows = {name: gradient_flow(
                         model, inputs, recurrent="encoder", direction=d, jacobian=jacobian,
                         loss_fn=lambda out, y=tgt_out: nn.functional.cross_entropy(
                             out.logits[0], y, reduction="sum"))
                     for d, name in enumerate(("forward", "reverse")[: model.encoder.num_directions])}
            figures.append(("gradient flow through the encoder: ‖∂L/∂h_t‖ of the translation's "
                            "loss over the source steps", plot_gradient_flow(
                                flows, report.figure(f"{stem}-gradient-flow.png"),
                                title="encoder ‖∂L/∂h_t‖ (reverse: t from the source's end)")))
            report.add(f"text {n}: {output.source}", text, figures)
        if report is not None:
            for path in report.close():
                print(f"wrote {path}")
    return 0
