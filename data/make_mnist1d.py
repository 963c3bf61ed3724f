"""Make ``data/mnist1d.npz``: MNIST-1D with its default settings, generated offline.

MNIST-1D (Greydanus & Kobak, "Scaling down deep learning with MNIST-1D", ICML 2024;
https://github.com/greydanus/mnist1d, Apache-2.0) is a procedurally generated 1-D
analogue of MNIST: ten hand-made templates of length 12, padded, scaled, sheared,
translated and noised into signals of length 40.

The package's ``get_dataset`` downloads a pickle; this script never does. It calls
``make_dataset(get_dataset_args())``, which builds the same data from the templates
with the package's fixed seed (42): 5000 samples, the first 80% for training.

Run once, from the repository root (the mnist1d package is needed only here):

    pip install mnist1d==0.0.2.post1
    python data/make_mnist1d.py

It writes ``data/mnist1d.npz`` with plain arrays only (no pickle):

    x_train (4000, 40) float32    y_train (4000,) uint8
    x_test  (1000, 40) float32    y_test  (1000,) uint8
    t       (40,)      float32    (the signal's "time" axis, for plotting)
"""

from pathlib import Path

import numpy as np
from mnist1d.data import get_dataset_args, make_dataset

OUT = Path(__file__).resolve().parent / "mnist1d.npz"


def main() -> None:
    args = get_dataset_args()  # num_samples=5000, train_split=0.8, seed=42
    data = make_dataset(args)
    arrays = {
        "x_train": np.asarray(data["x"], dtype=np.float32),
        "y_train": np.asarray(data["y"], dtype=np.uint8),
        "x_test": np.asarray(data["x_test"], dtype=np.float32),
        "y_test": np.asarray(data["y_test"], dtype=np.uint8),
        "t": np.asarray(data["t"], dtype=np.float32),
    }
    assert arrays["x_train"].shape == (4000, 40) and arrays["x_test"].shape == (1000, 40)
    assert set(np.unique(arrays["y_train"])) == set(range(10))
    np.savez_compressed(OUT, **arrays)
    for key, value in arrays.items():
        print(f"{key:8s} {str(value.shape):12s} {value.dtype}")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
