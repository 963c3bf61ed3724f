"""Bad and edge inputs across the public API of layers, models, checkpoints, the backend,
gradcheck, the data helpers and the random state.

Each case is one call that must be refused. For every one the test checks three things:

1. the error is of the expected type (``ArgumentError`` is a ValueError and a TypeError at once);
2. the message names the argument (or key, or file) that was wrong;
3. nothing changed: parameters, buffers (BatchNorm's counter too), gradients, train/eval
   mode, the random stream, the backend, the default dtype, and every file in the folder.

The world a case may touch is built fresh for each case by ``world`` below.
"""

import math
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import minisam as ms
from minisam import backend, data, models, nn
from minisam.checks import ArgumentError
from minisam.gradcheck import GradcheckError, gradcheck
from minisam.serialization import CheckpointError

NAN, INF = math.nan, math.inf


# ---- the world a case may change, and a snapshot of all of it ------------------------------
@pytest.fixture
def world(tmp_path, monkeypatch):
    ms.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    for p in model.parameters():
        p.grad = np.full(p.shape, 0.25, dtype=p.dtype)
    x = ms.Tensor(np.linspace(-1, 1, 20).reshape(5, 4), requires_grad=True)
    x.grad = np.ones((5, 4), dtype=x.dtype)
    ms.save({"model": model.state_dict(), "epoch": 1}, tmp_path / "ck.npz")
    good = (tmp_path / "ck.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(good[: len(good) // 2])
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    np.savez(tmp_path / "foreign.npz", weights=np.zeros(3))
    (tmp_path / "a_folder").mkdir()
    conv, cnn1d, cnn2d = nn.Conv2d(3, 4, 3), models.CNN1d(), models.CNN2d(image_size=8)
    # BatchNorm and Dropout change state before the last layer can refuse the input
    late = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout(0.5), nn.Flatten(), nn.Linear(8, 3)
    )
    w = SimpleNamespace(
        model=model,
        conv=conv,
        cnn1d=cnn1d,
        cnn2d=cnn2d,
        late=late,
        state=model.state_dict(),  # a good state for load_state_dict cases to damage
        x=x,
        features=np.linspace(0, 1, 12, dtype=np.float32).reshape(6, 2),
        labels=np.array([0, 1, 2, 0, 1, 2]),
        dir=tmp_path,
        monkeypatch=monkeypatch,
    )
    ms.manual_seed(1)  # the stream every case must leave alone
    return w


def snapshot(w):
    arrays = {f"state {k}": v for k, v in w.model.state_dict().items()}
    arrays.update({f"grad {k}": np.array(p.grad) for k, p in w.model.named_parameters()})
    for name in ("conv", "cnn1d", "cnn2d", "late"):
        arrays.update({f"{name} {k}": v for k, v in getattr(w, name).state_dict().items()})
    arrays.update({
        "x": w.x.numpy(), "x.grad": np.array(w.x.grad), "features": w.features.copy(),
        "labels": w.labels.copy(), "rng": ms.get_rng_state(),
    })  # fmt: skip
    files = {p.name: (p.read_bytes() if p.is_file() else "folder") for p in sorted(w.dir.iterdir())}
    modes = [m.training for m in w.model.modules()]
    pending = getattr(backend, "_from_environment", None)  # a MINISAM_BACKEND request not yet acted on
    return arrays, files, modes, backend.name, pending, ms.get_default_dtype()


def assert_same(before, after):
    arrays_b, *rest_b = before
    arrays_a, *rest_a = after
    assert arrays_a.keys() == arrays_b.keys()
    for key in arrays_b:
        same = arrays_a[key].dtype == arrays_b[key].dtype and np.array_equal(
            arrays_a[key], arrays_b[key], equal_nan=arrays_b[key].dtype.kind == "f"
        )
        assert same, f"{key} changed"
    assert rest_a == rest_b, "files, train/eval modes, backend or default dtype changed"


# ---- the catalogue: (id, call(w), error type, text the message must contain) --------------
def case(id, call, error, names):
    return pytest.param(call, error, names, id=id)


LAYERS = [
    case("Linear in_features=-1", lambda w: nn.Linear(-1, 2), ArgumentError, "in_features"),
    case("Linear in_features=0", lambda w: nn.Linear(0, 2), ArgumentError, "in_features"),
    case("Linear in_features=2.5", lambda w: nn.Linear(2.5, 2), ArgumentError, "in_features"),
    case("Linear in_features='3'", lambda w: nn.Linear("3", 2), ArgumentError, "in_features"),
    case("Linear in_features=True", lambda w: nn.Linear(True, 2), ArgumentError, "in_features"),
    case("Linear out_features=None", lambda w: nn.Linear(3, None), ArgumentError, "out_features"),
    case("Linear out_features=nan", lambda w: nn.Linear(3, NAN), ArgumentError, "out_features"),
    case("Linear bias=1", lambda w: nn.Linear(3, 2, bias=1), ArgumentError, "bias"),
    case("Linear bias=None", lambda w: nn.Linear(3, 2, bias=None), ArgumentError, "bias"),
    case("Conv2d kernel_size=0", lambda w: nn.Conv2d(3, 4, 0), ArgumentError, "kernel_size"),
    case("Conv2d kernel_size=(3,)", lambda w: nn.Conv2d(3, 4, (3,)), ArgumentError, "kernel_size"),
    case("Conv2d kernel_size=3.0", lambda w: nn.Conv2d(3, 4, 3.0), ArgumentError, "kernel_size"),
    case("Conv2d stride=0", lambda w: nn.Conv2d(3, 4, 3, stride=0), ArgumentError, "stride"),
    case("Conv2d stride=(1, 0)", lambda w: nn.Conv2d(3, 4, 3, stride=(1, 0)), ArgumentError, "stride"),
    case("Conv2d padding=-1", lambda w: nn.Conv2d(3, 4, 3, padding=-1), ArgumentError, "padding"),
    case("Conv2d padding=1.5", lambda w: nn.Conv2d(3, 4, 3, padding=1.5), ArgumentError, "padding"),
    case("Conv2d in_channels=0", lambda w: nn.Conv2d(0, 4, 3), ArgumentError, "in_channels"),
    case("Conv2d out_channels=-4", lambda w: nn.Conv2d(3, -4, 3), ArgumentError, "out_channels"),
    case("Conv2d bias='no'", lambda w: nn.Conv2d(3, 4, 3, bias="no"), ArgumentError, "bias"),
    case("Conv1d kernel_size=(3, 3)", lambda w: nn.Conv1d(2, 3, (3, 3)), ArgumentError, "kernel_size"),
    case("Conv1d stride=-1", lambda w: nn.Conv1d(2, 3, 3, stride=-1), ArgumentError, "stride"),
    case("Conv1d padding=(1, 1)", lambda w: nn.Conv1d(2, 3, 3, padding=(1, 1)), ArgumentError, "padding"),
    case("MaxPool2d kernel_size=0", lambda w: nn.MaxPool2d(0), ArgumentError, "kernel_size"),
    case("MaxPool2d kernel_size='2'", lambda w: nn.MaxPool2d("2"), ArgumentError, "kernel_size"),
    case("MaxPool2d stride=0", lambda w: nn.MaxPool2d(2, stride=0), ArgumentError, "stride"),
    case("MaxPool2d kernel (2,2,2)", lambda w: nn.MaxPool2d((2, 2, 2)), ArgumentError, "kernel_size"),
    case("BatchNorm1d num_features=0", lambda w: nn.BatchNorm1d(0), ArgumentError, "num_features"),
    case("BatchNorm2d num_features=3.0", lambda w: nn.BatchNorm2d(3.0), ArgumentError, "num_features"),
    case("BatchNorm1d eps=-1", lambda w: nn.BatchNorm1d(3, eps=-1), ArgumentError, "eps"),
    case("BatchNorm1d eps=0", lambda w: nn.BatchNorm1d(3, eps=0), ArgumentError, "eps"),
    case("BatchNorm1d eps=nan", lambda w: nn.BatchNorm1d(3, eps=NAN), ArgumentError, "eps"),
    case("BatchNorm1d momentum=-0.1", lambda w: nn.BatchNorm1d(3, momentum=-0.1), ArgumentError, "momentum"),
    case("BatchNorm1d momentum=2", lambda w: nn.BatchNorm1d(3, momentum=2), ArgumentError, "momentum"),
    case("BatchNorm1d momentum=None", lambda w: nn.BatchNorm1d(3, momentum=None), ArgumentError, "momentum"),
    case("BatchNorm2d affine='yes'", lambda w: nn.BatchNorm2d(3, affine="yes"), ArgumentError, "affine"),
    case("Dropout p='0.5'", lambda w: nn.Dropout("0.5"), ArgumentError, "p must"),
    case("Dropout p=1.0", lambda w: nn.Dropout(1.0), ArgumentError, "p must"),
    case("Dropout p=-0.1", lambda w: nn.Dropout(-0.1), ArgumentError, "p must"),
    case("Dropout p=nan", lambda w: nn.Dropout(NAN), ArgumentError, "p must"),
    case("Dropout p=True", lambda w: nn.Dropout(True), ArgumentError, "p must"),
    case("LeakyReLU slope='0.1'", lambda w: nn.LeakyReLU("0.1"), ArgumentError, "negative_slope"),
    case("LeakyReLU slope=inf", lambda w: nn.LeakyReLU(INF), ArgumentError, "negative_slope"),
    case("Flatten start_dim=1.0", lambda w: nn.Flatten(1.0), ArgumentError, "start_dim"),
    case("Flatten end_dim='x'", lambda w: nn.Flatten(end_dim="x"), ArgumentError, "end_dim"),
    case("Sequential item not a Module", lambda w: nn.Sequential(nn.ReLU(), "relu"), TypeError, "item 1"),
    case("Module.train mode='yes'", lambda w: w.model.train("yes"), ArgumentError, "mode"),
    case("Module.train mode=0", lambda w: w.model.train(0), ArgumentError, "mode"),
]

MODELS = [
    case("MLP sizes=[]", lambda w: models.MLP([]), ArgumentError, "sizes"),
    case("MLP sizes=[4]", lambda w: models.MLP([4]), ArgumentError, "sizes"),
    case("MLP sizes='4,8'", lambda w: models.MLP("4,8"), ArgumentError, "sizes"),
    case("MLP sizes=None", lambda w: models.MLP(None), ArgumentError, "sizes"),
    case("MLP sizes=[4, 0]", lambda w: models.MLP([4, 0]), ArgumentError, "sizes[1]"),
    case("MLP sizes=[4, 8.5, 2]", lambda w: models.MLP([4, 8.5, 2]), ArgumentError, "sizes[1]"),
    case("MLP last size -2", lambda w: models.MLP([4, 8, -2]), ArgumentError, "sizes[2]"),
    case("MLP activation='gelu'", lambda w: models.MLP([4, 2], activation="gelu"), ArgumentError,
         "activation"),
    case("MLP activation=instance", lambda w: models.MLP([4, 2], activation=nn.ReLU()), ArgumentError,
         "activation"),
    case("MLP activation=3", lambda w: models.MLP([4, 2], activation=3), ArgumentError, "activation"),
    case("MLP dropout=1.0", lambda w: models.MLP([4, 8, 2], dropout=1.0), ArgumentError, "dropout"),
    case("MLP dropout=-0.2", lambda w: models.MLP([4, 8, 2], dropout=-0.2), ArgumentError, "dropout"),
    case("MLP dropout='0.1'", lambda w: models.MLP([4, 8, 2], dropout="0.1"), ArgumentError, "dropout"),
    case("CNN1d in_channels=0", lambda w: models.CNN1d(in_channels=0), ArgumentError, "in_channels"),
    case("CNN1d length=-3", lambda w: models.CNN1d(length=-3), ArgumentError, "length"),
    case("CNN1d channels=()", lambda w: models.CNN1d(channels=()), ArgumentError, "channels"),
    case("CNN1d channels=(16, -1)", lambda w: models.CNN1d(channels=(16, -1)), ArgumentError, "channels[1]"),
    case("CNN1d batch_norm=1", lambda w: models.CNN1d(batch_norm=1), ArgumentError, "batch_norm"),
    case("CNN1d num_classes=0", lambda w: models.CNN1d(num_classes=0), ArgumentError, "num_classes"),
    case("CNN2d image_size=2 for 2 pools", lambda w: models.CNN2d(image_size=2), ArgumentError, "image_size"),
    case("CNN2d image_size=0", lambda w: models.CNN2d(image_size=0), ArgumentError, "image_size"),
    case("CNN2d dropout=1.5", lambda w: models.CNN2d(dropout=1.5), ArgumentError, "dropout"),
    case("CNN2d channels='16'", lambda w: models.CNN2d(channels="16"), ArgumentError, "channels"),
    case("CNN2d num_classes=2.0", lambda w: models.CNN2d(num_classes=2.0), ArgumentError, "num_classes"),
    case("CNN2d in_channels=None", lambda w: models.CNN2d(in_channels=None), ArgumentError, "in_channels"),
]  # fmt: skip

FORWARD = [
    case("model(numpy array)", lambda w: w.model(np.zeros((5, 4))), TypeError, "wrap it"),
    case("model(list)", lambda w: w.model([[0.0] * 4] * 5), TypeError, "ms.Tensor"),
    case("model(float)", lambda w: w.model(3.0), TypeError, "input must be an ms.Tensor"),
    case("model(None)", lambda w: w.model(None), TypeError, "input must be an ms.Tensor"),
    case("model(x, x)", lambda w: w.model(w.x, w.x), TypeError, "one input"),
    case("model(x.data)", lambda w: w.model(w.x.data), TypeError, "wrap it"),
    case("Linear given 5 features", lambda w: w.model(ms.Tensor(np.zeros((5, 5)))), ValueError, "4 features"),
    case("BatchNorm given a batch of 1", lambda w: w.model(ms.Tensor(np.ones((1, 4)))), ValueError, "input"),
    case("BatchNorm given 4-D input", lambda w: w.model[1](ms.Tensor(np.ones((2, 8, 3, 3)))), ValueError,
         "dimensions"),
    case("Dropout(numpy array)", lambda w: w.model[3](np.ones((5, 8))), TypeError, "wrap it"),
    case("Conv2d given 2 channels", lambda w: w.conv(ms.Tensor(np.zeros((1, 2, 5, 5)))), ValueError, "C = 3"),
    case("Flatten start_dim out of range", lambda w: nn.Flatten(5)(w.x), ValueError, "start_dim"),
    case("CNN1d given length 41", lambda w: w.cnn1d(ms.Tensor(np.zeros((2, 41)))), ValueError, "length=40"),
    case("CNN2d given 9x9 images", lambda w: w.cnn2d(ms.Tensor(np.zeros((2, 1, 9, 9)))), ValueError,
         "image_size=8"),
    case("refused by the last layer, after BatchNorm and Dropout ran",
         lambda w: w.late(ms.Tensor(np.ones((2, 1, 5, 5)))), ValueError, "8 features"),
    case("refused by a deeper conv, after BatchNorm ran",
         lambda w: nn.Sequential(w.late[1], w.conv)(ms.Tensor(np.ones((2, 2, 4, 4)))), ValueError, "C = 3"),
    case("MaxPool2d kernel larger than input", lambda w: nn.MaxPool2d(5)(ms.Tensor(np.zeros((1, 1, 4, 4)))),
         ValueError, "kernel"),
]  # fmt: skip


def damaged(key, value):
    """A load_state_dict call with one entry of a good state replaced (or removed, value=...)."""

    def call(w):
        state = dict(w.state)
        if value is ...:
            del state[key]
        else:
            state[key] = value
        w.model.load_state_dict(state)

    return call


LOAD_STATE = [
    case("state is a list", lambda w: w.model.load_state_dict(list(w.state.items())), ArgumentError, "state"),
    case("state is None", lambda w: w.model.load_state_dict(None), ArgumentError, "state"),
    case("missing key", damaged("1.running_var", ...), KeyError, "1.running_var"),
    case("unexpected key", lambda w: w.model.load_state_dict({**w.state, "9.weight": np.zeros(2)}),
         KeyError, "9.weight"),
    case("wrong shape", damaged("0.weight", np.zeros((8, 5))), ValueError, "'0.weight' has shape"),
    case("counter 2.7", damaged("1.num_batches_tracked", np.array(2.7)), ValueError, "1.num_batches_tracked"),
    case("counter NaN", damaged("1.num_batches_tracked", np.array(NAN)), ValueError, "1.num_batches_tracked"),
    case("counter -1", damaged("1.num_batches_tracked", -1), ValueError, "1.num_batches_tracked"),
    case("counter 2**64-1", damaged("1.num_batches_tracked", np.array(2**64 - 1, np.uint64)), ValueError,
         "1.num_batches_tracked"),
    case("counter True", damaged("1.num_batches_tracked", True), ValueError, "1.num_batches_tracked"),
    case("object array of None", damaged("1.running_mean", np.array([None] * 8, dtype=object)), ValueError,
         "1.running_mean"),
    case("complex weight", damaged("0.weight", np.ones((8, 4)) * 1j), ValueError, "0.weight"),
    case("negative running variance", damaged("1.running_var", -np.ones(8)), ValueError, "1.running_var"),
    case("NaN in a weight", damaged("4.weight", np.full((3, 8), NAN)), ValueError, "4.weight"),
    case("inf in a bias", damaged("4.bias", np.array([0.0, INF, 0.0])), ValueError, "4.bias"),
    case("1e300 into float32", damaged("4.bias", np.array([0.0, 1e300, 0.0])), ValueError, "4.bias"),
    case("strings", damaged("4.bias", np.array(["a", "b", "c"])), ValueError, "4.bias"),
    case("booleans", damaged("4.bias", np.array([True, False, True])), ValueError, "4.bias"),
    case("None value", damaged("4.bias", None), ValueError, "4.bias"),
    case("dict value", damaged("4.bias", {"a": 1}), ValueError, "4.bias"),
    case("Python int too big", damaged("4.bias", [10**30, 0, 0]), ValueError, "4.bias"),
]  # fmt: skip


def hide_cupy(w):
    w.monkeypatch.setitem(sys.modules, "cupy", None)


loop = {"a": []}
loop["a"].append(loop)

SAVE = [
    case("empty key at the top", lambda w: ms.save({"": 5, "x": 1}, w.dir / "new.npz"), ArgumentError, "''"),
    case("empty key nested", lambda w: ms.save({"m": {"": 1}}, w.dir / "new.npz"), ArgumentError, "'m'"),
    case("int key", lambda w: ms.save({1: 2}, w.dir / "new.npz"), ArgumentError, "keys must be strings"),
    case("tuple key", lambda w: ms.save({("a",): 2}, w.dir / "new.npz"), ArgumentError, "('a',)"),
    case("NUL in key", lambda w: ms.save({"a\x00": 2}, w.dir / "new.npz"), ArgumentError, "NUL"),
    case("surrogate key", lambda w: ms.save({"\udc80": 2}, w.dir / "new.npz"), ArgumentError, "Unicode"),
    case("string ending in NUL", lambda w: ms.save({"s": "x\x00"}, w.dir / "new.npz"), ArgumentError, "'s'"),
    case("bytes value", lambda w: ms.save({"b": b"x"}, w.dir / "new.npz"), ArgumentError, "'b'"),
    case("object value", lambda w: ms.save({"o": object()}, w.dir / "new.npz"), ArgumentError, "'o'"),
    case("set value", lambda w: ms.save({"s": {1, 2}}, w.dir / "new.npz"), ArgumentError, "'s'"),
    case("object array", lambda w: ms.save({"o": np.array([None])}, w.dir / "new.npz"), ArgumentError, "'o'"),
    case("self-containing", lambda w: ms.save(loop, w.dir / "new.npz"), ArgumentError, "contains itself"),
    case("int beyond int64", lambda w: ms.save({"n": 2**64}, w.dir / "new.npz"), ArgumentError, "'n'"),
    case("bad value over an old checkpoint", lambda w: ms.save({"o": object()}, w.dir / "ck.npz"),
         ArgumentError, "'o'"),
    case("save path=3", lambda w: ms.save({"a": 1}, 3), ArgumentError, "path"),
    case("save path=None", lambda w: ms.save({"a": 1}, None), ArgumentError, "path"),
    case("save path=''", lambda w: ms.save({"a": 1}, ""), ArgumentError, "path"),
    case("path in a missing folder", lambda w: ms.save({"a": 1}, w.dir / "nope" / "x.npz"), FileNotFoundError,
         "nope"),
    case("path is a folder", lambda w: ms.save({"a": 1}, w.dir / "a_folder"), OSError, "a_folder"),
]  # fmt: skip

LOAD = [
    case("missing file", lambda w: ms.load(w.dir / "nowhere.npz"), FileNotFoundError, "nowhere.npz"),
    case("a folder", lambda w: ms.load(w.dir / "a_folder"), IsADirectoryError, "a_folder"),
    case("empty file", lambda w: ms.load(w.dir / "empty.npz"), CheckpointError, "empty.npz"),
    case("text file", lambda w: ms.load(w.dir / "notes.txt"), CheckpointError, "notes.txt"),
    case("foreign npz", lambda w: ms.load(w.dir / "foreign.npz"), CheckpointError, "foreign.npz"),
    case("truncated", lambda w: ms.load(w.dir / "truncated.npz"), CheckpointError, "truncated.npz"),
    case("load path=3", lambda w: ms.load(3), ArgumentError, "path"),
    case("load path=None", lambda w: ms.load(None), ArgumentError, "path"),
]

BACKEND = [
    case("use('tpu')", lambda w: backend.use("tpu"), ArgumentError, "backend must be one of"),
    case("use('')", lambda w: backend.use(""), ArgumentError, "backend"),
    case("use(None)", lambda w: backend.use(None), ArgumentError, "backend"),
    case("use(3)", lambda w: backend.use(3), ArgumentError, "backend"),
    case("use(['numpy'])", lambda w: backend.use(["numpy"]), ArgumentError, "backend"),
    case("use('cupy') without CuPy", lambda w: (hide_cupy(w), backend.use("cupy")), backend.BackendError,
         "CuPy backend"),
]  # fmt: skip


def square(x):
    return x * x


def fails_after_two_calls():
    calls = []

    def fn(x):
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("fn broke mid-check")
        return (x * x).sum()

    return fn


GRADCHECK = [
    case("fn not callable", lambda w: gradcheck("square", [w.x]), ArgumentError, "fn"),
    case("inputs a bare Tensor", lambda w: gradcheck(square, w.x), ArgumentError, "inputs"),
    case("inputs a numpy array", lambda w: gradcheck(square, [w.x.data]), ArgumentError, "inputs[0]"),
    case("inputs empty", lambda w: gradcheck(square, []), ArgumentError, "inputs"),
    case("no input requires grad", lambda w: gradcheck(square, [ms.Tensor([1.0])]), ArgumentError, "inputs"),
    case("eps=0", lambda w: gradcheck(square, [w.x], eps=0), ArgumentError, "eps"),
    case("eps=-1e-5", lambda w: gradcheck(square, [w.x], eps=-1e-5), ArgumentError, "eps"),
    case("eps=nan", lambda w: gradcheck(square, [w.x], eps=NAN), ArgumentError, "eps"),
    case("rtol=-1", lambda w: gradcheck(square, [w.x], rtol=-1), ArgumentError, "rtol"),
    case("atol='0'", lambda w: gradcheck(square, [w.x], atol="0"), ArgumentError, "atol"),
    case("seed=-1", lambda w: gradcheck(square, [w.x], seed=-1), ArgumentError, "seed"),
    case("fn returns an array", lambda w: gradcheck(lambda x: x.data, [w.x]), TypeError,
         "must return a Tensor"),
    case("fn raises mid-check", lambda w: gradcheck(fails_after_two_calls(), [w.x]), RuntimeError,
         "fn broke"),
    case("float32 failure", lambda w: gradcheck(lambda x: (x * x.tanh()).sum(axis=0), [w.x]), GradcheckError,
         "set_default_dtype(np.float64)"),
]  # fmt: skip


def loader(w, **changes):
    kwargs = dict(x=w.features, y=w.labels, batch_size=2) | changes
    return data.DataLoader(**kwargs)


DATA = [
    case("DataLoader batch_size=0", lambda w: loader(w, batch_size=0), ArgumentError, "batch_size"),
    case("DataLoader batch_size=2.5", lambda w: loader(w, batch_size=2.5), ArgumentError, "batch_size"),
    case("DataLoader batch_size=True", lambda w: loader(w, batch_size=True), ArgumentError, "batch_size"),
    case("DataLoader batch_size=None", lambda w: loader(w, batch_size=None), ArgumentError, "batch_size"),
    case("DataLoader shuffle='yes'", lambda w: loader(w, shuffle="yes"), ArgumentError, "shuffle"),
    case("DataLoader shuffle=1", lambda w: loader(w, shuffle=1), ArgumentError, "shuffle"),
    case("DataLoader drop_last=None", lambda w: loader(w, drop_last=None), ArgumentError, "drop_last"),
    case("DataLoader y floats", lambda w: loader(w, y=w.labels * 1.0), TypeError, "labels y"),
    case("DataLoader y 2-D", lambda w: loader(w, y=w.labels[:, None]), ValueError, "labels y"),
    case("DataLoader lengths differ", lambda w: loader(w, y=w.labels[:5]), ValueError, "same number"),
    case("DataLoader no examples", lambda w: loader(w, x=w.features[:0], y=w.labels[:0]), ValueError,
         "no examples"),
    case("DataLoader x None", lambda w: loader(w, x=None), ArgumentError, "inputs x"),
    case("DataLoader x strings", lambda w: loader(w, x=np.array(["a"] * 6)), ArgumentError, "inputs x"),
    case("two_moons n=1", lambda w: data.two_moons(1), ArgumentError, "n must"),
    case("two_moons n=2.5", lambda w: data.two_moons(2.5), ArgumentError, "n must"),
    case("two_moons noise=-1", lambda w: data.two_moons(10, noise=-1), ArgumentError, "noise"),
    case("two_moons noise=nan", lambda w: data.two_moons(10, noise=NAN), ArgumentError, "noise"),
    case("two_moons noise='0.1'", lambda w: data.two_moons(10, noise="0.1"), ArgumentError, "noise"),
    case("spirals classes=1", lambda w: data.spirals(10, classes=1), ArgumentError, "classes"),
    case("spirals n=0", lambda w: data.spirals(0), ArgumentError, "n must"),
    case("gaussian_blobs centers=0", lambda w: data.gaussian_blobs(10, centers=0), ArgumentError, "centers"),
    case("gaussian_blobs centers 1-D", lambda w: data.gaussian_blobs(10, centers=np.zeros(3)), ArgumentError,
         "centers"),
    case("gaussian_blobs centers NaN", lambda w: data.gaussian_blobs(10, centers=[[NAN, 0.0]]), ArgumentError,
         "centers"),
    case("gaussian_blobs centers True", lambda w: data.gaussian_blobs(10, centers=True), ArgumentError,
         "centers"),
    case("gaussian_blobs std=-1", lambda w: data.gaussian_blobs(10, std=-1), ArgumentError, "std"),
    case("gaussian_blobs dim=0", lambda w: data.gaussian_blobs(10, dim=0), ArgumentError, "dim"),
    case("gaussian_blobs dim=-1 with centres", lambda w: data.gaussian_blobs(10, [[0.0, 1.0]], dim=-1),
         ArgumentError, "dim"),
    case("load_toy name='circles'", lambda w: data.load_toy("circles"), ArgumentError, "name"),
    case("load_toy name=None", lambda w: data.load_toy(None), ArgumentError, "name"),
    case("load_toy n_train=0", lambda w: data.load_toy("moons", n_train=0), ArgumentError, "n_train"),
    case("load_toy n_test=1.5", lambda w: data.load_toy("moons", n_test=1.5), ArgumentError, "n_test"),
    case("load_toy seed=-1", lambda w: data.load_toy("moons", seed=-1), ArgumentError, "seed"),
    case("load_toy noise=-0.1", lambda w: data.load_toy("moons", noise=-0.1), ArgumentError, "noise"),
    case("label noise fraction=1.5", lambda w: data.add_label_noise(w.labels, 1.5, 3), ArgumentError,
         "fraction"),
    case("label noise fraction=nan", lambda w: data.add_label_noise(w.labels, NAN, 3), ArgumentError,
         "fraction"),
    case("label noise fraction='0.1'", lambda w: data.add_label_noise(w.labels, "0.1", 3), ArgumentError,
         "fraction"),
    case("label noise num_classes=1", lambda w: data.add_label_noise(w.labels, 0.1, 1), ArgumentError,
         "num_classes"),
    case("label noise labels out of range", lambda w: data.add_label_noise(w.labels, 0.1, 2), ValueError,
         "labels must lie"),
    case("label noise float labels", lambda w: data.add_label_noise(w.labels * 1.0, 0.1, 3), ValueError,
         "y must"),
    case("label noise seed=-1", lambda w: data.add_label_noise(w.labels, 0.1, 3, seed=-1), ArgumentError,
         "seed"),
    case("load_mnist1d standardize='yes'", lambda w: data.load_mnist1d(standardize="yes"), ArgumentError,
         "standardize"),
    case("load_mnist1d channels=1", lambda w: data.load_mnist1d(channels=1), ArgumentError, "channels"),
    case("load_mnist1d validation=1.5", lambda w: data.load_mnist1d(validation=1.5), ValueError,
         "validation"),
    case("load_mnist1d validation=-1", lambda w: data.load_mnist1d(validation=-1), ValueError, "validation"),
    case("load_digits validation=True", lambda w: data.load_digits(validation=True), TypeError, "validation"),
    case("load_digits validation=10**6", lambda w: data.load_digits(validation=10**6), ValueError,
         "validation"),
]  # fmt: skip


def good_state():
    return ms.get_rng_state()


def edited_state(word, value):
    def call(w):
        state = ms.get_rng_state()
        state[word] = value
        ms.set_rng_state(state)

    return call


RNG = [
    case("manual_seed(-1)", lambda w: ms.manual_seed(-1), ArgumentError, "seed"),
    case("manual_seed(1.5)", lambda w: ms.manual_seed(1.5), ArgumentError, "seed"),
    case("manual_seed(True)", lambda w: ms.manual_seed(True), ArgumentError, "seed"),
    case("manual_seed('3')", lambda w: ms.manual_seed("3"), ArgumentError, "seed"),
    case("manual_seed(None)", lambda w: ms.manual_seed(None), ArgumentError, "seed"),
    case("set_rng_state(None)", lambda w: ms.set_rng_state(None), ArgumentError, "state"),
    case("set_rng_state(list of 2)", lambda w: ms.set_rng_state([1, 2]), ArgumentError, "state"),
    case("set_rng_state(int64 words)", lambda w: ms.set_rng_state(good_state().astype(np.int64)),
         ArgumentError, "state"),
    case("set_rng_state(ragged list)", lambda w: ms.set_rng_state([[1, 2], [3]]), ArgumentError, "state"),
    case("set_rng_state(list with -1)", lambda w: ms.set_rng_state([-1, 0, 0, 1, 0, 0]), ArgumentError,
         "state"),
    case("set_rng_state(5 words)", lambda w: ms.set_rng_state(good_state()[:5]), ArgumentError, "state"),
    case("set_rng_state even increment", edited_state(3, 2), ArgumentError, "state"),
    case("set_rng_state flag 5", edited_state(4, 5), ArgumentError, "state"),
    case("set_rng_state draw 2**40", edited_state(5, 2**40), ArgumentError, "state"),
]  # fmt: skip

CATALOGUE = LAYERS + MODELS + FORWARD + LOAD_STATE + SAVE + LOAD + BACKEND + GRADCHECK + DATA + RNG


@pytest.mark.parametrize("call, error, names", CATALOGUE)
def test_bad_input_is_refused_with_a_named_error_and_changes_nothing(world, call, error, names):
    before = snapshot(world)
    with pytest.raises(error) as info:
        call(world)
    assert names in str(info.value), f"the message does not mention {names!r}: {info.value}"
    assert_same(before, snapshot(world))


def test_the_catalogue_holds_more_than_a_hundred_cases():
    assert len(CATALOGUE) > 100
    assert len({p.id for p in CATALOGUE}) == len(CATALOGUE)  # every case has its own name


def test_gradcheck_failing_in_float32_on_a_correct_op_says_to_use_float64():
    # x·tanh(x) has a correct backward; in float32 central differences are too coarse for it
    x = ms.Tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
    assert x.dtype == np.float32
    with pytest.raises(GradcheckError, match=r"float32.*ms\.set_default_dtype\(np\.float64\)"):
        gradcheck(lambda x: (x * x.tanh()).sum(axis=0), [x])


def test_gradcheck_failing_in_float64_gives_no_precision_advice(float64):
    x = ms.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda x: x * x * x, [x], eps=1.0)  # for x³ a step of 1 is off by eps² = 1: a true failure
    assert "set_default_dtype" not in str(info.value)


def test_set_rng_state_takes_the_six_words_as_a_list_of_python_integers_too():
    state = ms.get_rng_state()
    expected = ms.rng.generator().random(3)
    ms.set_rng_state([int(v) for v in state])  # e.g. after a trip through JSON
    np.testing.assert_array_equal(ms.rng.generator().random(3), expected)


# ---- the same kinds, systematically: every numeric or flag argument x every kind of bad value --
BAD_VALUES = {
    "count >= 1": [-1, 0, 2.5, "3", True, None, NAN, INF, [], np.float32(2.0), 1j, np.int64(-2)],
    "count >= 0": [-1, 2.5, "3", True, None, NAN, [], 1j],
    "probability in [0, 1)": [-0.1, 1.0, 1.5, "0.5", True, None, NAN, INF, [], 1j],
    "number > 0": [-1, 0, "1e-5", True, None, NAN, INF, [], 1j],
    "number >= 0": [-1, "0.1", True, None, NAN, INF, [], 1j],
    "number in [0, 1]": [-0.1, 1.5, "0.1", True, None, NAN, INF, 1j],
    "finite number": ["0.1", True, None, NAN, INF, 1j],
    "integer": [1.0, "1", True, None, NAN],
    "flag": [0, 1, "yes", None, 2.0, []],
}

COUNT, COUNT0, PROB, POSITIVE = "count >= 1", "count >= 0", "probability in [0, 1)", "number > 0"
SCALE, UNIT, REAL, INTEGER, FLAG = "number >= 0", "number in [0, 1]", "finite number", "integer", "flag"
CONV = {
    "in_channels": COUNT,
    "out_channels": COUNT,
    "kernel_size": COUNT,
    "stride": COUNT,
    "padding": COUNT0,
    "bias": FLAG,
}
BATCHNORM = {"num_features": COUNT, "eps": POSITIVE, "momentum": UNIT, "affine": FLAG}

# (callable, arguments that work, {argument: kind}, arguments for which None means "the default")
SIGNATURES = [
    (nn.Linear, dict(in_features=3, out_features=2), {"in_features": COUNT, "out_features": COUNT,
     "bias": FLAG}, ()),
    (nn.Conv1d, dict(in_channels=2, out_channels=3, kernel_size=3), CONV, ()),
    (nn.Conv2d, dict(in_channels=2, out_channels=3, kernel_size=3), CONV, ()),
    (nn.MaxPool2d, dict(kernel_size=2), {"kernel_size": COUNT, "stride": COUNT}, ("stride",)),
    (nn.BatchNorm1d, dict(num_features=3), BATCHNORM, ()),
    (nn.BatchNorm2d, dict(num_features=3), BATCHNORM, ()),
    (nn.Dropout, dict(), {"p": PROB}, ()),
    (nn.LeakyReLU, dict(), {"negative_slope": REAL}, ()),
    (nn.Flatten, dict(), {"start_dim": INTEGER, "end_dim": INTEGER}, ()),
    (models.MLP, dict(sizes=[4, 8, 2]), {"dropout": PROB}, ()),
    (models.CNN1d, dict(), {"in_channels": COUNT, "length": COUNT, "num_classes": COUNT,
     "batch_norm": FLAG}, ()),
    (models.CNN2d, dict(image_size=8), {"in_channels": COUNT, "image_size": COUNT, "num_classes": COUNT,
     "batch_norm": FLAG, "dropout": PROB}, ()),
    (data.two_moons, dict(n=10), {"n": COUNT, "noise": SCALE}, ()),
    (data.spirals, dict(n=10), {"n": COUNT, "noise": SCALE}, ()),
    (data.gaussian_blobs, dict(n=10), {"n": COUNT, "std": SCALE, "dim": COUNT, "centers": COUNT}, ()),
    (data.load_toy, dict(name="moons", n_train=10, n_test=10), {"n_train": COUNT, "n_test": COUNT,
     "seed": COUNT0, "noise": SCALE}, ("noise",)),
    (data.add_label_noise, dict(y=np.array([0, 1, 2]), fraction=0.5, num_classes=3),
     {"fraction": UNIT, "seed": COUNT0}, ("seed",)),
    (data.DataLoader, dict(x=np.zeros((4, 2)), y=np.arange(4), batch_size=2), {"batch_size": COUNT,
     "shuffle": FLAG, "drop_last": FLAG}, ()),
]  # fmt: skip

SWEEP = [
    pytest.param(call, {**good, argument: value}, argument, id=f"{call.__name__}({argument}={value!r})")
    for call, good, arguments, none_means_default in SIGNATURES
    for argument, kind in arguments.items()
    for value in BAD_VALUES[kind]
    if not (value is None and argument in none_means_default)
]


@pytest.mark.parametrize("call, kwargs, argument", SWEEP)
def test_every_argument_refuses_every_kind_of_bad_value_by_name_and_draws_nothing(call, kwargs, argument):
    rng_state = ms.get_rng_state()
    with pytest.raises(ArgumentError) as info:
        call(**kwargs)
    assert f"{argument} must" in str(info.value), info.value
    assert np.array_equal(ms.get_rng_state(), rng_state)


def test_the_sweep_covers_every_argument_with_every_bad_value_of_its_kind():
    assert len(SWEEP) > 500


# ---- edge values that are valid: accepted, and stored as the plain Python value ------------
@pytest.mark.parametrize(
    "build, check",
    [
        (lambda: nn.Linear(np.int64(3), np.int32(2)), lambda m: (m.in_features, m.out_features) == (3, 2)),
        (lambda: nn.Linear(3, 2, bias=np.bool_(False)), lambda m: m.bias is None),
        (lambda: nn.Dropout(0), lambda m: m.p == 0.0 and type(m.p) is float),
        (lambda: nn.Dropout(np.float32(0.25)), lambda m: m.p == 0.25 and type(m.p) is float),
        (lambda: nn.BatchNorm1d(3, momentum=0), lambda m: m.momentum == 0.0),
        (lambda: nn.BatchNorm1d(3, momentum=1), lambda m: m.momentum == 1.0),
        (lambda: nn.BatchNorm2d(3, eps=np.array(1e-3)), lambda m: m.eps == 1e-3 and type(m.eps) is float),
        (lambda: nn.Conv2d(3, 4, [3, 5], stride=(1, 2), padding=[0, 1]),
         lambda m: (m.kernel_size, m.stride, m.padding) == ((3, 5), (1, 2), (0, 1))),
        (lambda: nn.Conv1d(3, 4, (5,), stride=2), lambda m: (m.kernel_size, m.stride) == ((5,), 2)),
        (lambda: nn.MaxPool2d((2, 3)), lambda m: (m.kernel_size, m.stride) == ((2, 3), None)),
        (lambda: nn.LeakyReLU(-0.5), lambda m: m.negative_slope == -0.5),
        (lambda: nn.Flatten(-3, -1), lambda m: (m.start_dim, m.end_dim) == (-3, -1)),
        (lambda: models.MLP((4, 8, 2)), lambda m: m.sizes == [4, 8, 2]),
        (lambda: models.MLP(np.array([4, 8, 2])), lambda m: m.sizes == [4, 8, 2]),
        (lambda: models.MLP(range(4, 1, -1), activation="Tanh"), lambda m: isinstance(m[1], nn.Tanh)),
        (lambda: models.MLP([4, 8, 2], activation=nn.Sigmoid), lambda m: isinstance(m[1], nn.Sigmoid)),
        (lambda: models.CNN2d(image_size=2, channels=[8]), lambda m: m[-1].in_features == 8),
        (lambda: models.CNN1d(length=1), lambda m: m.length == 1),
        (lambda: data.DataLoader(np.zeros((3, 2)), [0, 1, 2], batch_size=np.int32(5)), lambda d: len(d) == 1),
        (lambda: data.load_toy("MOONS", n_train=3, n_test=2), lambda d: d.name == "moons"),
        (lambda: data.add_label_noise([0, 1, 1], 1, 2, seed=np.uint8(3)), lambda r: r[1].all()),
        (lambda: data.gaussian_blobs(4, centers=np.int64(2), std=0),
         lambda r: len(np.unique(r[0], axis=0)) == 2),
    ],
)  # fmt: skip
def test_valid_edge_values_are_accepted_as_plain_python_values(build, check):
    assert check(build())


def test_numpy_integer_seeds_are_seeds():
    ms.manual_seed(np.uint64(7))
    a = ms.rng.generator().random()
    ms.manual_seed(7)
    assert ms.rng.generator().random() == a
