"""ms.save / ms.load, and resuming training from a checkpoint bit for bit."""

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minisam as ms
import minisam.functional as F
from minisam import models, optim
from minisam.serialization import CheckpointError


def test_save_and_load_round_trip_nested_dicts_lists_arrays_and_typed_scalars(tmp_path):
    obj = {
        "model": {"0.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "1.n": np.array(3)},
        "epoch": 7,
        "lr": 0.1,
        "nesterov": True,
        "name": "run/one%",
        "nothing": None,
        "buffers": [None, np.ones(2), {"inner": [1, 2.5]}],
        "pair": (1, "b"),
        "empty": {},
        "none_yet": [],
        "rng": ms.get_rng_state(),
        "big": 2**62,
        "whole": 2.0,
        "key/with/slashes": {"%": 1},
    }
    ms.save(obj, tmp_path / "ck.npz")
    back = ms.load(tmp_path / "ck.npz")
    assert back.keys() == obj.keys()
    assert type(back["epoch"]) is int and back["epoch"] == 7
    assert type(back["whole"]) is float and back["whole"] == 2.0  # floats stay floats
    assert back["lr"] == 0.1 and back["nesterov"] is True and back["big"] == 2**62
    assert back["name"] == "run/one%" and back["nothing"] is None
    assert back["pair"] == (1, "b") and back["empty"] == {} and back["none_yet"] == []
    assert back["buffers"][0] is None and back["buffers"][2] == {"inner": [1, 2.5]}
    assert np.array_equal(back["buffers"][1], np.ones(2))
    w = back["model"]["0.weight"]
    assert type(w) is np.ndarray and w.dtype == np.float32
    assert np.array_equal(w, obj["model"]["0.weight"])
    assert back["rng"].dtype == np.uint64 and np.array_equal(back["rng"], obj["rng"])
    assert back["key/with/slashes"] == {"%": 1}


def test_save_takes_tensors_and_device_arrays_and_loads_host_numpy(tmp_path):
    t = ms.Tensor(np.array([1.5, 2.5]))
    ms.save({"t": t, "data": t.data}, tmp_path / "t.npz")
    back = ms.load(tmp_path / "t.npz")
    assert type(back["data"]) is np.ndarray and np.array_equal(back["t"], [1.5, 2.5])


def test_save_writes_exactly_the_path_given_without_adding_a_suffix(tmp_path):
    ms.save({"a": 1}, tmp_path / "checkpoint")
    assert (tmp_path / "checkpoint").exists() and not (tmp_path / "checkpoint.npz").exists()
    assert ms.load(tmp_path / "checkpoint") == {"a": 1}


def test_save_refuses_what_would_need_pickle(tmp_path):
    with pytest.raises(TypeError, match="object"):
        ms.save({"x": object()}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="object|cannot store"):
        ms.save({"x": np.array([1, "a", None], dtype=object)}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="keys must be strings"):
        ms.save({1: 2}, tmp_path / "x.npz")


def _write_damaged_files(tmp_path):
    ms.save({"model": {"w": np.arange(100.0)}}, tmp_path / "good.npz")
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF
    (tmp_path / "corrupted.npz").write_bytes(bytes(flipped))
    np.savez(tmp_path / "foreign.npz", weights=np.zeros(3))
    np.save(tmp_path / "single.npy", np.zeros(3))
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    (tmp_path / "empty.npz").write_bytes(b"")


@pytest.mark.parametrize(
    "name", ["truncated.npz", "corrupted.npz", "foreign.npz", "single.npy", "notes.txt", "empty.npz"]
)
def test_a_damaged_truncated_or_foreign_checkpoint_is_a_clear_error_naming_the_file(tmp_path, name):
    _write_damaged_files(tmp_path)
    with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
        ms.load(tmp_path / name)


def test_loading_a_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        ms.load(tmp_path / "nowhere.npz")


# ---- resuming training -------------------------------------------------------------------
def _mlp_setup():
    model = models.MLP([6, 16, 16, 3], dropout=0.3)
    base = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    opt = optim.XSAM(base, rho=0.1, steps=2, search_every=3)
    return model, opt, optim.CosineAnnealingLR(opt, T_max=8)


def _cnn_setup():
    model = models.CNN2d(image_size=8, channels=(3, 4), batch_norm=True, dropout=0.2, num_classes=3)
    base = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    opt = optim.XSAM(base, rho=0.1, search_every=2)
    return model, opt, optim.StepLR(opt, step_size=3, gamma=0.5)


def _batches(shape, n=8):
    r = np.random.default_rng(11)
    return [(r.standard_normal((10, *shape)).astype(np.float32), r.integers(0, 3, 10)) for _ in range(n)]


def _train(model, opt, sched, batches):
    for x, y in batches:
        inputs = ms.Tensor(x)
        opt.step(lambda inputs=inputs, y=y: F.cross_entropy(model(inputs), y))
        sched.step()


@pytest.mark.parametrize(
    "setup, shape",
    [(_mlp_setup, (6,)), (_cnn_setup, (1, 8, 8))],
    ids=["mlp-dropout-xsam-momentum", "cnn-batchnorm-dropout-xsam"],
)
def test_resume_from_checkpoint_is_bit_identical_to_training_straight_through(tmp_path, setup, shape):
    batches = _batches(shape)
    ms.manual_seed(0)
    straight = setup()
    _train(*straight, batches)

    ms.manual_seed(0)
    first = setup()
    _train(*first, batches[:4])
    model, opt, sched = first
    ms.save(
        {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "rng": ms.get_rng_state(),
        },
        tmp_path / "ck.npz",
    )

    ms.manual_seed(12345)  # a different stream and different initial weights
    model, opt, sched = setup()
    checkpoint = ms.load(tmp_path / "ck.npz")
    model.load_state_dict(checkpoint["model"])
    opt.load_state_dict(checkpoint["optimizer"])
    sched.load_state_dict(checkpoint["scheduler"])
    ms.set_rng_state(checkpoint["rng"])
    _train(model, opt, sched, batches[4:])

    expected, got = straight[0].state_dict(), model.state_dict()
    for name in expected:
        assert np.array_equal(expected[name], got[name]), f"{name} differs after resuming"
    assert opt.alpha == straight[1].alpha and opt.step_count == 8 and opt.lr == straight[1].lr
    for a, b in zip(straight[1].base.momentum_buffers, opt.base.momentum_buffers, strict=True):
        assert np.array_equal(a, b)


# ---- hardening (issue 10): refuse at save what cannot be loaded; failed saves leave nothing --
@pytest.mark.parametrize(
    "obj, says",
    [
        ({"": 5, "x": 1}, "non-empty strings"),
        ({"model": {"": np.zeros(2)}}, "non-empty strings"),
        ({"a\x00b": 1}, "without NUL"),
        ({"\udc80": 1}, "not valid Unicode"),
        ({"s": "ends in nul\x00"}, "ends in NUL"),
        ({"b": b"bytes"}, "cannot store bytes"),
        ({"big": 2**63}, "does not fit in int64"),
    ],
    ids=["empty-key-at-top", "empty-key-nested", "nul-in-key", "surrogate-key", "nul-ending-string",
         "bytes", "int-overflow"],
)  # fmt: skip
def test_save_refuses_what_it_could_not_load_back_and_writes_no_file(tmp_path, obj, says):
    with pytest.raises(ValueError, match=says):
        ms.save(obj, tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_a_container_that_contains_itself(tmp_path):
    loop = {"a": []}
    loop["a"].append(loop)
    with pytest.raises(ValueError, match="contains itself"):
        ms.save(loop, tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_save_names_the_users_path_leaves_no_partial_file_and_keeps_the_old_checkpoint(tmp_path):
    missing_dir = tmp_path / "no" / "such" / "dir" / "ck.npz"
    with pytest.raises(FileNotFoundError) as info:
        ms.save({"a": 1}, missing_dir)
    assert str(missing_dir) in str(info.value) and ".partial" not in str(info.value)

    (tmp_path / "target").mkdir()  # the rename onto a directory fails after the temp file is written
    with pytest.raises(OSError) as info:
        ms.save({"a": 1}, tmp_path / "target")
    assert "target" in str(info.value) and ".partial" not in str(info.value)
    assert [p.name for p in tmp_path.iterdir()] == ["target"]  # no "target.partial" left behind


def test_an_interrupted_save_keeps_the_previous_checkpoint_and_leaves_no_partial_file(tmp_path, monkeypatch):
    ms.save({"epoch": 1}, tmp_path / "ck.npz")

    def full_disk(file, **entries):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(OSError, match=r"ck\.npz.*No space left"):
        ms.save({"epoch": 2}, tmp_path / "ck.npz")
    monkeypatch.undo()
    assert ms.load(tmp_path / "ck.npz") == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]


@pytest.mark.parametrize("path", [3, None, "", ["a.npz"]])
def test_save_and_load_name_a_bad_path_argument(tmp_path, path):
    for call in (lambda: ms.save({"a": 1}, path), lambda: ms.load(path)):
        with pytest.raises(TypeError, match="path must be a file name"):
            call()


def test_load_refuses_an_int_entry_that_holds_a_float_rather_than_truncating_it(tmp_path):
    np.savez(tmp_path / "forged.npz", __minisam__=np.array("minisam-checkpoint-1"),
             **{"dict:": np.array(1), "int:epoch": np.array(2.7)})  # fmt: skip
    with pytest.raises(CheckpointError, match=r"forged\.npz.*int entry"):
        ms.load(tmp_path / "forged.npz")


def test_loading_a_directory_names_it(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        ms.load(tmp_path)


KEY_TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), min_size=1)


@settings(max_examples=60, deadline=None)
@given(keys=st.lists(KEY_TEXT, min_size=1, max_size=4, unique=True), data=st.data())
def test_any_non_empty_unicode_key_without_nul_round_trips(tmp_path_factory, keys, data):
    # "/" and "%" are escaped; ":" separates the tag; every other character goes into the zip as is
    obj = {k: {k: data.draw(st.integers(-(2**63), 2**63 - 1))} for k in keys}
    path = tmp_path_factory.mktemp("keys") / "k.npz"
    ms.save(obj, path)
    assert ms.load(path) == obj


def test_save_refuses_nesting_deeper_than_python_can_follow_and_writes_no_file(tmp_path):
    deep = inner = {}
    for _ in range(sys.getrecursionlimit() + 10):
        inner["a"] = {}
        inner = inner["a"]
    with pytest.raises(ValueError, match="nested too deeply"):
        ms.save(deep, tmp_path / "deep.npz")
    assert list(tmp_path.iterdir()) == []


def test_load_refuses_a_container_length_that_the_file_cannot_hold(tmp_path):
    # a damaged length must be an error, not an attempt to allocate a list of 10**12 items
    np.savez(tmp_path / "forged.npz", __minisam__=np.array("minisam-checkpoint-1"),
             **{"dict:": np.array(1), "list:a": np.array(10**12)})  # fmt: skip
    with pytest.raises(CheckpointError, match=r"forged\.npz.*claims 1000000000000 items"):
        ms.load(tmp_path / "forged.npz")
