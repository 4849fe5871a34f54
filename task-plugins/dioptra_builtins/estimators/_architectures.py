"""PyTorch network definitions used by :mod:`.pytorch_classifiers` (not plugins).

The networks are sized for small grey or colour images (8x8 digits up to 28x28 MNIST and
a little beyond): two 2x2 poolings, so height and width must be at least 4.  They output
logits.
"""

from __future__ import annotations

import torch
from torch import nn


class ImageClassifier(nn.Module):
    """``features`` then ``head``; remembers how it was built so it can be rebuilt."""

    def __init__(
        self, architecture: str, features: nn.Module, head_fn, input_shape, n_classes: int
    ) -> None:
        super().__init__()
        self.architecture = architecture
        self.input_shape = tuple(int(v) for v in input_shape)
        self.n_classes = int(n_classes)
        self.features = features
        with torch.no_grad():
            n_features = self.features(torch.zeros(1, *self.input_shape)).numel()
        self.head = head_fn(n_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def shallow_net(input_shape, n_classes: int) -> ImageClassifier:
    """One hidden fully connected layer."""

    return ImageClassifier(
        "shallow_net",
        nn.Flatten(),
        lambda n: nn.Sequential(nn.Linear(n, 128), nn.ReLU(), nn.Linear(128, n_classes)),
        input_shape,
        n_classes,
    )


def le_net(input_shape, n_classes: int) -> ImageClassifier:
    """LeNet-style: two 3x3 convolution + max-pool blocks, then two dense layers."""

    channels = int(input_shape[0])
    features = nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
    )
    return ImageClassifier(
        "le_net",
        features,
        lambda n: nn.Sequential(nn.Linear(n, 128), nn.ReLU(), nn.Linear(128, n_classes)),
        input_shape,
        n_classes,
    )


def alex_net(input_shape, n_classes: int) -> ImageClassifier:
    """A scaled-down AlexNet: five 3x3 convolutions, two poolings, three dense layers."""

    channels = int(input_shape[0])
    features = nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 96, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(96, 96, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(96, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
    )
    return ImageClassifier(
        "alex_net",
        features,
        lambda n: nn.Sequential(
            nn.Linear(n, 256),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(256, 256),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(256, n_classes),
        ),
        input_shape,
        n_classes,
    )


ARCHITECTURES = {"shallow_net": shallow_net, "le_net": le_net, "alex_net": alex_net}


def build(architecture: str, input_shape, n_classes: int) -> ImageClassifier:
    try:
        factory = ARCHITECTURES[architecture]
    except KeyError:
        raise ValueError(
            f"Unknown model architecture {architecture!r}; choose one of {sorted(ARCHITECTURES)}"
        ) from None
    return factory(tuple(int(v) for v in input_shape), int(n_classes))
