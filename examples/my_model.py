"""An example of "your own model" for the ``losslab`` command line (see README, "Your own model").

``model()`` returns a small convolutional network with batch norm that is not in losslab's model zoo;
``data()`` returns scikit-learn's 8x8 handwritten digits (bundled with scikit-learn: nothing is downloaded)
as ``(x_train, y_train, x_test, y_test)`` tensors; ``loaders()`` returns the same data as two
``DataLoader``s (``{"train": ..., "test": ...}``), the other accepted form.

    losslab train --model examples.my_model:model --data examples.my_model:data --out runs/a
"""

import torch
from torch import nn


class SmallConvNet(nn.Module):
    """Two 3x3 convolutions with batch norm, global average pooling and a linear classifier."""

    def __init__(self, channels: int = 8, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * channels),
            nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(2 * channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def model() -> nn.Module:
    return SmallConvNet()


def data(n_test: int = 400):
    """The 1797 digits, standardised, as ``(x_train, y_train, x_test, y_test)``: the last ``n_test`` are the
    test split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = (x - x.mean()) / x.std()
    y = torch.tensor(digits.target, dtype=torch.int64)
    return x[:-n_test], y[:-n_test], x[-n_test:], y[-n_test:]


def loaders(batch_size: int = 128):
    """The same data as ``{"train": DataLoader, "test": DataLoader}``."""
    from torch.utils.data import DataLoader, TensorDataset

    x_train, y_train, x_test, y_test = data()
    return {"train": DataLoader(TensorDataset(x_train, y_train), batch_size=batch_size),
            "test": DataLoader(TensorDataset(x_test, y_test), batch_size=batch_size)}
