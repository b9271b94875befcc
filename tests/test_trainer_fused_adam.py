"""build_optimizer takes torch's fused Adam kernel on CPU: the same steps as the default."""

import torch

from recur.training import TrainConfig
from recur.training.trainer import build_optimizer


def test_fused_adam_takes_the_same_steps_as_the_foreach_path():
    for name in ("adam", "adamw"):
        config = TrainConfig(optimizer=name, lr=1e-2, weight_decay=0.01)
        a = [torch.nn.Parameter(torch.randn(7, 5)), torch.nn.Parameter(torch.randn(5))]
        b = [torch.nn.Parameter(p.detach().clone()) for p in a]
        fused = build_optimizer(a, config)
        assert fused.defaults["fused"] is True
        plain = type(fused)(b, lr=1e-2, betas=config.betas, weight_decay=0.01, foreach=True)
        for step in range(5):
            g = torch.Generator().manual_seed(step)
            for p, q in zip(a, b, strict=True):
                p.grad = torch.randn(p.shape, generator=g)
                q.grad = p.grad.clone()
            fused.step()
            plain.step()
        for p, q in zip(a, b, strict=True):
            torch.testing.assert_close(p, q)
