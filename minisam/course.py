"""What every lesson notebook does before it teaches anything, in one call.

    from minisam.course import setup
    setup()

so that the first cell of a lesson is about the lesson, not about the machine. ``setup``
limits the BLAS library to one thread (small matrix products on a busy, shared machine
are many times slower with more; see ``minisam.threads``), seeds every random source the
library uses, and sets figure defaults that read well in a notebook and on GitHub (text
large enough, 110 dpi).
"""

from __future__ import annotations

from . import rng, threads


def setup(seed: int = 0) -> None:
    """One BLAS thread (unless you set a thread variable yourself), ``ms.manual_seed(seed)``,
    and readable figure defaults."""
    threads.use_one_blas_thread()
    rng.manual_seed(seed)
    import matplotlib as mpl

    mpl.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "font.size": 10, "legend.framealpha": 0.9})
