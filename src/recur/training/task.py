"""The task interface: what an application gives the Trainer, and the loader registry.

Every application (sentiment classifier, language model, tagger, translator, forecaster)
is a small ``Task``: it builds its model, yields batches, computes a loss, and says which
configs and files a checkpoint needs. The Trainer owns the loop; no application writes one.

A minimal task, a linear regression::

    class Regression(Task):
        name = "regression"

        def build_model(self):
            return nn.Linear(3, 1)

        def train_batches(self, epoch):             # same batches for the same epoch
            g = torch.Generator().manual_seed(epoch)
            for _ in range(10):
                x = torch.randn(8, 3, generator=g)
                yield x, x.sum(1, keepdim=True)

        def loss(self, model, batch, state=None):
            x, y = batch
            return StepOutput(F.mse_loss(model(x), y), num_items=len(x))

    register_task("regression", lambda configs, folder: nn.Linear(3, 1))

``register_task(name, loader)`` lets ``recur.training.load(folder)`` rebuild any saved
model from its folder alone: the loader gets back exactly what ``task.configs()`` returned
at save time (and the folder, to read vocabulary files) and returns the model, whose
weights ``load`` then fills from ``model.safetensors``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

from torch import Tensor, nn


class StepOutput(NamedTuple):
    """What ``Task.loss`` returns for one batch.

    Attributes:
        loss: scalar tensor, the mean loss over the batch's items (tokens, sequences...).
        num_items: how many items the mean is over (weights the logged averages).
        state: the recurrent state after this batch, for truncated BPTT (else None).
    """

    loss: Tensor
    num_items: int
    state: Any = None


class Task(ABC):
    """An application as the Trainer sees it. Subclass it and fill in the abstract methods.

    ``train_batches(epoch)`` must be deterministic given the task's own seed and
    ``epoch`` (draw shuffles from a ``torch.Generator`` seeded with them, not from the
    global RNG): a resumed run skips the first k batches of the epoch and must see exactly
    the batches the interrupted run would have seen.

    Batches can be anything (a tuple, dict or dataclass of tensors); the Trainer moves
    their tensors to the training device before calling ``loss``.
    """

    name: str = "task"

    @abstractmethod
    def build_model(self) -> nn.Module:
        """A freshly initialised model (the Trainer seeds the RNGs before calling this)."""

    @abstractmethod
    def train_batches(self, epoch: int) -> Iterable[Any]:
        """The training batches of ``epoch`` (0-based), the same every time it is asked."""

    def valid_batches(self) -> Iterable[Any]:
        """Validation batches; none by default (then the last model is also the best)."""
        return ()

    @abstractmethod
    def loss(self, model: nn.Module, batch: Any, state: Any = None) -> StepOutput:
        """Forward one batch; ``state`` is the carried recurrent state under TBPTT."""

    def evaluate(self, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
        """Metrics over ``batches`` (the Trainer calls this in eval mode, without grad).

        Must include ``"loss"``. The default is the item-weighted mean loss; override it to
        add accuracy, F1, perplexity..., or to carry state (``mean_loss(..., carry_state)``).
        """
        return {"loss": mean_loss(self, model, batches)}

    def predict(self, model: nn.Module, batch: Any) -> Any:
        """Predictions for one batch (for ``Trainer.predict``); optional."""
        raise NotImplementedError(f"task {self.name!r} does not implement predict(model, batch)")

    def configs(self) -> dict[str, Any]:
        """JSON-able model / data configs saved in config.json; the loader gets them back."""
        return {}

    def files(self, folder: Path) -> None:
        """Write vocabulary / tokenizer files into a checkpoint folder being saved."""
        return None  # an optional hook


def mean_loss(
    task: Task, model: nn.Module, batches: Iterable[Any], carry_state: bool = False
) -> float:
    """Item-weighted mean of ``task.loss`` over ``batches`` (NaN if there are none).

    With ``carry_state`` the state returned for one batch is passed to the next, as a
    language model evaluated over one long stream needs.
    """
    total, items, state = 0.0, 0, None
    for batch in batches:
        out = task.loss(model, batch, state if carry_state else None)
        total += float(out.loss) * out.num_items
        items += out.num_items
        state = out.state
    return total / items if items else math.nan


# -- registry: task name -> loader(configs, folder) -> model ---------------------------------

Loader = Callable[[dict[str, Any], Path], nn.Module]
_LOADERS: dict[str, Loader] = {}


def register_task(name: str, loader: Loader) -> None:
    """Teach ``load`` how to rebuild the models of task ``name``.

    Args:
        name: the task's ``name`` as saved in config.json.
        loader: ``loader(configs, folder) -> nn.Module`` where ``configs`` is what
            ``task.configs()`` returned at save time and ``folder`` the checkpoint folder
            (for vocabulary files). Its weights are loaded afterwards.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty str, got {name!r}")
    if not callable(loader):
        raise TypeError(f"loader must be callable(configs, folder) -> nn.Module, got {loader!r}")
    _LOADERS[name] = loader


def get_loader(name: str) -> Loader:
    """The loader registered for ``name``; KeyError listing the known names otherwise."""
    try:
        return _LOADERS[name]
    except KeyError:
        known = ", ".join(sorted(_LOADERS)) or "none"
        raise KeyError(
            f"no loader registered for task {name!r} (registered: {known}); import the module "
            f"that calls register_task({name!r}, ...) first"
        ) from None


def registered_tasks() -> list[str]:
    """Names with a registered loader, sorted."""
    return sorted(_LOADERS)
