"""Models shared by the engine's test folders."""

import pytest
import torch
from torch import nn


class TwoInTwoOut(nn.Module):
    """Image (2×6×6) + tabular (4) input; output 1 reads both, output 2 only the tabular."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3)
        self.pool = nn.MaxPool2d(2)
        self.dense = nn.Linear(4, 5)
        self.head1 = nn.Linear(3 * 2 * 2 + 5, 3)
        self.head2 = nn.Linear(5, 2)

    def forward(self, image, tabular):
        a = torch.flatten(self.pool(torch.relu(self.conv(image))), 1)
        b = torch.tanh(self.dense(tabular))
        return torch.softmax(self.head1(torch.cat([a, b], 1)), 1), torch.sigmoid(self.head2(b))


@pytest.fixture(scope="session")
def two_in_two_out():
    """The class of a two-input, two-output model (unseeded: seed before building one)."""
    return TwoInTwoOut
