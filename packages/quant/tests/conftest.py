"""Shared fixtures for the quant tests."""

from __future__ import annotations

import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


class SmallNet(nn.Module):
    """Conv-BN-ReLU, a residual-free conv stack and a linear head: the shapes QAT meets."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.act2 = nn.SiLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.conv2(x))
        return self.head(self.pool(x).flatten(1))


def _randomize_bn(bn: nn.BatchNorm2d) -> nn.BatchNorm2d:
    """Non-trivial BN statistics and affine parameters, so folding is really tested."""
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.3, 0.3)
    return bn


@pytest.fixture
def randomize_bn():
    return _randomize_bn


@pytest.fixture
def small_net() -> SmallNet:
    net = SmallNet()
    _randomize_bn(net.bn1)
    return net.eval()


@pytest.fixture
def batches() -> list[torch.Tensor]:
    return [torch.randn(4, 3, 16, 16) for _ in range(4)]
