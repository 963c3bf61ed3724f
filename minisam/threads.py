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
(``MINISAM_BLAS_THREADS=N`` asks minisam itself for N threads).
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


def _wanted() -> int | None:
    """The BLAS thread count to impose: ``None`` when the user's own variable decides."""
    setting = os.environ.get("MINISAM_BLAS_THREADS", "").strip()
    if setting:
        if not setting.isdigit() or int(setting) < 1:
            raise ValueError(f"MINISAM_BLAS_THREADS must be a whole number >= 1, got {setting!r}")
        return int(setting)
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
