"""The small models the lessons and benchmarks train.

Each is an ``nn.Sequential``, so its state_dict names ("0.weight", "3.running_mean", ...)
are the ones the same ``torch.nn.Sequential`` would have, and weights exchange with
PyTorch one to one.

- ``MLP([40, 256, 256, 10])``: Linear layers with an activation between them.
- ``CNN1d(length=40, num_classes=10)``: strided 1-D convolutions for MNIST-1D signals.
- ``CNN2d(in_channels=1, image_size=28, num_classes=10)``: two 3x3 convolutions (1→16,
  16→32, padding 1), each followed by ReLU and a 2x2 max-pool, then Linear(32·7·7, 10).
  ``image_size=8`` serves the 8x8 digits; ``batch_norm=True`` adds BatchNorm2d after
  each convolution.
"""

from __future__ import annotations

import numpy as np

from . import checks, nn

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "leaky_relu": nn.LeakyReLU}


def _activation(who, activation):
    """The activation as a Module class: a name from ``_ACTIVATIONS`` or a Module subclass."""
    if isinstance(activation, type) and issubclass(activation, nn.Module):
        return activation
    if isinstance(activation, str):
        return _ACTIVATIONS[checks.choice(who, "activation", activation, list(_ACTIVATIONS))]
    names = ", ".join(repr(n) for n in _ACTIVATIONS)
    raise checks.ArgumentError(
        f"{who}: activation must be one of {names} or an nn.Module subclass, got {activation!r}"
    )


def _sizes(who, name, values, minimum_length):
    """A list or tuple of integers >= 1 (layer widths, channel counts), checked one by one."""
    one_dimensional = isinstance(values, np.ndarray) and values.ndim == 1
    if not (isinstance(values, (list, tuple, range)) or one_dimensional):
        raise checks.ArgumentError(f"{who}: {name} must be a list of integers >= 1, got {values!r}")
    if len(values) < minimum_length:
        raise checks.ArgumentError(
            f"{who}: {name} needs at least {minimum_length} entries, got {list(values)!r}"
        )
    return [checks.count(who, f"{name}[{i}]", v, 1) for i, v in enumerate(values)]


class MLP(nn.Sequential):
    """Linear(sizes[0], sizes[1]), activation, …, Linear(sizes[-2], sizes[-1]).

    Inputs with more than two dimensions (images) are flattened to (N, features) first,
    without a Flatten layer, so the layer names stay "0", "2", "4", ...
    """

    def __init__(self, sizes, activation="relu", dropout: float = 0.0):
        """``activation``: "relu", "tanh", "sigmoid", "leaky_relu" or an nn.Module subclass;
        ``dropout``: the probability of a Dropout after each hidden activation (0: none)."""
        # every argument is checked before the first layer draws its weights, so a refused
        # model leaves the random stream where it was
        sizes = _sizes("MLP", "sizes", sizes, 2)
        make_activation = _activation("MLP", activation)
        dropout = checks.probability("MLP", "dropout", dropout)
        layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers.append(nn.Linear(n_in, n_out))
            if i < len(sizes) - 2:
                layers.append(make_activation())
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
        super().__init__(*layers)
        self.sizes = sizes

    def forward(self, x):
        if x.ndim > 2:
            x = x.reshape(x.shape[0], -1)
        return super().forward(x)


class CNN1d(nn.Sequential):
    """For MNIST-1D-sized signals (N, L) or (N, C, L):

        Conv1d(C→c₁, 5, stride 2, padding 2), ReLU,
        Conv1d(c₁→c₂, 3, stride 2, padding 1), ReLU,
        Flatten, Linear(c₂·⌈⌈L/2⌉/2⌉, num_classes)

    (length 40: 40 → 20 → 10 positions). A 2-D input gets a channel axis added.
    """

    def __init__(
        self,
        in_channels: int = 1,
        length: int = 40,
        num_classes: int = 10,
        channels=(16, 32),
        batch_norm: bool = False,
    ):
        in_channels = checks.count("CNN1d", "in_channels", in_channels, 1)
        length = checks.count("CNN1d", "length", length, 1)
        num_classes = checks.count("CNN1d", "num_classes", num_classes, 1)
        channels = _sizes("CNN1d", "channels", channels, 1)
        batch_norm = checks.flag("CNN1d", "batch_norm", batch_norm)
        layers, c_in, size = [], in_channels, length
        for i, c_out in enumerate(channels):
            kernel, padding = (5, 2) if i == 0 else (3, 1)
            layers.append(nn.Conv1d(c_in, c_out, kernel, stride=2, padding=padding))
            if batch_norm:
                layers.append(nn.BatchNorm1d(c_out))
            layers.append(nn.ReLU())
            size = (size + 2 * padding - kernel) // 2 + 1
            c_in = c_out
        layers += [nn.Flatten(), nn.Linear(c_in * size, num_classes)]
        super().__init__(*layers)
        self.in_channels, self.length = in_channels, length

    def forward(self, x):
        if x.ndim == 2:
            x = x.reshape(x.shape[0], self.in_channels, -1)
        if x.ndim == 3 and x.shape[-1] != self.length:  # say it here, not as a Linear size mismatch
            raise ValueError(
                f"CNN1d(length={self.length}): expected signals of length {self.length}, got shape {x.shape}"
            )
        return super().forward(x)


class CNN2d(nn.Sequential):
    """For small images (N, C, H, W) with H = W = ``image_size``:

        [Conv2d(c→c', 3x3, padding 1), (BatchNorm2d), ReLU, MaxPool2d(2)] per channel count,
        Flatten, (Dropout), Linear(c_last·s·s, num_classes),  s = image_size // 2^blocks

    The defaults are the performance benchmark's CNN: 1→16→32, Linear(32·7·7, 10) for 28x28.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        num_classes: int = 10,
        channels=(16, 32),
        batch_norm: bool = False,
        dropout: float = 0.0,
    ):
        in_channels = checks.count("CNN2d", "in_channels", in_channels, 1)
        image_size = checks.count("CNN2d", "image_size", image_size, 1)
        num_classes = checks.count("CNN2d", "num_classes", num_classes, 1)
        channels = _sizes("CNN2d", "channels", channels, 1)
        batch_norm = checks.flag("CNN2d", "batch_norm", batch_norm)
        dropout = checks.probability("CNN2d", "dropout", dropout)
        if image_size < 2 ** len(channels):
            raise checks.ArgumentError(
                f"CNN2d: image_size must be >= {2 ** len(channels)} for {len(channels)} 2x2 poolings "
                f"(one per entry of channels), got {image_size}"
            )
        layers, c_in, size = [], in_channels, image_size
        for c_out in channels:
            layers.append(nn.Conv2d(c_in, c_out, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers += [nn.ReLU(), nn.MaxPool2d(2)]
            size //= 2
            c_in = c_out
        layers.append(nn.Flatten())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(c_in * size * size, num_classes))
        super().__init__(*layers)
        self.image_size = image_size

    def forward(self, x):
        if x.ndim == 3:  # (N, H, W): one channel
            x = x.reshape(x.shape[0], 1, *x.shape[1:])
        if x.ndim == 4 and x.shape[2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"CNN2d(image_size={self.image_size}): expected {self.image_size}x{self.image_size} "
                f"images, got shape {x.shape}"
            )
        return super().forward(x)
