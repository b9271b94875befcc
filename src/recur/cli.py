"""The ``recur`` command: one entry point for training, evaluating, predicting and more.

    recur quickstart                      the main job: train and try the notes' IMDB model
    recur train sentiment --train PATH --out DIR [--preset seed|best] ...
    recur train tagger --train PATH --valid PATH --out DIR [--preset best] ...
    recur tag DIR --input FILE [--format conll|text] [--backend onnx]   named entities
    recur train lm --train PATH [--valid PATH] --level char|word|bpe --out DIR ...
    recur generate DIR --prompt TEXT --length N [--temperature --top-k --top-p --seed]
                   [--backend onnx [--onnx FILE]]
    recur complete DIR --prompt "the clouds are in the" [--k 5] [--words N]
    recur evaluate DIR --data PATH [--json]
    recur train translate --train-src PATH --train-tgt PATH --valid-src PATH --valid-tgt PATH --out DIR
    recur translate DIR "text" ... | --input FILE [--beam 5]
    recur evaluate DIR --src PATH --ref PATH [--beam 5] [--json]   (translation models)
    recur predict DIR "text" ... | --input FILE [--json]

    recur train forecast --series NAME | --csv FILE --column C --out DIR [--horizon H]
    recur forecast DIR [--csv FILE] [--plot out.png] [--json]
    recur evaluate DIR [--json]           a forecaster: test MASE, sMAPE, ... on its series
    recur train digits --mode row|pixel|cnn|mixed [--cell C] --out DIR   sequential images
    recur summary DIR                     Keras-style layer table of a saved model
    recur plot RUN_DIR                    PNG curves from metrics.jsonl
    recur serve DIR [NAME=DIR ...]        HTTP API + web page on 127.0.0.1:8000
    recur export DIR [--out FILE]         ONNX export (classifier, LM step, tagger emissions)
    recur data download imdb [--root DIR] fetch a public dataset (needs internet)

    recur lab adding|copy --cells ... --lengths ...   the long-dependency lab
    recur bench [SUITE ...] [--quick] [--write-docs]   benchmark suite (source checkout only)
    recur inspect DIR --text TEXT [--out FOLDER | --out report.html]   look inside a model

Run ``recur COMMAND --help`` for the options of each command. Verbs that later work adds
answer with the issue that tracks them (see PLANNED).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import recur

PLANNED: dict[str, str] = {}  # verb: what it will do and the issue that tracks it


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    from recur.benchsuite import add_arguments as add_bench_arguments
    from recur.serve.command import add_arguments as add_serve_arguments
    from recur.tasks import forecast, images, lab, sentiment, tagger, translate
    from recur.tasks import language_model as lm

    parser = argparse.ArgumentParser(
        prog="recur", description="Recurrent neural networks from their equations.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Docs: README.md and docs/ in the source tree.",
    )
    parser.add_argument("--version", action="version", version=f"recur {recur.__version__}")
    verbs = parser.add_subparsers(dest="command", metavar="COMMAND")

    quick = verbs.add_parser("quickstart", help="train the notes' IMDB sentiment model end to end")
    sentiment.add_quickstart_arguments(quick)
    quick.set_defaults(run=sentiment.quickstart)

    train = verbs.add_parser("train", help="train a model for a task")
    tasks = train.add_subparsers(dest="task", metavar="TASK", required=True)
    sent = tasks.add_parser("sentiment", help="text classification (many-to-one), e.g. IMDB")
    sentiment.add_train_arguments(sent)
    sent.set_defaults(run=sentiment.train_command)
    tag_train = tasks.add_parser("tagger", help="named-entity tagging (many-to-many), CoNLL")
    tagger.add_train_arguments(tag_train)
    tag_train.set_defaults(run=tagger.train_command)

    tag = verbs.add_parser("tag", help="named entities of a file with a saved tagger")
    tagger.add_tag_arguments(tag)
    add_backend_arguments(tag, "the emission network; Viterbi stays in torch",
                          "model.onnx next to the weights")
    tag.set_defaults(run=tagger.tag_command)
    trans = tasks.add_parser("translate", help="encoder-decoder translation, e.g. Multi30k de-en")
    translate.add_train_arguments(trans)
    trans.set_defaults(run=translate.train_command)

    fore = tasks.add_parser("forecast", help="time-series forecasting (bundled or CSV series)")
    forecast.add_train_arguments(fore)
    fore.set_defaults(run=forecast.train_command)
    dig = tasks.add_parser("digits", help="sequential images: scikit-learn digits by row, "
                           "by pixel, or CNN + RNN")
    images.add_train_arguments(dig)
    dig.set_defaults(run=images.train_command)

    lm_train = tasks.add_parser("lm", help="language model (next token), char/word/bpe level")
    lm.add_train_arguments(lm_train)
    lm_train.set_defaults(run=lm.train_command)

    evaluate = verbs.add_parser("evaluate", help="metrics of a saved model on labelled data")
    evaluate.add_argument("model", help="checkpoint folder")
    evaluate.add_argument("--data", help="labelled data file or folder (required for "
                          "classifiers and taggers; a text file for language models; a "
                          "forecaster re-reads its own series, or this CSV)")
    evaluate.add_argument("--src", help="translation: source sentences, one per line")
    evaluate.add_argument("--ref", help="translation: reference translations, line-aligned")
    evaluate.add_argument("--beam", type=int, help="translation: beam size (default 1: greedy)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    lm.add_cache_arguments(evaluate, "language model: ")
    evaluate.set_defaults(run=evaluate_command)

    predict = verbs.add_parser("predict", help="predictions of a saved model")
    predict.add_argument("model", help="checkpoint folder")
    predict.add_argument("texts", nargs="*", help="texts to classify")
    predict.add_argument("--input", help="file with one text per line")
    predict.add_argument("--json", action="store_true", help="print JSON lines")
    add_backend_arguments(predict, "classifier, tagger", "model.onnx next to the weights, "
                          "else (classifier) export to a temporary file first")
    predict.set_defaults(run=lambda a: dispatch(a, "predict"))

    tr = verbs.add_parser("translate", help="translate sentences with a saved translation model")
    translate.add_translate_arguments(tr)
    tr.set_defaults(run=translate.translate_command)
    fc = verbs.add_parser("forecast", help="forecast the future of a series with a saved model")
    forecast.add_forecast_arguments(fc)
    fc.set_defaults(run=forecast.forecast_command)
    generate = verbs.add_parser("generate", help="generate text with a language model "
                                "(streams as it goes)")
    lm.add_generate_arguments(generate)
    add_backend_arguments(generate, "the language model's step; --beam too",
                          "model.onnx next to the weights")
    generate.set_defaults(run=lm.generate_command)

    complete = verbs.add_parser("complete", help="autocomplete: the k likeliest next words")
    lm.add_complete_arguments(complete)
    complete.set_defaults(run=lm.complete_command)

    summ = verbs.add_parser("summary", help="layer table with output shapes and parameters")
    summ.add_argument("model", help="checkpoint folder")
    summ.set_defaults(run=summary_command)

    plot = verbs.add_parser("plot", help="PNG curves (loss, metrics, lr, grad norm) of a run")
    plot.add_argument("run_dir", help="a training output folder (holds metrics.jsonl)")
    plot.set_defaults(run=plot_command)

    serve = verbs.add_parser("serve", help="HTTP API and web page over saved models")
    add_serve_arguments(serve)
    serve.set_defaults(run=serve_command)

    export = verbs.add_parser("export", help="export a saved model (ONNX)")
    export.add_argument("model", help="checkpoint or run folder")
    export.add_argument("--format", choices=["onnx"], default="onnx")
    export.add_argument("--out", help="file to write (.onnx; default: model.onnx next to the "
                        "weights, where --backend onnx looks for it)")
    export.add_argument("--no-check", action="store_true",
                        help="skip the onnxruntime-vs-torch check after exporting")
    export.set_defaults(run=export_command)

    data = verbs.add_parser("data", help="datasets: download a public one")
    data_verbs = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    download = data_verbs.add_parser("download", help="download and check a public dataset")
    download.add_argument("name", help="dataset name, e.g. imdb")
    download.add_argument("--root", help="data folder (default: $RECUR_DATA or ~/.cache/recur)")
    download.set_defaults(run=download_command)

    lab_verb = verbs.add_parser("lab", help="long dependencies: adding / copy problems over lengths")
    lab.add_arguments(lab_verb)
    lab_verb.set_defaults(run=lab.lab_command)

    inspect = verbs.add_parser("inspect", help="why a model decided: token attributions "
                               "(classifiers), tag scores (taggers), attention (translators), "
                               "gates, gradient flow through time")
    inspect.add_argument("model", help="checkpoint folder")
    inspect.add_argument("--text", action="append", default=[], help="a text to inspect "
                         "(repeat for several)")
    inspect.add_argument("--out", help="a folder for the PNGs (attributions, gates, gradient "
                         "flow), or a file ending in .html: one self-contained report")
    inspect.add_argument("--steps", type=int, default=64, help="integrated-gradients steps "
                         "(classifiers)")
    inspect.set_defaults(run=lambda a: dispatch(a, "inspect"))

    bench = verbs.add_parser("bench", help="run the benchmark suite in bench/, print tables, "
                             "rewrite docs/benchmarks.md (source checkout only)")
    add_bench_arguments(bench)
    bench.set_defaults(run=bench_command)

    for verb, what in PLANNED.items():
        planned = verbs.add_parser(verb, help=f"(not yet) {what}", add_help=False)
        planned.add_argument("rest", nargs=argparse.REMAINDER)
        planned.set_defaults(run=lambda a, verb=verb, what=what: not_yet(verb, what))
    return parser


def add_backend_arguments(parser: argparse.ArgumentParser, what: str, default: str) -> None:
    """``--backend torch|onnx`` and ``--onnx FILE`` (read by ``recur.tasks.load_for_backend``)."""
    parser.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                        help=f"run the network with torch or with onnxruntime ({what})")
    parser.add_argument("--onnx", metavar="FILE", help="with --backend onnx: the file from "
                        f"`recur export` (default: {default})")


def not_yet(verb: str, what: str) -> int:
    print(f"recur {verb} is not implemented yet: {what}.", file=sys.stderr)
    return 2


def dispatch(args: argparse.Namespace, action: str) -> int:
    """Run ``action`` with the task module the checkpoint belongs to."""
    from recur.tasks import task_module_for

    module = task_module_for(args.model)
    command = getattr(module, f"{action}_command", None)
    if command is None:
        task = module.__name__.rsplit(".", 1)[-1]
        raise CLIError(f"recur {args.command} does not support {task} models yet")
    if action == "evaluate" and getattr(args, "cache_size", None) is not None \
            and not module.__name__.endswith(".language_model"):
        raise CLIError("--cache-size applies to language models only")
    if action == "evaluate" and args.data is None and getattr(args, "src", None) is None \
            and getattr(module, "EVALUATE_NEEDS_DATA", True):
        raise CLIError(f"evaluate needs --data PATH for this model ({module.__name__}; "
                       f"--src PATH --ref PATH for a translation model)")
    return command(args)


def evaluate_command(args: argparse.Namespace) -> int:
    return dispatch(args, "evaluate")


def summary_command(args: argparse.Namespace) -> int:
    from recur.summary import summary
    from recur.training import load

    print(summary(load(args.model)))
    return 0


def plot_command(args: argparse.Namespace) -> int:
    from recur.training.plot import plot_run

    for path in plot_run(args.run_dir):
        print(path)
    return 0


def serve_command(args: argparse.Namespace) -> int:
    from recur.serve.command import serve_command as run

    return run(args)


def export_command(args: argparse.Namespace) -> int:
    try:
        from recur.export import export_onnx
    except ImportError as err:
        raise CLIError(f"recur export needs the export extra ({err.name} is missing): "
                       "pip install 'recur[export]'") from None
    result = export_onnx(args.model, args.out, check=not args.no_check)
    checked = "" if args.no_check else f"; onnxruntime vs torch max abs diff {result.max_abs_diff:.2e}"
    print(f"wrote {result.path} (inputs {', '.join(result.inputs)} -> "
          f"{', '.join(result.outputs)}){checked}")
    return 0


def bench_command(args: argparse.Namespace) -> int:
    from recur.benchsuite import bench_command as run

    return run(args)


def download_command(args: argparse.Namespace) -> int:
    from recur.data.download import download_dataset

    path = download_dataset(args.name, args.root)
    print(f"{args.name} is ready in {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from recur.training.checkpoint import CheckpointError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if os.environ.get("RECUR_FLUSH_DENORMALS", "1") != "0":
        from recur.training.config import flush_denormals

        flush_denormals()  # before torch's thread pool starts, so every worker inherits it
    if os.environ.get("RECUR_REUSE_MEMORY", "1") != "0":
        from recur.training.config import reuse_freed_memory

        reuse_freed_memory()  # before the first large tensor
    try:
        return int(args.run(args) or 0)
    except (CLIError, ValueError, OSError, KeyError, CheckpointError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"recur {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
