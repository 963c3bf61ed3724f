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

from . import nn

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


def _activation(activation):
    if isinstance(activation, str):
        try:
            return _ACTIVATIONS[activation.lower()]
        except KeyError:
            raise ValueError(
                f"unknown activation {activation!r}; expected one of {sorted(_ACTIVATIONS)} or a Module class"
            ) from None
    return activation


class MLP(nn.Sequential):
    """Linear(sizes[0], sizes[1]), activation, …, Linear(sizes[-2], sizes[-1]).

    Inputs with more than two dimensions (images) are flattened to (N, features) first,
    without a Flatten layer, so the layer names stay "0", "2", "4", ...
    """

    def __init__(self, sizes, activation="relu", dropout: float = 0.0):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2:
            raise ValueError(f"MLP needs at least an input and an output size, got {sizes}")
        make_activation = _activation(activation)
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
        layers, c_in, size = [], int(in_channels), int(length)
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
        self.in_channels = int(in_channels)

    def forward(self, x):
        if x.ndim == 2:
            x = x.reshape(x.shape[0], self.in_channels, -1)
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
        layers, c_in, size = [], int(in_channels), int(image_size)
        for c_out in channels:
            layers.append(nn.Conv2d(c_in, c_out, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers += [nn.ReLU(), nn.MaxPool2d(2)]
            size //= 2
            c_in = c_out
        if size < 1:
            raise ValueError(f"CNN2d: image_size {image_size} is too small for {len(channels)} 2x2 poolings")
        layers.append(nn.Flatten())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(c_in * size * size, num_classes))
        super().__init__(*layers)
        self.image_size = int(image_size)

    def forward(self, x):
        if x.ndim == 3:  # (N, H, W): one channel
            x = x.reshape(x.shape[0], 1, *x.shape[1:])
        return super().forward(x)
