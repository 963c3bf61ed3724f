"""Checkpoints: nested dicts of arrays and numbers in one ``.npz`` file, without pickle.

    ms.save({"model": model.state_dict(), "optim": opt.state_dict(),
             "rng": ms.get_rng_state(), "epoch": 3}, "run.npz")
    checkpoint = ms.load("run.npz")          # the same structure; arrays come back as NumPy

A pickle can run arbitrary code when it is loaded, so minisam never writes or reads one
(``allow_pickle=False``). Instead the nested structure is flattened: every value becomes
one array in the ``.npz``, named by a type tag and the path of keys that leads to it,

    "dict:"                      the root is a dict (value: its number of entries)
    "dict:model"                 obj["model"] is a dict
    "array:model/0.weight"       obj["model"]["0.weight"], an array
    "int:epoch"                  obj["epoch"], stored as int64, loaded as a Python int
    "list:optim/momentum"        a list (value: its length); its items are ".../0", ".../1"

The tag keeps ints ints and floats floats, and records empty containers and ``None``.
Keys must be strings; "/" and "%" inside a key are escaped as "%2F" and "%25". A marker
entry identifies the file as minisam's, so a foreign ``.npz`` is refused by name.
"""

from __future__ import annotations

import contextlib
import os
import zipfile

import numpy as np

from . import backend
from .checks import ArgumentError
from .tensor import Tensor

FORMAT = "minisam-checkpoint-1"
_MARKER = "__minisam__"
_CONTAINERS = {"dict": dict, "list": list, "tuple": tuple}
_MAX_NAME = 65535 - len(".npy")  # the zip format stores a name's length in 16 bits


class CheckpointError(ValueError):
    """A file is not a readable minisam checkpoint (damaged, truncated or foreign)."""


def _escape(key: str) -> str:
    return key.replace("%", "%25").replace("/", "%2F")


def _unescape(part: str) -> str:
    return part.replace("%2F", "/").replace("%25", "%")


def _where(path: str) -> str:
    return repr(path) if path else "the top level"


def _check_key(key, path: str) -> str:
    """A dictionary key that survives the trip through a zip entry name, escaped."""
    if not isinstance(key, str):
        raise ArgumentError(
            f"ms.save: dictionary keys must be strings, got {key!r} ({type(key).__name__}) at {_where(path)}"
        )
    if key == "" or "\x00" in key:
        # "" would be confused with its parent container, and zip names end at a NUL byte
        raise ArgumentError(
            f"ms.save: dictionary keys must be non-empty strings without NUL characters, "
            f"got {key!r} at {_where(path)}"
        )
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise ArgumentError(
            f"ms.save: dictionary key {key!r} at {_where(path)} is not valid Unicode"
        ) from None
    return _escape(key)


def _flatten(obj, path: str, out: dict, open_containers=frozenset()) -> None:
    """Add one entry per value (and per container) of ``obj`` to ``out``; refuse, before
    anything is written, every value that could not be loaded back exactly."""
    if isinstance(obj, (dict, list, tuple)):
        if id(obj) in open_containers:
            raise ArgumentError(f"ms.save: the container at {_where(path)} contains itself")
        inside = open_containers | {id(obj)}
    if isinstance(obj, dict):
        out[f"dict:{path}"] = np.array(len(obj), dtype=np.int64)
        for key, value in obj.items():
            escaped = _check_key(key, path)
            _flatten(value, f"{path}/{escaped}" if path else escaped, out, inside)
        return
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        out[f"{kind}:{path}"] = np.array(len(obj), dtype=np.int64)
        for i, value in enumerate(obj):
            _flatten(value, f"{path}/{i}" if path else str(i), out, inside)
        return
    if obj is None:
        out[f"none:{path}"] = np.zeros(0, dtype=np.int8)
    elif isinstance(obj, bool):  # before int: bool is a subclass of int
        out[f"bool:{path}"] = np.array(obj)
    elif isinstance(obj, int):
        if not -(2**63) <= obj < 2**63:
            raise ArgumentError(f"ms.save: the integer at {_where(path)} does not fit in int64: {obj}")
        out[f"int:{path}"] = np.array(obj, dtype=np.int64)
    elif isinstance(obj, float):
        out[f"float:{path}"] = np.array(obj, dtype=np.float64)
    elif isinstance(obj, str):
        stored = np.array(obj, dtype=np.str_)
        if stored.item() != obj:  # NumPy drops trailing NUL characters from strings
            raise ArgumentError(f"ms.save: the string at {_where(path)} ends in NUL characters: {obj!r}")
        out[f"str:{path}"] = stored
    else:
        data = obj.data if isinstance(obj, Tensor) else obj
        try:
            array = None if isinstance(data, (bytes, bytearray)) else np.asarray(backend.to_host(data))
        except Exception:
            array = None
        if array is None or array.dtype.kind in "OV":
            raise ArgumentError(
                f"ms.save: cannot store {type(obj).__name__} at {_where(path)}; "
                "expected dicts, lists, arrays, numbers, strings, booleans or None"
            )
        out[f"array:{path}"] = array


def _file_path(who: str, path) -> str:
    """``path`` (str, bytes or os.PathLike) as a non-empty str, or an error naming it."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise ArgumentError(f"{who}: path must be a file name (str or pathlib.Path), got {path!r}")
    path = os.fsdecode(os.fspath(path))
    if not path:
        raise ArgumentError(f"{who}: path must be a file name, got an empty string")
    return path


def save(obj, path) -> None:
    """Write ``obj`` (nested dicts/lists/tuples of arrays, numbers, str, bool, None) to
    ``path`` as one ``.npz``. The file is written beside ``path`` and then renamed into
    place, so an interrupted save never destroys the previous checkpoint; a failed save
    leaves nothing behind."""
    path = _file_path("ms.save", path)
    if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        raise ArgumentError(
            f"ms.save: {path!r} exists and is not a regular file (a pipe or a device); not replacing it"
        )
    entries = {_MARKER: np.array(FORMAT)}
    try:
        _flatten(obj, "", entries)  # every refusal happens here, before a file is touched
    except RecursionError:
        raise ArgumentError("ms.save: obj is nested too deeply to store (Python's recursion limit)") from None
    for name in entries:  # a zip entry's name ("<tag>:<path>.npy") holds at most 65535 bytes
        if len(name.encode("utf-8")) > _MAX_NAME:
            key = name.partition(":")[2]
            raise ArgumentError(
                f"ms.save: the key path {key[:40]!r}... is too long to store ({len(key)} characters; "
                f"a checkpoint entry name holds at most {_MAX_NAME} bytes)"
            )
    partial = f"{path}.partial"
    try:
        with open(partial, "wb") as file:  # a file object: np.savez would otherwise append ".npz"
            np.savez(file, **entries)
        os.replace(partial, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.remove(partial)
        if isinstance(err, OSError):  # name the user's path, not the temporary file
            reason = err.strerror or str(err)
            raise type(err)(f"ms.save: cannot write the checkpoint {path!r}: {reason}") from None
        raise


_SCALAR_KINDS = {"bool": (bool, "b"), "int": (int, "i"), "float": (float, "f"), "str": (str, "U")}


def _decode_leaf(tag, array):
    if tag == "array":
        return array
    if tag == "none":
        return None
    python_type, kind = _SCALAR_KINDS[tag]
    if array.ndim != 0 or array.dtype.kind != kind:  # never int(2.7): a mislabelled entry is damage
        raise ValueError(f"a {tag} entry must be a single {tag}, got {array.dtype} of shape {array.shape}")
    return python_type(array.item())


def _unflatten(entries: dict):
    """Rebuild the nested structure from ``{"tag:path": array}``."""
    nodes = {}  # path -> (kind, value): containers are filled in, then tuples frozen
    for name, array in entries.items():
        tag, sep, path = name.partition(":")
        if not sep:
            raise ValueError(f"entry {name!r} has no type tag")
        if tag in _CONTAINERS:
            if array.ndim != 0 or array.dtype.kind not in "iu":
                raise ValueError(f"container entry {name!r} must hold its length")
            size = int(array)
            if not 0 <= size <= len(entries):  # a damaged length must not allocate without bound
                raise ValueError(f"container entry {name!r} claims {size} items")
            nodes[path] = (tag, {} if tag == "dict" else [None] * size, size)
        elif tag in ("array", "none", "bool", "int", "float", "str"):
            nodes[path] = ("leaf", _decode_leaf(tag, array), None)
        else:
            raise ValueError(f"entry {name!r} has an unknown type tag {tag!r}")
    if "" not in nodes:
        raise ValueError("no top-level entry")

    # Attach every node to its parent, children before deeper grandchildren don't matter:
    # containers are mutable, so order of attachment is free.
    filled = {p: 0 for p, (kind, _, _) in nodes.items() if kind != "leaf"}
    for path, (_, value, _) in nodes.items():
        if path == "":
            continue
        parent_path, _, last = path.rpartition("/")
        if parent_path not in nodes or nodes[parent_path][0] == "leaf":
            raise ValueError(f"entry {path!r} has no parent container")
        kind, container, size = nodes[parent_path]
        if kind == "dict":
            container[_unescape(last)] = value
        else:
            if not last.isdigit() or int(last) >= size:
                raise ValueError(f"entry {path!r}: index out of range for a {kind} of {size}")
            container[int(last)] = value
        filled[parent_path] += 1
    for path, count in filled.items():
        if count != nodes[path][2]:
            raise ValueError(f"container {path!r} should have {nodes[path][2]} items, found {count}")

    # Tuples were built as lists (so they could be filled); freeze them, deepest first.
    for path in sorted(filled, key=lambda p: -p.count("/") if p else 1):
        kind, container, _ = nodes[path]
        if kind == "tuple":
            frozen = tuple(container)
            nodes[path] = (kind, frozen, None)
            if path:
                parent_path, _, last = path.rpartition("/")
                parent = nodes[parent_path][1]
                parent[_unescape(last) if nodes[parent_path][0] == "dict" else int(last)] = frozen
    return nodes[""][1]


def load(path):
    """Read a file written by ``save``; arrays come back as host NumPy arrays.

    Raises ``CheckpointError`` naming the file when it is damaged, truncated, or not a
    minisam checkpoint; ``FileNotFoundError`` when it does not exist."""
    path = _file_path("ms.load", path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"ms.load: no such file: {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"ms.load: {path!r} is a directory, not a checkpoint file")
    if not os.path.isfile(path):  # reading a pipe would wait for a writer forever
        raise CheckpointError(
            f"ms.load: {path!r} is not a regular file (a pipe or a device), not a checkpoint"
        )
    with open(path, "rb") as file:
        magic = file.read(4)
    if magic != b"PK\x03\x04":  # every .npz is a zip archive, and zips start with "PK"
        raise CheckpointError(
            f"ms.load: {path!r} is not a minisam checkpoint: it is not an .npz (zip) archive"
            + (" (the file is empty)" if not magic else "")
        )
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array (.npy), not an .npz archive")
        with archive:
            if _MARKER not in archive.files:
                raise ValueError("it is an .npz archive but was not written by ms.save")
            marker = archive[_MARKER]
            if marker.shape != () or str(marker) != FORMAT:
                raise ValueError(f"unknown format marker {marker!r} (expected {FORMAT!r})")
            entries = {name: archive[name] for name in archive.files if name != _MARKER}
        return _unflatten(entries)
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, TypeError) as err:
        raise CheckpointError(f"ms.load: {path!r} is not a readable minisam checkpoint: {err}") from None
