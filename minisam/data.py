"""Data: the bundled data sets, toy generators, mini-batches and label noise.

Everything here returns host NumPy arrays -- float32 inputs and int64 labels -- so a
data set is loaded once and can be inspected, plotted or split with plain NumPy. Only
``DataLoader`` moves arrays to the backend, one mini-batch at a time, as Tensors.

    import minisam as ms
    from minisam import data

    ms.manual_seed(0)
    ds = data.load_mnist1d(validation=500)     # 3500 train / 500 val / 1000 test, (N, 40)
    for x, y in data.DataLoader(ds.x_train, ds.y_train, batch_size=128):
        ...                                    # x: Tensor (128, 40) float32, y: Tensor (128,) int64

Randomness that belongs to an experiment (shuffling, toy data, label noise) comes from
the library generator, so ``ms.manual_seed`` fixes it. Randomness that belongs to a data
set (which digits images are test images, which examples form the validation set) uses
its own fixed seed, so the split never depends on the experiment's seed.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import backend, checks, rng
from .tensor import Tensor

SPLIT_SEED = 0  # the fixed seed of every data-set split made here (digits test set, validation)


# ---- the bundled data sets --------------------------------------------------------------
@dataclass(frozen=True)
class Dataset:
    """A data set split three ways. Host NumPy arrays: float32 inputs, int64 labels.

    ``x_val``/``y_val`` are None when no validation set was asked for.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    num_classes: int
    name: str

    def __repr__(self):
        val = "none" if self.x_val is None else f"{len(self.x_val)}"
        return (
            f"Dataset({self.name!r}: train {self.x_train.shape}, val {val}, "
            f"test {self.x_test.shape}, {self.num_classes} classes)"
        )


def data_dir() -> Path:
    """Where the ``.npz`` files live: ``$MINISAM_DATA`` if set, else the repository's ``data/``."""
    override = os.environ.get("MINISAM_DATA", "").strip()
    if override:
        return Path(override).expanduser()
    return Path(__file__).resolve().parent.parent / "data"


def _load_npz(filename: str, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    path = data_dir() / filename
    if not path.is_file():
        raise FileNotFoundError(
            f"bundled data file not found: {path}. The data sets ship in the repository's "
            "data/ folder, not in the installed package: install minisam from a checkout "
            "with `pip install -e .` (editable), or point MINISAM_DATA at a folder that "
            f"holds {filename}."
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise ValueError(f"{path} lacks the arrays {missing}; it holds {npz.files}")
            return {k: npz[k] for k in keys}
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read bundled data file {path}: {err}") from None


def _validation_count(validation, n_train: int) -> int:
    """``validation`` as a number of examples: an int count or a float fraction of train."""
    if isinstance(validation, bool) or not isinstance(validation, (int, np.integer, float, np.floating)):
        raise TypeError(f"validation must be an int count or a float fraction, got {validation!r}")
    if isinstance(validation, (int, np.integer)):
        count = int(validation)
    elif isinstance(validation, (float, np.floating)) and 0.0 <= validation < 1.0:
        count = int(round(float(validation) * n_train))
    else:
        raise ValueError(
            "validation must be an int count (0 <= count < number of training examples) "
            f"or a float fraction in [0, 1), got {validation!r}"
        )
    if not 0 <= count < n_train:
        raise ValueError(
            f"validation={validation!r} asks for {count} examples, but the training set has "
            f"{n_train}; use 0 <= validation < {n_train}"
        )
    return count


def _finish(name, x_train, y_train, x_test, y_test, num_classes, validation, standardize):
    """Carve the validation set from train, then standardise everything with train statistics."""
    count = _validation_count(validation, len(x_train))
    x_val = y_val = None
    if count:
        order = np.random.default_rng(SPLIT_SEED).permutation(len(x_train))
        val, train = np.sort(order[:count]), np.sort(order[count:])
        x_val, y_val = x_train[val], y_train[val]
        x_train, y_train = x_train[train], y_train[train]

    x_train, x_test = x_train.astype(np.float32), x_test.astype(np.float32)
    x_val = None if x_val is None else x_val.astype(np.float32)
    if standardize:
        # one mean and one standard deviation over every train value: a per-feature
        # scale would reshape the signals and divide by zero on the blank digit borders
        mean, std = float(x_train.mean()), float(x_train.std())
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
        x_val = None if x_val is None else (x_val - mean) / std

    as_labels = lambda y: None if y is None else y.astype(np.int64)  # noqa: E731
    return Dataset(
        x_train=x_train.astype(np.float32), y_train=as_labels(y_train),
        x_test=x_test.astype(np.float32), y_test=as_labels(y_test),
        x_val=None if x_val is None else x_val.astype(np.float32), y_val=as_labels(y_val),
        num_classes=num_classes, name=name,
    )  # fmt: skip


def load_mnist1d(validation=0, standardize=True, channels=False) -> Dataset:
    """MNIST-1D (Greydanus & Kobak 2024): 4000 train / 1000 test signals of length 40, 10 classes.

    The split is the generator's own (see ``data/README.md``). ``validation`` (an int
    count or a float fraction) moves that many training examples, chosen with the fixed
    seed ``SPLIT_SEED``, into ``x_val``/``y_val``. ``standardize`` subtracts the mean and
    divides by the standard deviation of the (remaining) training values -- one scalar
    each. Inputs are ``(N, 40)``, or ``(N, 1, 40)`` with ``channels=True`` for Conv1d.
    """
    standardize = checks.flag("load_mnist1d", "standardize", standardize)
    channels = checks.flag("load_mnist1d", "channels", channels)
    arrays = _load_npz("mnist1d.npz", ("x_train", "y_train", "x_test", "y_test"))
    ds = _finish(
        "mnist1d", arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
        10, validation, standardize,
    )  # fmt: skip
    if channels:
        add_channel = lambda x: None if x is None else x[:, None, :]  # noqa: E731
        ds = Dataset(
            add_channel(ds.x_train), ds.y_train, add_channel(ds.x_test), ds.y_test,
            add_channel(ds.x_val), ds.y_val, ds.num_classes, ds.name,
        )  # fmt: skip
    return ds


DIGITS_TEST_SIZE = 360


def load_digits(validation=0, standardize=True) -> Dataset:
    """The 1797 8x8 UCI handwritten digits (Alpaydin & Kaynak 1998), 10 classes.

    The file has no split, so a fixed one is drawn here: a permutation from
    ``numpy.random.default_rng(SPLIT_SEED)`` (seed 0) puts 360 images in the test set and
    the other 1437 in train, always the same ones. ``validation`` then carves from train as
    in ``load_mnist1d``. Without ``standardize`` the inputs keep their raw pixel counts
    0..16 (as float32). Images are ``(N, 1, 8, 8)``, ready for Conv2d; flattening is the
    model's job.
    """
    standardize = checks.flag("load_digits", "standardize", standardize)
    arrays = _load_npz("digits.npz", ("images", "labels"))
    images, labels = arrays["images"][:, None, :, :], arrays["labels"]
    order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    test, train = np.sort(order[:DIGITS_TEST_SIZE]), np.sort(order[DIGITS_TEST_SIZE:])
    return _finish(
        "digits", images[train], labels[train], images[test], labels[test],
        10, validation, standardize,
    )  # fmt: skip


# ---- mini-batches -----------------------------------------------------------------------
class DataLoader:
    """Mini-batches of ``(inputs, labels)`` Tensors on the current backend.

    Each pass (``for x, y in loader``) visits every example once. With ``shuffle`` the
    order is a fresh permutation from the library generator at the start of each pass, so
    ``ms.manual_seed`` fixes every epoch's batches. ``drop_last`` drops a final batch
    smaller than ``batch_size``. ``len(loader)`` is the number of batches per pass.

    The arrays are copied to the device once (and again only if the backend changes);
    each batch is then a slice on the device.
    """

    def __init__(self, x, y, batch_size: int, shuffle: bool = True, drop_last: bool = False):
        batch_size = checks.count("DataLoader", "batch_size", batch_size, 1)
        shuffle = checks.flag("DataLoader", "shuffle", shuffle)
        drop_last = checks.flag("DataLoader", "drop_last", drop_last)
        x, y = np.asarray(backend.to_host(_raw(x))), np.asarray(backend.to_host(_raw(y)))
        if x.ndim < 1 or x.dtype.kind not in "fiu":
            raise checks.ArgumentError(
                f"DataLoader: inputs x must be a numeric array with one row per example, "
                f"got {x.dtype} of shape {x.shape}"
            )
        if y.ndim != 1:
            raise ValueError(f"labels y must be 1-D (one class index per example), got shape {y.shape}")
        if y.dtype.kind not in "iu":
            raise TypeError(f"labels y must be integers (class indices), got dtype {y.dtype}")
        if len(x) != len(y):
            raise ValueError(f"x and y must hold the same number of examples, got {len(x)} and {len(y)}")
        if len(y) == 0:
            raise ValueError(
                "DataLoader: x and y hold no examples; an epoch over them would train on nothing"
            )
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise ValueError(
                "DataLoader: inputs x hold NaN or infinite values; every batch would give a NaN loss"
            )
        if int(y.min()) < 0 or int(y.max()) > np.iinfo(np.int64).max:
            raise ValueError(f"labels y must be class indices >= 0, got values from {y.min()} to {y.max()}")
        self.x, self.y = x, y.astype(np.int64)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self._device = None  # (backend name, x on device, y on device)

    def __len__(self) -> int:
        n = len(self.y)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        if self._device is None or self._device[0] != backend.name:
            self._device = (backend.name, backend.to_device(self.x), backend.to_device(self.y))
        _, x, y = self._device
        n = len(self.y)
        order = rng.generator().permutation(n) if self.shuffle else np.arange(n)
        order = backend.to_device(order)
        for b in range(len(self)):
            index = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield Tensor(x[index]), Tensor(y[index])


def _raw(a):
    return a.data if isinstance(a, Tensor) else a


# ---- toy data sets ----------------------------------------------------------------------
def _split_evenly(n, parts):
    """Sizes of ``parts`` groups that sum to ``n`` and differ by at most one."""
    return [n // parts + (1 if k < n % parts else 0) for k in range(parts)]


def _shuffled(x, y):
    order = rng.generator().permutation(len(y))
    return x[order].astype(np.float32), y[order].astype(np.int64)


def two_moons(n: int = 200, noise: float = 0.1):
    """Two interleaving half circles in 2-D, classes 0 and 1; Gaussian noise of std ``noise``.

    Returns ``(x (n, 2) float32, y (n,) int64)`` drawn from the library generator.
    """
    n, noise = checks.count("two_moons", "n", n, 2), checks.number("two_moons", "noise", noise, 0.0)
    gen = rng.generator()
    upper, lower = _split_evenly(n, 2)
    angle_u, angle_l = gen.uniform(0, np.pi, upper), gen.uniform(0, np.pi, lower)
    x = np.concatenate([
        np.stack([np.cos(angle_u), np.sin(angle_u)], axis=1),
        np.stack([1 - np.cos(angle_l), 0.5 - np.sin(angle_l)], axis=1),
    ])  # fmt: skip
    x = x + noise * gen.standard_normal(x.shape)
    return _shuffled(x, np.repeat([0, 1], [upper, lower]))


def spirals(n: int = 300, classes: int = 3, noise: float = 0.2):
    """``classes`` interleaved spiral arms in 2-D (the CS231n toy problem), ``n`` points in all.

    Arm k has angles t·4 + 2πk/classes + noise for radii t in [0, 1]; ``noise`` is the
    standard deviation of the angular jitter. Returns ``(x (n, 2) float32, y (n,) int64)``.
    """
    n, classes = checks.count("spirals", "n", n, 1), checks.count("spirals", "classes", classes, 2)
    if classes > n:  # an arm without points would be a class without examples
        raise checks.ArgumentError(f"spirals: classes must be <= n, got classes={classes} for n={n} points")
    noise = checks.number("spirals", "noise", noise, 0.0)
    gen = rng.generator()
    xs, ys = [], []
    for k, size in enumerate(_split_evenly(n, classes)):
        radius = np.linspace(0.0, 1.0, size)
        angle = 4.0 * radius + 2 * np.pi * k / classes + noise * gen.standard_normal(size)
        xs.append(np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1))
        ys.append(np.full(size, k))
    return _shuffled(np.concatenate(xs), np.concatenate(ys))


def gaussian_blobs(n: int = 300, centers=3, std: float = 1.0, dim: int = 2):
    """Isotropic Gaussian clusters, one class per centre, ``n`` points in all.

    ``centers`` is a number of clusters (their centres drawn uniformly from [-5, 5]^dim)
    or an array ``(k, dim)`` of centres; either way at most ``n`` (a cluster gets at least one
    point). An array of centres sets the dimension: ``dim``, if not left at 2, must agree with it.
    Returns ``(x (n, dim) float32, y (n,) int64)``.
    """
    n = checks.count("gaussian_blobs", "n", n, 1)
    std = checks.number("gaussian_blobs", "std", std, 0.0)
    dim = checks.count("gaussian_blobs", "dim", dim, 1)
    gen = rng.generator()
    if isinstance(centers, (int, np.integer)):  # a count (bool is refused by checks.count)
        k = checks.count("gaussian_blobs", "centers", centers, 1, n)
        centers = gen.uniform(-5.0, 5.0, size=(k, dim))
    centers = np.asarray(backend.to_host(_raw(centers)))
    if centers.dtype.kind not in "fiu" or centers.ndim != 2 or centers.size == 0:
        raise checks.ArgumentError(
            "gaussian_blobs: centers must be a number of clusters or an array (k, dim) of centres, "
            f"got {centers.dtype} of shape {centers.shape}"
        )
    if not np.isfinite(centers).all():
        raise checks.ArgumentError("gaussian_blobs: centers must be finite, got NaN or infinite entries")
    if len(centers) > n or dim not in (2, centers.shape[1]):
        raise checks.ArgumentError(
            f"gaussian_blobs: centers must hold at most n={n} centres of dimension dim={dim} "
            f"(or any dimension with dim left at 2), got {len(centers)} of dimension {centers.shape[1]}"
        )
    centers = centers.astype(np.float64)
    sizes = _split_evenly(n, len(centers))
    dim = centers.shape[1]
    clusters = zip(centers, sizes, strict=True)
    x = np.concatenate([c + std * gen.standard_normal((s, dim)) for c, s in clusters])
    return _shuffled(x, np.repeat(np.arange(len(centers)), sizes))


TOY_SETS = ("moons", "spirals", "blobs")


def load_toy(name: str, n_train: int = 500, n_test: int = 500, seed: int = 0, noise=None) -> Dataset:
    """A toy set as a ``Dataset``: ``name`` one of "moons", "spirals", "blobs".

    Train and test come from one draw of ``n_train + n_test`` points, split in that
    order. The draw is made from ``manual_seed(seed)`` and the library generator is put
    back afterwards, so the data depend on ``seed`` alone and the run's own random
    stream is untouched. ``noise`` overrides the generator's noise (std for blobs).
    Inputs are left unstandardised: they are already of order one.
    """
    name = checks.choice("load_toy", "name", name, TOY_SETS)
    n_train = checks.count("load_toy", "n_train", n_train, 1)
    n_test = checks.count("load_toy", "n_test", n_test, 1)
    seed = checks.count("load_toy", "seed", seed)
    if noise is not None:
        noise = checks.number("load_toy", "noise", noise, 0.0)
    n = n_train + n_test
    saved = rng.get_rng_state()
    rng.manual_seed(seed)
    try:
        if name == "moons":
            x, y = two_moons(n, noise=0.1 if noise is None else noise)
        elif name == "spirals":
            x, y = spirals(n, classes=3, noise=0.2 if noise is None else noise)
        else:
            x, y = gaussian_blobs(n, centers=3, std=1.0 if noise is None else noise)
    finally:
        rng.set_rng_state(saved)
    return Dataset(
        x_train=x[:n_train], y_train=y[:n_train], x_test=x[n_train:], y_test=y[n_train:],
        x_val=None, y_val=None, num_classes=int(y.max()) + 1, name=name,
    )  # fmt: skip


# ---- label noise --------------------------------------------------------------------------
def add_label_noise(y, fraction: float, num_classes: int, seed: int | None = None):
    """Symmetric label noise: exactly ``round(fraction * n)`` labels, chosen at random, each
    changed to one of the *other* ``num_classes - 1`` classes uniformly.

    (``round`` is to the nearest integer, halves up.) Randomness comes from the library
    generator, or from ``numpy.random.default_rng(seed)`` when a seed is given. The input is
    not modified. Returns ``(noisy_labels int64, noisy_mask bool)``.
    """
    y = np.asarray(backend.to_host(_raw(y)))
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"y must be a 1-D integer array of class indices, got {y.dtype} of shape {y.shape}")
    num_classes = checks.count("add_label_noise", "num_classes", num_classes, 2)
    fraction = checks.probability("add_label_noise", "fraction", fraction, allow_one=True)
    if seed is not None:
        seed = checks.count("add_label_noise", "seed", seed)
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes - 1}] for num_classes={num_classes}, "
            f"found values from {y.min()} to {y.max()}"
        )
    gen = rng.generator() if seed is None else np.random.default_rng(seed)
    n = len(y)
    count = int(math.floor(fraction * n + 0.5))
    flipped = gen.choice(n, size=count, replace=False)
    # adding 1..K-1 modulo K reaches every other class exactly once: uniform and never the same
    shift = gen.integers(1, num_classes, size=count)
    noisy = y.astype(np.int64)  # a copy
    noisy[flipped] = (noisy[flipped] + shift) % num_classes
    mask = np.zeros(n, dtype=bool)
    mask[flipped] = True
    return noisy, mask
