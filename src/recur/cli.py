"""The ``recur`` command: one entry point for training, evaluating, predicting and more.

    recur quickstart                      the main job: train and try the notes' IMDB model
    recur train sentiment --train PATH --out DIR [--preset seed|best] ...
    recur train lm --train PATH [--valid PATH] --level char|word|bpe --out DIR ...
    recur generate DIR --prompt TEXT --length N [--temperature --top-k --top-p --seed]
    recur complete DIR --prompt "the clouds are in the" [--k 5] [--words N]
    recur evaluate DIR --data PATH [--json]
    recur predict DIR "text" ... | --input FILE [--json]
    recur summary DIR                     Keras-style layer table of a saved model
    recur plot RUN_DIR                    PNG curves from metrics.jsonl
    recur data download imdb [--root DIR] fetch a public dataset (needs internet)

    recur lab adding|copy --cells ... --lengths ...   the long-dependency lab

Run ``recur COMMAND --help`` for the options of each command. Verbs that later work adds
(tag, translate, forecast, inspect, serve, export, bench) answer with the issue
that tracks them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import recur

PLANNED = {
    "tag": "named-entity tagging (issue #6)",
    "translate": "encoder-decoder translation (issue #7)",
    "forecast": "time-series forecasting (issue #8)",
    "inspect": "gradient flow and gate inspection (issue #9)",
    "serve": "the HTTP API and web page (issue #10)",
    "export": "ONNX export (issue #10)",
    "bench": "the benchmark suite (issue #11; for now run the scripts in bench/)",
}


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    from recur.tasks import lab, sentiment
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
    lm_train = tasks.add_parser("lm", help="language model (next token), char/word/bpe level")
    lm.add_train_arguments(lm_train)
    lm_train.set_defaults(run=lm.train_command)

    evaluate = verbs.add_parser("evaluate", help="metrics of a saved model on labelled data")
    evaluate.add_argument("model", help="checkpoint folder")
    evaluate.add_argument("--data", required=True, help="labelled data file or folder (a text file "
                          "for language models)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(run=lambda a: dispatch(a, "evaluate"))

    predict = verbs.add_parser("predict", help="predictions of a saved model")
    predict.add_argument("model", help="checkpoint folder")
    predict.add_argument("texts", nargs="*", help="texts to classify")
    predict.add_argument("--input", help="file with one text per line")
    predict.add_argument("--json", action="store_true", help="print JSON lines")
    predict.set_defaults(run=lambda a: dispatch(a, "predict"))

    generate = verbs.add_parser("generate", help="generate text with a language model "
                                "(streams as it goes)")
    lm.add_generate_arguments(generate)
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

    data = verbs.add_parser("data", help="datasets: download a public one")
    data_verbs = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    download = data_verbs.add_parser("download", help="download and check a public dataset")
    download.add_argument("name", help="dataset name, e.g. imdb")
    download.add_argument("--root", help="data folder (default: $RECUR_DATA or ~/.cache/recur)")
    download.set_defaults(run=download_command)

    lab_verb = verbs.add_parser("lab", help="long dependencies: adding / copy problems over lengths")
    lab.add_arguments(lab_verb)
    lab_verb.set_defaults(run=lab.lab_command)

    for verb, what in PLANNED.items():
        planned = verbs.add_parser(verb, help=f"(not yet) {what}", add_help=False)
        planned.add_argument("rest", nargs=argparse.REMAINDER)
        planned.set_defaults(run=lambda a, verb=verb, what=what: not_yet(verb, what))
    return parser


def not_yet(verb: str, what: str) -> int:
    print(f"recur {verb} is not implemented yet: {what}.", file=sys.stderr)
    return 2


def dispatch(args: argparse.Namespace, action: str) -> int:
    """Run ``action`` with the task module the checkpoint belongs to."""
    from recur.tasks import task_module_for

    module = task_module_for(args.model)
    return getattr(module, f"{action}_command")(args)


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
