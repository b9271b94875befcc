"""``recur serve``: parse the options, load the models, run uvicorn on loopback by default."""

from __future__ import annotations

import argparse
import ipaddress
import sys
from dataclasses import fields

from recur.serve.limits import Limits

_LIMIT_HELP = {
    "max_text_chars": "characters in one input text",
    "max_batch_size": "texts in one request and in one micro-batch",
    "max_new_tokens": "tokens one generation request may ask for",
    "max_beam": "beam size one translation request may ask for",
    "max_body_bytes": "bytes of one request body (413 beyond)",
    "request_timeout_s": "seconds per request (504 beyond)",
    "max_pending": "requests in progress at once (503 + Retry-After beyond)",
    "batch_wait_ms": "how long a micro-batch waits for more requests (0: take only those waiting)",
    "retry_after_s": "the Retry-After header of a 503",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", metavar="DIR",
                        help="checkpoint or run folders to serve, as DIR (named after the "
                             "folder) or NAME=DIR")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    defaults = Limits()
    for f in fields(Limits):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=float if f.type == "float" else int,
                            default=getattr(defaults, f.name),
                            help=f"{_LIMIT_HELP[f.name]} (default %(default)s)")


def serve_command(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from recur.serve.app import create_app, load_models
    except ImportError as err:
        raise ValueError(f"recur serve needs the serve extra ({err.name} is missing): "
                         "pip install 'recur[serve]'") from None
    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be in 1..65535, got {args.port}")
    limits = Limits(**{f.name: getattr(args, f.name) for f in fields(Limits)})
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    if not loopback:
        print(f"recur serve: warning: binding {args.host} exposes the models beyond this "
              "machine; there is no authentication", file=sys.stderr)
    models = load_models(args.models, limits)
    for served in models.values():
        print(f"serving {served.name} ({served.task}) from {served.folder}", file=sys.stderr)
    uvicorn.run(create_app(models, limits), host=args.host, port=args.port, log_level="info")
    return 0
