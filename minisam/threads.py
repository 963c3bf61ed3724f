"""How many threads the BLAS library may use: one, unless the user said otherwise.

minisam's matrix products are small. OpenBLAS starts one thread per core for each of
them, and on a machine whose cores are already busy (a shared course server, a laptop
running a notebook and a browser) those threads wait for each other: a training step
measured 12x slower at load 2 on 2 cores. One thread is never much slower on these sizes,
so the command line (``demo``, ``train``, ``compare``, ``reproduce``, ``bench``) and the
lessons run with one, through threadpoolctl, which changes the limit of the BLAS library
that NumPy has already loaded (an environment variable would have to be set before NumPy
is imported).

A user who sets ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` or
``MINISAM_BLAS_THREADS`` keeps their choice: ``blas_threads()`` then does nothing
(``MINISAM_BLAS_THREADS=N`` asks minisam itself for N threads). The command line refuses a
malformed value of any of them before any work (``check_environment``).
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from threadpoolctl import threadpool_info, threadpool_limits

USER_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def chosen_by_user() -> str | None:
    """The thread variable the user set, if any (``MINISAM_BLAS_THREADS`` counts too)."""
    for name in ("MINISAM_BLAS_THREADS", *USER_VARIABLES):
        if os.environ.get(name, "").strip():
            return name
    return None


MAX_THREADS = 1024  # more would be a typo; a C int (and with it threadpoolctl) overflows at 2**31


def _thread_count(name: str) -> int | None:
    """The thread count in variable ``name``: None when unset or empty; ValueError naming the
    variable when it is not a whole number from 1 to MAX_THREADS (OpenBLAS would read "abc" as
    0 and quietly start a thread per core). OMP_NUM_THREADS may list one per nesting level."""
    text = os.environ.get(name, "")
    if not text.strip():
        return None
    parts = text.split(",") if name == "OMP_NUM_THREADS" else [text]
    digits = [p.strip() for p in parts]
    if not all(d.isascii() and d.isdigit() and 1 <= int(d) <= MAX_THREADS for d in digits):
        raise ValueError(
            f"{name} must be a whole number of threads from 1 to {MAX_THREADS}"
            + (" (or a comma-separated list of them)" if name == "OMP_NUM_THREADS" else "")
            + f", got {text!r}: correct it or unset it"
        )
    return int(digits[0])


def check_environment() -> None:
    """Refuse a malformed thread variable (the command line calls this before any work)."""
    for name in ("MINISAM_BLAS_THREADS", *USER_VARIABLES):
        _thread_count(name)


def _wanted() -> int | None:
    """The BLAS thread count to impose: ``None`` when the user's own variable decides."""
    setting = _thread_count("MINISAM_BLAS_THREADS")
    if setting is not None:
        return setting
    return None if chosen_by_user() else 1


def use_one_blas_thread() -> None:
    """For the rest of the process, let the BLAS library use one thread (unless the user
    chose a number through one of the variables above). Lessons call this in their first cell."""
    wanted = _wanted()
    if wanted is not None:
        threadpool_limits(limits=wanted, user_api="blas")


@contextmanager
def blas_threads(limit: int | None = 1):
    """Within the block, at most ``limit`` BLAS threads (``None``: the library's default).
    The user's own thread variables win over ``limit=1``."""
    wanted = limit if limit is None or chosen_by_user() is None else _wanted()
    if wanted is None:
        yield
        return
    with threadpool_limits(limits=wanted, user_api="blas"):
        yield


def describe() -> str:
    """One line: which BLAS NumPy uses and with how many threads, e.g. for the bench header."""
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    if not pools:
        return "BLAS: none found by threadpoolctl"
    parts = [
        f"{p.get('internal_api', '?')} {p.get('version') or ''} ({p['num_threads']} threads)" for p in pools
    ]
    return "BLAS: " + ", ".join(part.replace("  ", " ") for part in parts)
