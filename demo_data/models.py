"""The architectures of the demo models: small torch modules that ``Converter`` supports.

Every classifier ends in ``nn.Softmax(dim=-1)``, like innsight's examples; the methods
explain the pre-activation of the last layer by default (``ignore_last_act=True``).
Training uses the logits (``model.logits``) with a cross-entropy loss.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ARCHITECTURES", "DiabetesMLP", "DigitsCNN", "DigitsPlusTable", "IrisMLP", "SignalCNN"]


class IrisMLP(nn.Module):
    """Tabular classifier: 4 measurements (cm) → 16 ReLU units → 3 species."""

    def __init__(self, n_features: int = 4, n_hidden: int = 16, n_classes: int = 3) -> None:
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(n_features, n_hidden), nn.ReLU())
        self.out = nn.Linear(n_hidden, n_classes)
        self.softmax = nn.Softmax(dim=-1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.softmax(self.logits(x))


class DiabetesMLP(nn.Module):
    """Tabular regression: 10 standardised features → 32 → 16 (ReLU) → 1 value."""

    def __init__(self, n_features: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_features, 32),
            nn.ReLU(),
            nn.Linear(32, 16),
            nn.ReLU(),
            nn.Linear(16, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SignalCNN(nn.Module):
    """1D-signal classifier: 3 channels → two convolutions → global max pooling → 3 classes.

    The global max pooling makes the detector translation invariant: a motif anywhere in
    the signal drives its class.
    """

    def __init__(self, n_channels: int = 3, n_classes: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(n_channels, 16, kernel_size=7, padding=3),
            nn.BatchNorm1d(16),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(16, 16, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.AdaptiveMaxPool1d(1),
            nn.Flatten(),
        )
        self.out = nn.Linear(16, n_classes)
        self.softmax = nn.Softmax(dim=-1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.softmax(self.logits(x))


class DigitsCNN(nn.Module):
    """Image classifier for scikit-learn's 8×8 digits: 2 convolutions, max pooling, 2 dense."""

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.classifier = nn.Sequential(nn.Linear(16 * 4 * 4, 64), nn.ReLU())
        self.out = nn.Linear(64, n_classes)
        self.softmax = nn.Softmax(dim=-1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.classifier(self.features(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.softmax(self.logits(x))


class DigitsPlusTable(nn.Module):
    """Two inputs, two output heads: a digit image and a table of 3 features.

    An image branch (convolution, max pooling, dense) and a table branch (dense) are
    concatenated into a shared dense layer; head 1 classifies the digit (softmax over
    ``0``…``9``), head 2 predicts the number ``digit + addend`` (linear).
    """

    def __init__(self, n_table: int = 3, n_classes: int = 10) -> None:
        super().__init__()
        self.image = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(8 * 4 * 4, 32),
            nn.ReLU(),
        )
        self.table = nn.Sequential(nn.Linear(n_table, 16), nn.ReLU())
        self.shared = nn.Sequential(nn.Linear(32 + 16, 32), nn.ReLU())
        self.digit = nn.Linear(32, n_classes)
        self.softmax = nn.Softmax(dim=-1)
        self.sum = nn.Linear(32, 1)

    def heads(self, image: torch.Tensor, table: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.shared(torch.cat([self.image(image), self.table(table)], dim=1))
        return self.digit(hidden), self.sum(hidden)

    def forward(
        self, image: torch.Tensor, table: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits, total = self.heads(image, table)
        return self.softmax(logits), total


ARCHITECTURES: dict[str, type[nn.Module]] = {
    cls.__name__: cls for cls in (IrisMLP, DiabetesMLP, SignalCNN, DigitsCNN, DigitsPlusTable)
}
"""Architecture classes by name, as ``demos.json`` refers to them."""
