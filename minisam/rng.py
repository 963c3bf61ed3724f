"""The one source of randomness in minisam.

Every random number the library uses -- weight initialisation, dropout masks, data
shuffling, label noise, random directions for loss slices -- is drawn from a single
NumPy ``Generator`` on the host and then moved to the backend. A seed therefore gives
the same numbers on NumPy and on CuPy, and a run can be checkpointed and resumed by
saving ``get_rng_state()`` beside the weights.
"""

from __future__ import annotations

import numpy as np

from . import backend
from .checks import ArgumentError, count

_generator = np.random.Generator(np.random.PCG64())
_MASK64 = (1 << 64) - 1


def manual_seed(seed: int) -> None:
    """Seed every random source minisam uses (``seed``: an integer >= 0)."""
    global _generator
    _generator = np.random.Generator(np.random.PCG64(count("manual_seed", "seed", seed)))


def generator() -> np.random.Generator:
    """The host generator. Draw from it, don't keep it: manual_seed replaces it."""
    return _generator


def saved():
    """The stream as it is now, cheaply, for ``restore`` to put back after a step that failed
    (the generator itself too: the failed code may have called manual_seed)."""
    return _generator, _generator.bit_generator.state


def restore(state) -> None:
    """Put back a stream kept by ``saved``."""
    global _generator
    _generator, _generator.bit_generator.state = state[0], state[1]


def get_rng_state() -> np.ndarray:
    """The generator's state as six uint64 words, so it fits a plain ``.npz`` checkpoint."""
    state = _generator.bit_generator.state
    words = []
    for big in (state["state"]["state"], state["state"]["inc"]):
        words += [big >> 64, big & _MASK64]
    words += [state["has_uint32"], state["uinteger"]]
    return np.array(words, dtype=np.uint64)


def set_rng_state(state) -> None:
    """Restore a state returned by ``get_rng_state``; anything else is refused and the
    generator is left as it was."""
    if isinstance(state, (list, tuple)) and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v < 2**64 for v in state
    ):
        state = np.array([int(v) for v in state], dtype=np.uint64)  # e.g. the words back from JSON
    try:
        words = np.asarray(backend.to_host(state))
    except (ValueError, TypeError):  # ragged lists and the like
        words = np.asarray(None)
    if words.shape != (6,) or words.dtype != np.uint64:
        raise ArgumentError(
            "set_rng_state: state must be the uint64 array of shape (6,) returned by get_rng_state, "
            f"got dtype {words.dtype} and shape {words.shape}"
        )
    w = [int(v) for v in words]
    # NumPy would accept these silently and leave a generator no seed could produce
    if w[3] % 2 == 0:
        raise ArgumentError("set_rng_state: state is damaged: PCG64's increment (word 3) must be odd")
    if w[4] not in (0, 1) or w[5] >= 2**32:
        raise ArgumentError(
            "set_rng_state: state is damaged: word 4 (a flag) must be 0 or 1 and word 5 "
            f"(a buffered 32-bit draw) < 2**32, got {w[4]} and {w[5]}"
        )
    _generator.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": (w[0] << 64) | w[1], "inc": (w[2] << 64) | w[3]},
        "has_uint32": w[4],
        "uinteger": w[5],
    }
