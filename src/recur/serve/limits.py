"""The server's limits: named constants, gathered in one frozen ``Limits`` (CLI options).

Every limit is checked at the boundary and answered with a 4xx naming the field (or 413 /
503 / 504), never by silently clamping.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

MAX_TEXT_CHARS = 10_000         # characters in one input text
MAX_BATCH_SIZE = 64             # texts in one request, and in one micro-batch
MAX_NEW_TOKENS = 512            # tokens one generation request may ask for
MAX_BEAM = 8                    # beam size one translation request may ask for
MAX_BODY_BYTES = 1_000_000      # bytes of one request body
REQUEST_TIMEOUT_S = 30.0        # seconds from admission to the answer (504 after)
MAX_PENDING = 64                # requests admitted at once (queued + running); 503 beyond
BATCH_WAIT_MS = 0.0             # extra wait for company after the first request (0: take those waiting)
RETRY_AFTER_S = 1               # the Retry-After header of a 503


@dataclass(frozen=True)
class Limits:
    """The limits one server runs with (defaults: the constants above)."""

    max_text_chars: int = MAX_TEXT_CHARS
    max_batch_size: int = MAX_BATCH_SIZE
    max_new_tokens: int = MAX_NEW_TOKENS
    max_beam: int = MAX_BEAM
    max_body_bytes: int = MAX_BODY_BYTES
    request_timeout_s: float = REQUEST_TIMEOUT_S
    max_pending: int = MAX_PENDING
    batch_wait_ms: float = BATCH_WAIT_MS
    retry_after_s: int = RETRY_AFTER_S

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            integral = f.type in ("int", int)
            ok = isinstance(value, int | float) and not isinstance(value, bool) and (
                isinstance(value, int) or not integral)
            minimum = 0 if f.name == "batch_wait_ms" else 1e-9
            if not ok or value < minimum:
                kind = "a positive int" if integral else "a positive number"
                if f.name == "batch_wait_ms":
                    kind = "a number >= 0"
                raise ValueError(f"{f.name} must be {kind}, got {value!r}")
