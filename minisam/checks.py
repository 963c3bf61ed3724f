"""Argument checks, in one place, so that every function agrees on what a number is.

A *number* here is a Python ``int``/``float`` or a NumPy real scalar (``np.float32(0.05)``,
``np.int64(3)``), or a 0-d real array; never a ``bool`` (``True`` is not 1.0 by accident),
never a string, never NaN, and never infinite unless the caller says so. A *count* is an
integer in the same sense; ``3.0`` is not a count.

Each check returns the value converted to a plain Python ``float``/``int``/``bool`` and
raises ``ArgumentError`` (a ``ValueError`` and a ``TypeError`` at once, so either
``except`` catches it) with a message of the form

    SAM: rho must be a finite number >= 0, got inf

that names who complained, the argument, what was expected and what came.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


class ArgumentError(ValueError, TypeError):
    """A bad argument: wrong type or out of range. The message says which and why."""


def _prefix(who: str) -> str:
    return f"{who}: " if who else ""


def _plain(value):
    """A 0-d NumPy array or NumPy scalar as the Python scalar it holds; anything else as is."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _bounds(minimum, maximum, above) -> str:
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if above else '>='} {minimum:g}")
    if maximum is not None:
        parts.append(f"<= {maximum:g}")
    return " and ".join(parts)


def number(who: str, name: str, value, minimum=None, maximum=None, *, above=False, finite=True) -> float:
    """``value`` as a float, checked: a real number (not bool), not NaN, finite unless
    ``finite=False``, ``>= minimum`` (``> minimum`` with ``above=True``), ``<= maximum``."""
    plain = _plain(value)
    kind = "a finite number" if finite else "a number"
    bounds = _bounds(minimum, maximum, above)
    expected = f"{kind} {bounds}".strip()
    if isinstance(plain, bool) or not isinstance(plain, numbers.Real):
        raise ArgumentError(f"{_prefix(who)}{name} must be {expected}, got {value!r}")
    plain = float(plain)
    bad = math.isnan(plain) or (finite and math.isinf(plain))
    if minimum is not None:
        bad = bad or (plain <= minimum if above else plain < minimum)
    if maximum is not None:
        bad = bad or plain > maximum
    if bad:
        raise ArgumentError(f"{_prefix(who)}{name} must be {expected}, got {value!r}")
    return plain


def count(who: str, name: str, value, minimum: int | None = 0, maximum: int | None = None) -> int:
    """``value`` as an int, checked: an integer (Python or NumPy, not bool, not 3.0) in
    ``[minimum, maximum]`` (``minimum=None``: no lower bound, e.g. a dimension index)."""
    plain = _plain(value)
    expected = f"an integer {_bounds(minimum, maximum, False)}".strip()
    if isinstance(plain, bool) or not isinstance(plain, numbers.Integral):
        raise ArgumentError(f"{_prefix(who)}{name} must be {expected}, got {value!r}")
    plain = int(plain)
    if (minimum is not None and plain < minimum) or (maximum is not None and plain > maximum):
        raise ArgumentError(f"{_prefix(who)}{name} must be {expected}, got {value!r}")
    return plain


def probability(who: str, name: str, value, *, allow_one: bool = False) -> float:
    """A number in [0, 1) (or [0, 1] with ``allow_one``)."""
    plain = number(who, name, value, 0.0, 1.0)
    if plain == 1.0 and not allow_one:
        raise ArgumentError(f"{_prefix(who)}{name} must be a number in [0, 1), got {value!r}")
    return plain


def flag(who: str, name: str, value) -> bool:
    """A ``bool`` (or NumPy bool); ``0``, ``1`` and ``"yes"`` are refused as ambiguous."""
    plain = _plain(value)
    if not isinstance(plain, bool):
        raise ArgumentError(f"{_prefix(who)}{name} must be True or False, got {value!r}")
    return plain


def choice(who: str, name: str, value, options) -> str:
    """One of ``options`` (strings), compared case-insensitively; returns the option as spelled there."""
    if isinstance(value, str):
        for option in options:
            if value.lower() == option.lower():
                return option
    listed = ", ".join(repr(o) for o in options)
    raise ArgumentError(f"{_prefix(who)}{name} must be one of {listed}, got {value!r}")
