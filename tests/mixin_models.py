"""PyTorchModelHubMixin models of "the user's own code", importable by path
(``ModelSpec(source, model_class="mixin_models:TinyNet")``), for tests in and out of process."""

from __future__ import annotations

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn


class TinyNet(nn.Module, PyTorchModelHubMixin):
    """A plain two-layer network; its __init__ arguments are its config."""

    def __init__(self, width: int = 8, classes: int = 3) -> None:
        super().__init__()
        self.inp = nn.Linear(width, 16)
        self.out = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.inp(x)))


class NotAMixin(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def build_tiny_net(out, width: int = 8, seed: int = 0):
    """Save a seeded TinyNet with save_pretrained (config.json + model.safetensors)."""
    torch.manual_seed(seed)
    TinyNet(width=width).save_pretrained(out)
    return out
