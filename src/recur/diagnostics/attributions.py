"""Token attributions for sequence classifiers: which words moved the decision.

Two standard methods, both over one sequence at a time:

* **Integrated gradients** (Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep
  Networks", ICML): for the input embeddings e and a baseline e' (zeros, or the padding
  token's embedding),

      IG_t = Σ_d (e_td − e'_td) · ∫₀¹ ∂F(e' + α(e − e'))/∂e_td dα

  with the integral by the trapezoid rule over ``steps`` points (one batched forward and
  backward). Completeness: Σ_t IG_t ≈ F(e) − F(e'), reported as ``delta`` so the
  approximation can be checked.
* **Occlusion** (Zeiler & Fergus 2014): attr_t = F(x) − F(x with token t replaced by the
  replacement token), all T variants in one batch.

F is the model's score for the target class: the logit for a binary classifier (negated
for class 0), the class logit for a multi-class one. Positive attributions push towards
the target class.

    attr = integrated_gradients(classifier, tokens)            # tokens (T,) long
    attr.scores                                                # (T,) per token
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

BASELINES = ("zeros", "pad")


@dataclass(frozen=True)
class Attribution:
    """Per-token attributions of one sequence.

    Attributes:
        scores: (T,) float64, positive = evidence for ``target``.
        target: the class the score F is for.
        score: F(x), the model's score of the input for ``target``.
        baseline_score: F of the baseline (IG) — the score with no evidence.
        delta: Σ scores − (score − baseline_score): the integration error (IG; 0 for
            occlusion, where it has no meaning).
        method: ``"integrated_gradients"`` or ``"occlusion"``.
    """

    scores: Tensor
    target: int
    score: float
    baseline_score: float
    delta: float
    method: str


def integrated_gradients(
    model: nn.Module,
    tokens: Tensor,
    *,
    target: int | None = None,
    steps: int = 64,
    baseline: str = "zeros",
    embedding: nn.Embedding | None = None,
) -> Attribution:
    """Integrated gradients over the input embeddings of one token sequence.

    Args:
        model: a classifier whose forward is ``model(tokens (B, T), lengths (B,))`` and
            returns logits (B,) (binary) or (B, C); e.g. ``SequenceClassifier``.
        tokens: (T,) token ids of one sequence, without padding.
        target: the class to explain; default the predicted one.
        steps: points of the trapezoid rule (≥ 2); more is more exact (check ``delta``).
        baseline: ``"zeros"`` (the zero embedding) or ``"pad"`` (every token replaced by
            the padding token's embedding).
        embedding: the nn.Embedding to integrate over; default the model's only one.

    Returns:
        ``Attribution``.
    """
    tokens = _check_tokens(tokens)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an int >= 2, got {steps!r}")
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, got {baseline!r}")
    embedding = embedding or _find_embedding(model)
    was_training = model.training
    model.eval()
    try:
        score, target = _score(model, tokens.unsqueeze(0), target)
        with torch.no_grad():
            e = embedding(tokens).detach()                                     # (T, E)
            if baseline == "pad":
                if embedding.padding_idx is None:
                    raise ValueError("baseline 'pad' needs an embedding with a padding_idx")
                e0 = embedding.weight[embedding.padding_idx].expand_as(e).clone()
            else:
                e0 = torch.zeros_like(e)
        alphas = torch.linspace(0, 1, steps, dtype=e.dtype, device=e.device)   # (S,)
        path = (e0 + alphas.view(-1, 1, 1) * (e - e0)).requires_grad_(True)   # (S, T, E)

        def replace(module: nn.Module, args: tuple, output: Tensor) -> Tensor:
            return path

        handle = embedding.register_forward_hook(replace)
        try:
            with torch.enable_grad():
                logits = model(tokens.expand(steps, -1), _lengths(steps, tokens))
                scores = _target_scores(logits, target)                       # (S,)
                (grads,) = torch.autograd.grad(scores.sum(), path)
        finally:
            handle.remove()
        weights = torch.full((steps,), 1.0 / (steps - 1), dtype=torch.float64)
        weights[0] = weights[-1] = 0.5 / (steps - 1)                          # trapezoid rule
        mean_grad = (weights.view(-1, 1, 1) * grads.double().cpu()).sum(dim=0)  # (T, E)
        attributions = ((e - e0).double().cpu() * mean_grad).sum(dim=-1)      # (T,)
        base = float(scores[0].detach())
        end = float(scores[-1].detach())
    finally:
        model.train(was_training)
    return Attribution(scores=attributions, target=target, score=score, baseline_score=base,
                       delta=float(attributions.sum()) - (end - base),
                       method="integrated_gradients")


def occlusion(
    model: nn.Module, tokens: Tensor, *, replacement: int, target: int | None = None
) -> Attribution:
    """Occlusion: how much the target score drops when each token is replaced.

    Args:
        model: as ``integrated_gradients``.
        tokens: (T,) token ids of one sequence.
        replacement: the id put in place of each token in turn (the padding or unknown
            token's id).
        target: the class to explain; default the predicted one.
    """
    tokens = _check_tokens(tokens)
    if isinstance(replacement, bool) or not isinstance(replacement, int) or replacement < 0:
        raise ValueError(f"replacement must be a token id (int >= 0), got {replacement!r}")
    was_training = model.training
    model.eval()
    try:
        score, target = _score(model, tokens.unsqueeze(0), target)
        T = tokens.shape[0]
        occluded = tokens.expand(T, -1).clone()                               # (T, T)
        occluded[torch.arange(T), torch.arange(T)] = replacement
        with torch.no_grad():
            scores = _target_scores(model(occluded, _lengths(T, tokens)), target)
    finally:
        model.train(was_training)
    return Attribution(scores=(score - scores.double().cpu()), target=target, score=score,
                       baseline_score=float("nan"), delta=0.0, method="occlusion")


def _check_tokens(tokens: Tensor) -> Tensor:
    if not isinstance(tokens, Tensor) or tokens.dim() != 1 or tokens.dtype != torch.long \
            or tokens.numel() == 0:
        got = (f"{tuple(tokens.shape)} {tokens.dtype}" if isinstance(tokens, Tensor)
               else type(tokens).__name__)
        raise ValueError(f"tokens must be a non-empty 1-D long tensor of one sequence, got {got}")
    return tokens


def _lengths(batch: int, tokens: Tensor) -> Tensor:
    return torch.full((batch,), tokens.shape[0], dtype=torch.long, device=tokens.device)


def _target_scores(logits: Tensor, target: int) -> Tensor:
    """F for every row: the binary logit (negated for class 0) or the class logit."""
    if logits.dim() == 1:
        return logits if target == 1 else -logits
    return logits[:, target]


def _score(model: nn.Module, tokens: Tensor, target: int | None) -> tuple[float, int]:
    with torch.no_grad():
        logits = model(tokens, _lengths(1, tokens[0]))
    classes = 2 if logits.dim() == 1 else logits.shape[-1]
    if target is None:
        target = int(logits[0] > 0) if logits.dim() == 1 else int(logits[0].argmax())
    if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < classes:
        raise ValueError(f"target must be a class index in [0, {classes - 1}], got {target!r}")
    return float(_target_scores(logits, target)[0]), target


def _find_embedding(model: nn.Module) -> nn.Embedding:
    found = [m for m in model.modules() if isinstance(m, nn.Embedding)]
    if len(found) != 1:
        raise ValueError(f"model must have exactly one nn.Embedding (or pass embedding=), "
                         f"found {len(found)}")
    return found[0]


def plot_attributions(
    words: Sequence[str],
    attributions: Sequence[Attribution],
    path: str | os.PathLike,
    title: str | None = None,
) -> str:
    """PNG: one row per method, each word coloured by its attribution (red = for the
    target class, blue = against), scaled per row."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not attributions:
        raise ValueError("attributions must hold at least one Attribution, got none")
    T = len(words)
    for a in attributions:
        if a.scores.shape[0] != T:
            raise ValueError(f"each attribution must have one score per word ({T}), got "
                             f"{a.scores.shape[0]} ({a.method})")
    fig = Figure(figsize=(max(6.0, 0.45 * T + 2), 0.9 * len(attributions) + 1.2),
                 layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(attributions), 1, squeeze=False)[:, 0]
    for ax, a in zip(axes, attributions, strict=True):
        row = a.scores.float().view(1, -1).numpy()
        bound = max(float(abs(row).max()), 1e-12)
        ax.imshow(row, aspect="auto", cmap="RdBu_r", vmin=-bound, vmax=bound)
        for t, word in enumerate(words):
            dark = abs(float(row[0, t])) > 0.6 * bound          # white text on dark cells
            ax.text(t, 0, word, ha="center", va="center", fontsize=8,
                    rotation=90 if T > 30 else 0, color="white" if dark else "black")
        ax.set_yticks([0])
        ax.set_yticklabels([a.method.replace("_", " ")])
        ax.set_xticks([])
    fig.suptitle(title or f"token attributions for class {attributions[0].target}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    return str(path)
