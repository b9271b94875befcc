"""Batches of token sequences for many-to-one models: truncation, padding, length buckets.

    >>> from recur.data import BucketBatcher, encode_texts, restore_order
    >>> seqs = encode_texts(tokenizer, train.texts, max_length=400, policy="head")
    >>> batches = BucketBatcher(seqs, train.labels, batch_size=32, shuffle=True, seed=0)
    >>> for batch in batches:                 # one epoch; the next pass is a new shuffle
    ...     logits = model(batch.tokens, batch.lengths)           # (B, C)
    >>> # prediction: collect outputs per batch, then put them back in input order
    >>> probs = restore_order([model(b.tokens, b.lengths) for b in test_batches],
    ...                       [b.index for b in test_batches])

Length bucketing. Padding a short review to the length of a long one wastes compute, so
the batcher sorts examples by length inside chunks of ``bucket_batches`` batches (50 by
default) of the (shuffled) order, cuts each chunk into batches, and shuffles the order of
the batches::

    lengths in shuffled order  | 7 2 9 4 1 8 3 6 | 5 1 ...    (a chunk: bucket_batches * B)
    sorted inside each chunk   | 9 8 7 6 4 3 2 1 | ...        (longest first, stable)
    cut into batches (B = 2)   | [9 8] [7 6] [4 3] [2 1] | ... -> batch order shuffled

Within a batch the examples are sorted longest first (what
``pack_padded_sequence(enforce_sorted=True)`` wants); ``Batch.index`` holds their
positions in the input, so :func:`restore_order` can undo any of this. Everything
depends only on ``seed`` and the epoch number: the same seed gives the same batches.

Padding is on the right with ``pad_id``; ``Batch.lengths`` holds the true lengths.
**Every length is at least 1**: an empty sequence (an empty text) becomes one
``pad_id`` token with length 1. The model then runs one step on the padding embedding
(zeros when the embedding uses ``padding_idx``), so every empty text gets the same,
input-independent prediction instead of crashing ``pack_padded_sequence``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

TRUNCATION_POLICIES = ("head", "tail", "head+tail")


def encode_and_truncate(
    ids: Sequence[int], max_length: int, policy: str = "head", head_fraction: float = 0.25
) -> list[int]:
    """Cut a token-id sequence to at most ``max_length`` ids.

    Args:
        ids: the encoded text.
        max_length: the most ids to keep (>= 1).
        policy: ``"head"`` keeps the first ids, ``"tail"`` the last, ``"head+tail"`` the
            first ``round(max_length * head_fraction)`` and the rest from the end (the
            best of the three for long reviews in Sun et al., 2019, "How to Fine-Tune
            BERT for Text Classification?", §5.3: head 128 + tail 382 of 510).
        head_fraction: the head's share of ``max_length`` for ``"head+tail"``.

    Returns:
        A new list; sequences already short enough come back unchanged (copied).
    """
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"max_length must be a positive int, got {max_length!r}")
    if policy not in TRUNCATION_POLICIES:
        raise ValueError(f"policy must be one of {TRUNCATION_POLICIES}, got {policy!r}")
    if not 0.0 <= head_fraction <= 1.0:
        raise ValueError(f"head_fraction must be in [0, 1], got {head_fraction!r}")
    ids = list(ids)
    if len(ids) <= max_length:
        return ids
    if policy == "head":
        return ids[:max_length]
    if policy == "tail":
        return ids[len(ids) - max_length :]
    n_head = round(max_length * head_fraction)
    n_tail = max_length - n_head
    return ids[:n_head] + ids[len(ids) - n_tail :]


def encode_texts(
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int | None = None,
    policy: str = "head",
) -> list[list[int]]:
    """``tokenizer.encode_batch(texts)``, each truncated by :func:`encode_and_truncate`
    when ``max_length`` is given. Works with any :class:`recur.data.vocab.Tokenizer`."""
    encoded = tokenizer.encode_batch(list(texts))
    if max_length is None:
        return encoded
    return [encode_and_truncate(ids, max_length, policy) for ids in encoded]


@dataclass(frozen=True)
class Batch:
    """One padded mini-batch.

    Attributes:
        tokens: (B, T) int64 token ids, right-padded with ``pad_id``; T = longest in batch.
        lengths: (B,) int64 true lengths, each >= 1, sorted descending.
        labels: (B,) int64 class ids (float32 when the labels were floats), or ``None``
            when the batcher was given no labels (prediction).
        index: (B,) int64 positions of these examples in the batcher's input.
    """

    tokens: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor | None
    index: torch.Tensor

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """The batch with ``tokens`` and ``labels`` on ``device``; ``lengths`` and
        ``index`` stay on the CPU (``pack_padded_sequence`` wants CPU lengths)."""
        labels = self.labels
        if labels is not None:
            labels = labels.to(device, non_blocking=non_blocking)
        return Batch(
            tokens=self.tokens.to(device, non_blocking=non_blocking),
            lengths=self.lengths,
            labels=labels,
            index=self.index,
        )


def _as_id_array(sequence: Any, position: int) -> np.ndarray:
    array = np.asarray(sequence)
    if array.ndim != 1:
        raise ValueError(
            f"sequence {position} must be a 1-D list of token ids, got shape {array.shape}"
        )
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind not in "iu":
        raise ValueError(f"sequence {position} must hold int token ids, got dtype {array.dtype}")
    if array.min() < 0:
        raise ValueError(f"sequence {position} holds a negative token id {array.min()}")
    return array.astype(np.int64, copy=False)


def _as_label_tensor(labels: Sequence[Any], n: int) -> torch.Tensor:
    array = np.asarray(labels)
    if array.shape != (n,):
        raise ValueError(f"labels must have one value per sequence ({n}), got shape {array.shape}")
    if array.dtype.kind in "iu":
        return torch.from_numpy(array.astype(np.int64))
    if array.dtype.kind == "f":
        return torch.from_numpy(array.astype(np.float32))
    raise ValueError(f"labels must be ints (class ids) or floats, got dtype {array.dtype}")


class BucketBatcher:
    """Re-iterable batches over ``sequences`` (and ``labels``); each pass is one epoch.

    Args:
        sequences: N token-id sequences (lists, arrays or 1-D tensors of ints >= 0).
        labels: N class ids or floats, or ``None`` (then ``Batch.labels`` is ``None``).
        batch_size: examples per batch (the last batch may be smaller).
        shuffle: shuffle examples and batch order, differently each epoch.
        seed: with the epoch number, fixes every random choice.
        bucket: sort by length inside chunks of ``bucket_batches`` batches; with
            ``bucket=False`` batches are consecutive runs of the (shuffled) order.
        pad_id: the padding id of the tokenizer (0 for recur's tokenizers).
        drop_last: drop a final batch smaller than ``batch_size``.
        bucket_batches: chunk size of the bucketing, in batches.

    Epoch ``e`` is drawn from ``np.random.default_rng([seed, e])``. Iterating uses the
    current epoch and then advances it, so consecutive passes differ;
    :meth:`set_epoch` replays or resumes a given epoch.
    """

    def __init__(
        self,
        sequences: Sequence[Any],
        labels: Sequence[Any] | None = None,
        batch_size: int = 32,
        *,
        shuffle: bool = False,
        seed: int = 0,
        bucket: bool = True,
        pad_id: int = 0,
        drop_last: bool = False,
        bucket_batches: int = 50,
    ) -> None:
        for name, value in (("batch_size", batch_size), ("bucket_batches", bucket_batches)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if isinstance(pad_id, bool) or not isinstance(pad_id, int) or pad_id < 0:
            raise ValueError(f"pad_id must be an int >= 0, got {pad_id!r}")
        if len(sequences) == 0:
            raise ValueError("sequences is empty; nothing to batch")
        self.sequences = [_as_id_array(s, i) for i, s in enumerate(sequences)]
        self.labels = None if labels is None else _as_label_tensor(labels, len(self.sequences))
        # An empty sequence is fed as one pad token, so its length is 1 (module docstring).
        self.lengths = np.array([max(len(s), 1) for s in self.sequences], dtype=np.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.bucket = bucket
        self.pad_id = pad_id
        self.drop_last = drop_last
        self.bucket_batches = bucket_batches
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.sequences)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass produce epoch ``epoch`` (for resuming a run)."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be an int >= 0, got {epoch!r}")
        self.epoch = epoch

    def plan(self, epoch: int) -> list[np.ndarray]:
        """The input positions of every batch of epoch ``epoch``, in yield order."""
        n = len(self.sequences)
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        if self.bucket:
            chunk = self.batch_size * self.bucket_batches
            order = np.concatenate(
                [
                    part[np.argsort(-self.lengths[part], kind="stable")]
                    for part in (order[i : i + chunk] for i in range(0, n, chunk))
                ]
            )
        batches = [order[i : i + self.batch_size] for i in range(0, n, self.batch_size)]
        if self.drop_last and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        # Longest first inside each batch (a no-op after bucketing).
        return [b[np.argsort(-self.lengths[b], kind="stable")] for b in batches]

    def collate(self, positions: np.ndarray) -> Batch:
        """Pad the sequences at ``positions`` into one :class:`Batch`."""
        lengths = self.lengths[positions]
        tokens = np.full((len(positions), int(lengths.max())), self.pad_id, dtype=np.int64)
        for row, i in enumerate(positions):
            sequence = self.sequences[i]
            tokens[row, : len(sequence)] = sequence
        index = torch.from_numpy(np.asarray(positions, dtype=np.int64))
        return Batch(
            tokens=torch.from_numpy(tokens),  # (B, T)
            lengths=torch.from_numpy(lengths.copy()),  # (B,)
            labels=None if self.labels is None else self.labels[index],  # (B,)
            index=index,  # (B,)
        )

    def __iter__(self) -> Iterator[Batch]:
        plan = self.plan(self.epoch)
        self.epoch += 1
        for positions in plan:
            yield self.collate(positions)


def make_batches(
    sequences: Sequence[Any],
    labels: Sequence[Any] | None = None,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    bucket: bool = True,
    *,
    pad_id: int = 0,
    drop_last: bool = False,
    bucket_batches: int = 50,
) -> Iterator[Batch]:
    """One epoch of :class:`BucketBatcher` batches (epoch 0 for ``seed``)."""
    return iter(
        BucketBatcher(
            sequences,
            labels,
            batch_size,
            shuffle=shuffle,
            seed=seed,
            bucket=bucket,
            pad_id=pad_id,
            drop_last=drop_last,
            bucket_batches=bucket_batches,
        )
    )


def restore_order(
    values: torch.Tensor | Sequence[Any], index: torch.Tensor | Sequence[Any]
) -> torch.Tensor | list[Any]:
    """Put per-example outputs back in input order.

    Args:
        values: outputs in batch order: one tensor (N, ...), a list of per-batch tensors
            (concatenated along dim 0), or a list of N Python values.
        index: the matching ``Batch.index`` values: one (N,) tensor or a list of them.

    Returns:
        ``out`` with ``out[index[k]] = values[k]``: a tensor for tensor input, else a list.
        ``index`` must be a permutation of ``0..N-1`` (every example exactly once).
    """
    if not isinstance(index, torch.Tensor):
        parts = [torch.as_tensor(i).reshape(-1) for i in index]
        index = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)
    index = index.reshape(-1).long().cpu()
    if (
        isinstance(values, Sequence)
        and len(values) > 0
        and all(isinstance(v, torch.Tensor) and v.dim() >= 1 for v in values)
    ):
        values = torch.cat(list(values))
    n = len(index)
    if len(values) != n:
        raise ValueError(f"values and index must have the same length, got {len(values)} and {n}")
    if n and (index.min() < 0 or index.max() >= n or torch.bincount(index, minlength=n).max() != 1):
        raise ValueError(f"index must be a permutation of 0..{n - 1} (each example exactly once)")
    if isinstance(values, torch.Tensor):
        restored = torch.empty_like(values)
        restored[index.to(values.device)] = values
        return restored
    out: list[Any] = [None] * n
    for position, value in zip(index.tolist(), values, strict=True):
        out[position] = value
    return out
