"""m-sharpness: one SAM step as B/m independent climbs, one per micro-batch of m examples.

Foret et al. (2021, §4.1 and App. C.3) report that sharpness measured on small pieces of the
batch (m-sharpness) goes with generalisation better, and that data-parallel SAM computes it
when each of W workers climbs with its own gradient and only the second gradient is
averaged across workers (m = B/W). Here the
batch of B examples is cut, in order, into B/m micro-batches; each climbs from θ on its
own loss (``sam.climb``), and the base optimizer gets the mean of their g_k
(minisam/optim/ALGORITHMS.md, section m-sharpness). The closure receives the micro-batch
as a ``slice`` of example positions: ``closure(slice(j·m, (j+1)·m))``.
"""

from __future__ import annotations

import functools

from .. import checks


def micro_batches(closure, m, batch_size) -> list:
    """The micro-batches' closures, in order; without m, just the closure (the whole batch).
    ``batch_size`` (B) is needed only with m, which must divide it."""
    if batch_size is not None:
        batch_size = checks.count("SAM.step", "batch_size", batch_size, 1)
    if m is None:
        return [closure]
    if batch_size is None or batch_size % m:
        raise checks.ArgumentError(
            f"SAM.step: with m={m} the step needs batch_size=B, the number of examples in the "
            f"batch, and m must divide it; got batch_size={batch_size!r}"
        )
    return [functools.partial(closure, slice(j, j + m)) for j in range(0, batch_size, m)]


def mean_gradient(climbs, count: int) -> list:
    """The mean of the climbs' g_k, one entry per parameter (None where none took part).
    A single climb's g_k is handed on as it is: m = B is plain SAM exactly."""
    gradients = [c.spread(c.gk, count) for c in climbs]
    if len(climbs) == 1:
        return gradients[0]
    columns = [[g for g in column if g is not None] for column in zip(*gradients, strict=True)]
    return [sum(column) / len(climbs) if column else None for column in columns]


def mean_diagnostics(climbs, with_count: bool) -> dict:
    """One climb's diagnostics, or their means over the micro-batches' climbs (and, with
    ``with_count``, their number as ``micro_batches``)."""
    each = [c.diagnostics() for c in climbs]
    mean = {key: sum(d[key] for d in each) / len(each) for key in each[0] if key != "grad_norms"}
    columns = zip(*(d["grad_norms"] for d in each), strict=True)
    mean["grad_norms"] = [sum(column) / len(each) for column in columns]
    if with_count:
        mean["micro_batches"] = len(climbs)
    return mean
