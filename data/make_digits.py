"""Make ``data/digits.npz``: the 1797 8x8 handwritten digits that scikit-learn ships.

These are the test set of the UCI "Optical Recognition of Handwritten Digits" data
(E. Alpaydin and C. Kaynak, 1998; https://doi.org/10.24432/C50P49, CC BY 4.0): 32x32
bitmaps of digits written by 43 people, divided into 4x4 blocks whose count of set
pixels gives one 8x8 image with values 0..16. scikit-learn bundles a copy, so this
script reads it from the installed package and downloads nothing.

Run once, from the repository root (scikit-learn is needed only here):

    pip install scikit-learn
    python data/make_digits.py

It writes ``data/digits.npz`` with plain arrays only (no pickle), in scikit-learn's order:

    images (1797, 8, 8) uint8, values 0..16    labels (1797,) uint8, values 0..9

The train/test split is not stored: ``minisam.data.load_digits`` draws it with a fixed
seed, so the file stays the plain data set.
"""

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

OUT = Path(__file__).resolve().parent / "digits.npz"


def main() -> None:
    digits = load_digits()
    images = digits.images
    assert images.shape == (1797, 8, 8)
    assert np.array_equal(images, np.round(images)) and images.min() >= 0 and images.max() <= 16
    arrays = {
        "images": images.astype(np.uint8),
        "labels": digits.target.astype(np.uint8),
    }
    np.savez_compressed(OUT, **arrays)
    for key, value in arrays.items():
        print(f"{key:8s} {str(value.shape):14s} {value.dtype}")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
