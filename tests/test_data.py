"""The bundled data, the loaders, the toy generators and label noise."""

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

import minisam as ms
from minisam import data

DATA = Path(__file__).resolve().parent.parent / "data"


# ---- the files -------------------------------------------------------------------------
@pytest.mark.parametrize("filename", ["mnist1d.npz", "digits.npz"])
def test_sha256_in_data_readme_matches_the_file(filename):
    readme = (DATA / "README.md").read_text()
    match = re.search(rf"`{re.escape(filename)}` \| `([0-9a-f]{{64}})`", readme)
    assert match, f"data/README.md gives no SHA-256 for {filename}"
    actual = hashlib.sha256((DATA / filename).read_bytes()).hexdigest()
    assert actual == match.group(1), f"{filename}: README says {match.group(1)}, file is {actual}"


@pytest.mark.parametrize("filename", ["mnist1d.npz", "digits.npz"])
def test_data_files_hold_plain_arrays_only(filename):
    with np.load(DATA / filename, allow_pickle=False) as npz:  # raises if anything is pickled
        for key in npz.files:
            assert npz[key].dtype != object


# ---- loaders ---------------------------------------------------------------------------
def test_mnist1d_shapes_dtypes_and_classes():
    ds = data.load_mnist1d()
    assert ds.x_train.shape == (4000, 40) and ds.x_test.shape == (1000, 40)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.x_val is None and ds.y_val is None
    assert ds.num_classes == 10 and ds.name == "mnist1d"
    assert set(np.unique(ds.y_train)) == set(range(10))


def test_mnist1d_channels_adds_an_axis_for_conv1d():
    ds = data.load_mnist1d(validation=100, channels=True)
    assert ds.x_train.shape == (3900, 1, 40) and ds.x_val.shape == (100, 1, 40)
    assert ds.x_test.shape == (1000, 1, 40)


def test_digits_fixed_split_shapes_and_raw_pixel_range():
    ds = data.load_digits(standardize=False)
    assert ds.x_train.shape == (1437, 1, 8, 8) and ds.x_test.shape == (360, 1, 8, 8)
    assert ds.x_train.dtype == np.float32 and ds.y_test.dtype == np.int64
    assert ds.x_train.min() == 0 and ds.x_train.max() == 16
    again = data.load_digits(standardize=False)
    assert np.array_equal(ds.x_test, again.x_test)  # the split is fixed


def test_digits_split_does_not_depend_on_the_library_seed():
    ms.manual_seed(1)
    a = data.load_digits(validation=100)
    ms.manual_seed(2)
    b = data.load_digits(validation=100)
    assert np.array_equal(a.y_test, b.y_test) and np.array_equal(a.x_val, b.x_val)


@pytest.mark.parametrize("loader", [data.load_mnist1d, data.load_digits])
def test_standardised_with_train_statistics(loader):
    ds = loader(validation=0.2)
    assert abs(float(ds.x_train.mean())) < 1e-5
    assert abs(float(ds.x_train.std()) - 1.0) < 1e-5
    raw = loader(validation=0.2, standardize=False)
    mean, std = raw.x_train.mean(dtype=np.float64), raw.x_train.std(dtype=np.float64)
    np.testing.assert_allclose(ds.x_test, (raw.x_test - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ds.x_val, (raw.x_val - mean) / std, rtol=1e-5, atol=1e-5)


def test_validation_is_carved_from_train_without_overlap():
    full = data.load_digits(standardize=False)
    ds = data.load_digits(validation=0.25, standardize=False)
    assert len(ds.x_val) == round(0.25 * 1437) and len(ds.x_train) + len(ds.x_val) == 1437
    rows = lambda x: {r.tobytes() for r in x.reshape(len(x), -1)}  # noqa: E731
    assert rows(ds.x_val) | rows(ds.x_train) == rows(full.x_train)
    assert not rows(ds.x_val) & rows(ds.x_test)


@pytest.mark.parametrize("bad", [-1, 4000, 1.5, "10", True])
def test_bad_validation_is_a_clear_error(bad):
    with pytest.raises((ValueError, TypeError), match="validation"):
        data.load_mnist1d(validation=bad)


def test_missing_data_file_names_the_path_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("MINISAM_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        data.load_digits()
    message = str(err.value)
    assert str(tmp_path / "digits.npz") in message and "pip install -e" in message


def test_data_dir_honours_the_environment_override(tmp_path, monkeypatch):
    monkeypatch.setenv("MINISAM_DATA", str(tmp_path))
    assert data.data_dir() == tmp_path
    monkeypatch.delenv("MINISAM_DATA")
    assert data.data_dir() == DATA


def test_foreign_file_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "digits.npz").write_bytes(b"not a zip file")
    monkeypatch.setenv("MINISAM_DATA", str(tmp_path))
    with pytest.raises(ValueError, match="digits.npz"):
        data.load_digits()


# ---- DataLoader ------------------------------------------------------------------------
def test_dataloader_covers_every_example_exactly_once_per_epoch():
    ms.manual_seed(0)
    x = np.arange(103, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    y = np.arange(103)
    loader = data.DataLoader(x, y, batch_size=10)
    assert len(loader) == 11
    for _ in range(2):
        seen = []
        for xb, yb in loader:
            assert isinstance(xb, ms.Tensor) and xb.dtype == np.float32 and yb.dtype == np.int64
            assert np.array_equal(xb.numpy()[:, 0], yb.numpy())  # inputs stay with their labels
            seen.append(yb.numpy())
        assert [len(s) for s in seen] == [10] * 10 + [3]
        assert np.array_equal(np.sort(np.concatenate(seen)), y)
    assert not np.array_equal(np.concatenate(seen), y)  # shuffled


def test_dataloader_drop_last_and_no_shuffle():
    loader = data.DataLoader(np.zeros((103, 2)), np.arange(103), batch_size=10, shuffle=False, drop_last=True)
    assert len(loader) == 10
    batches = [yb.numpy() for _, yb in loader]
    assert len(batches) == 10 and np.array_equal(np.concatenate(batches), np.arange(100))


def test_dataloader_shuffling_is_seeded():
    def epoch():
        ms.manual_seed(7)
        return np.concatenate([yb.numpy() for _, yb in data.DataLoader(np.zeros((50, 1)), np.arange(50), 8)])

    assert np.array_equal(epoch(), epoch())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(x=np.zeros((5, 2)), y=np.arange(4), batch_size=2), "same number"),
        (dict(x=np.zeros((5, 2)), y=np.arange(5), batch_size=0), "batch_size"),
        (dict(x=np.zeros((5, 2)), y=np.zeros(5), batch_size=2), "integers"),
        (dict(x=np.zeros((5, 2)), y=np.zeros((5, 1), int), batch_size=2), "1-D"),
    ],
)
def test_dataloader_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        data.DataLoader(**kwargs)


# ---- toy generators --------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, classes",
    [
        (lambda: data.two_moons(101, noise=0.1), 2),
        (lambda: data.spirals(101, classes=4, noise=0.1), 4),
        (lambda: data.gaussian_blobs(101, centers=3, std=0.5), 3),
    ],
)
def test_toy_generators_shapes_classes_and_seeding(make, classes):
    ms.manual_seed(3)
    x, y = make()
    ms.manual_seed(3)
    x2, y2 = make()
    assert x.shape == (101, 2) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    counts = np.bincount(y, minlength=classes)
    assert len(counts) == classes and counts.max() - counts.min() <= 1


def test_gaussian_blobs_with_given_centres():
    ms.manual_seed(0)
    centers = np.array([[10.0, 0.0], [-10.0, 0.0]])
    x, y = data.gaussian_blobs(2000, centers=centers, std=0.1)
    for k in range(2):
        np.testing.assert_allclose(x[y == k].mean(axis=0), centers[k], atol=0.02)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: data.two_moons(1), "n must be"),
        (lambda: data.two_moons(10, noise=-1), "noise"),
        (lambda: data.spirals(10, classes=1), "classes"),
        (lambda: data.gaussian_blobs(10, centers=np.zeros(3)), "centers"),
    ],
)
def test_toy_generators_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---- label noise -----------------------------------------------------------------------
@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 0.5, 1.0])
def test_label_noise_changes_exactly_round_fraction_n_labels_to_another_class(fraction):
    y = np.random.default_rng(0).integers(0, 10, size=1001)
    noisy, mask = data.add_label_noise(y, fraction, num_classes=10, seed=5)
    assert mask.sum() == int(np.floor(fraction * 1001 + 0.5))
    assert np.all(noisy[mask] != y[mask])  # never the same label
    assert np.array_equal(noisy[~mask], y[~mask])
    assert noisy.dtype == np.int64 and noisy.min() >= 0 and noisy.max() <= 9


def test_label_noise_is_uniform_over_the_other_classes_and_leaves_input_alone():
    y = np.zeros(20000, dtype=np.int64)
    noisy, mask = data.add_label_noise(y, 1.0, num_classes=5, seed=0)
    assert np.array_equal(y, np.zeros(20000))
    counts = np.bincount(noisy, minlength=5)
    assert counts[0] == 0
    np.testing.assert_allclose(counts[1:] / 20000, 0.25, atol=0.015)


def test_label_noise_is_seeded_by_seed_or_library_generator():
    y = np.arange(100) % 10
    a = data.add_label_noise(y, 0.3, 10, seed=1)[0]
    assert np.array_equal(a, data.add_label_noise(y, 0.3, 10, seed=1)[0])
    ms.manual_seed(4)
    b = data.add_label_noise(y, 0.3, 10)[0]
    ms.manual_seed(4)
    assert np.array_equal(b, data.add_label_noise(y, 0.3, 10)[0])


@pytest.mark.parametrize(
    "args, match",
    [
        ((np.arange(5), 1.5, 10), "fraction"),
        ((np.arange(5), -0.1, 10), "fraction"),
        ((np.arange(5), 0.1, 1), "num_classes"),
        ((np.arange(5), 0.1, 3), "labels must lie"),
        ((np.zeros(5), 0.1, 3), "integer"),
    ],
)
def test_label_noise_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        data.add_label_noise(*args)


def test_load_toy_depends_on_its_seed_only_and_leaves_the_library_stream_alone():
    ms.manual_seed(11)
    expected_next = ms.rng.generator().standard_normal()
    ms.manual_seed(11)
    a = data.load_toy("spirals", n_train=90, n_test=30, seed=3)
    assert ms.rng.generator().standard_normal() == expected_next
    b = data.load_toy("spirals", n_train=90, n_test=30, seed=3)
    assert np.array_equal(a.x_train, b.x_train) and a.x_test.shape == (30, 2)
    assert a.num_classes == 3 and a.name == "spirals"
    with pytest.raises(ValueError, match="name must be one of .moons., .spirals., .blobs."):
        data.load_toy("circles")
