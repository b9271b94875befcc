"""Entity spans from tag sequences, tag-scheme conversion, and span-level P/R/F1.

A span is ``(type, start, end)`` with ``end`` exclusive: ``["B-PER", "I-PER", "O"]`` holds
``("PER", 0, 2)``. ``spans(tags)`` reads IOB1, IOB2 and BIOES alike with the chunk rules
of CoNLL's ``conlleval`` script (also seqeval's default mode): a chunk starts at B or S,
at I or E after O / E / S, or wherever the type changes; it ends before B, S or O, after
E or S, or where the type changes. So an ill-formed prediction such as ``O I-PER`` still
counts as a PER entity, exactly as the official scorer counts it.

``span_scores`` compares predicted and true spans sentence by sentence: a prediction is
correct only if type, start and end all match. Precision, recall and F1 come per type
and micro-averaged overall (the number NER papers report), 0 where undefined; tested
equal to seqeval's ``classification_report`` on generated predictions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

from recur.crf import SCHEMES, split_tag


class Span(NamedTuple):
    type: str
    start: int
    end: int  # exclusive


def _parts(tag: str) -> tuple[str, str]:
    try:
        return split_tag(tag)
    except ValueError:
        return "O", ""  # conlleval reads an unknown tag as outside


def spans(tags: Sequence[str]) -> list[Span]:
    """The entity spans in one sentence's tags (any of IOB1, IOB2, BIOES; conlleval rules)."""
    found: list[Span] = []
    prev, prev_type, begin = "O", "", None
    for t, tag in enumerate([*tags, "O"]):
        prefix, kind = _parts(tag)
        ends = (prev in ("E", "S")
                or (prev in ("B", "I") and prefix in ("B", "S", "O"))
                or (prev != "O" and prev_type != kind))
        starts = (prefix in ("B", "S")
                  or (prev in ("E", "S", "O") and prefix in ("I", "E"))
                  or (prefix != "O" and prev_type != kind))
        if ends and begin is not None:
            found.append(Span(prev_type, begin, t))
            begin = None
        if starts:
            begin = t
        prev, prev_type = prefix, kind
    return found


def tags_from_spans(found: Sequence[Span], length: int, scheme: str) -> list[str]:
    """Tags of a sentence of ``length`` tokens holding ``found`` (non-overlapping) spans."""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    tags = ["O"] * length
    previous_end, previous_type = -1, None
    for kind, start, end in sorted(found, key=lambda s: s.start):
        for t in range(start, end):
            tags[t] = f"I-{kind}"
        if scheme == "iob2":
            tags[start] = f"B-{kind}"
        elif scheme == "iob1":
            if previous_end == start and previous_type == kind:
                tags[start] = f"B-{kind}"  # IOB1 marks only a boundary between same-type spans
        elif end - start == 1:
            tags[start] = f"S-{kind}"
        else:
            tags[start], tags[end - 1] = f"B-{kind}", f"E-{kind}"
        previous_end, previous_type = end, kind
    return tags


def convert_tags(tags: Sequence[str], scheme: str) -> list[str]:
    """One sentence's tags rewritten in ``scheme`` (``iob1``, ``iob2`` or ``bioes``)."""
    return tags_from_spans(spans(tags), len(tags), scheme)


class TypeScores(NamedTuple):
    precision: float
    recall: float
    f1: float
    support: int     # true spans of this type
    predicted: int   # predicted spans of this type
    correct: int


class SpanScores(NamedTuple):
    """Span-level scores: ``overall`` (micro average) and ``by_type``, sorted by type."""

    overall: TypeScores
    by_type: dict[str, TypeScores]

    def as_dict(self) -> dict[str, float | int]:
        """Flat metrics: precision, recall, f1, support, then ``f1_PER``, ... per type."""
        out: dict[str, float | int] = dict(self.overall._asdict())
        for kind, s in self.by_type.items():
            for name in ("precision", "recall", "f1", "support"):
                out[f"{name}_{kind}"] = getattr(s, name)
        return out


def _scores(correct: int, predicted: int, support: int) -> TypeScores:
    p = correct / predicted if predicted else 0.0
    r = correct / support if support else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return TypeScores(p, r, f, support, predicted, correct)


def span_scores(true: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> SpanScores:
    """Per-type and overall span P/R/F1 of ``pred`` against ``true`` (lists of sentences)."""
    if len(true) != len(pred):
        raise ValueError(f"true and pred must hold the same number of sentences, got "
                         f"{len(true)} and {len(pred)}")
    gold, guess, hit = Counter(), Counter(), Counter()
    for i, (t, p) in enumerate(zip(true, pred, strict=True)):
        if len(t) != len(p):
            raise ValueError(f"sentence {i}: {len(t)} true tags but {len(p)} predicted")
        ts, ps = set(spans(t)), set(spans(p))
        gold.update(s.type for s in ts)
        guess.update(s.type for s in ps)
        hit.update(s.type for s in ts & ps)
    by_type = {k: _scores(hit[k], guess[k], gold[k]) for k in sorted(gold | guess)}
    overall = _scores(sum(hit.values()), sum(guess.values()), sum(gold.values()))
    return SpanScores(overall, by_type)
