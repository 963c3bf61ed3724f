"""BatchNorm running statistics during a SAM step: only the pass at θ may change them.

A SAM step runs the same batch through the model several times: once at θ, then at the
ascent points, and (XSAM) at the probe points. In train mode every one of those forward
passes would fold its batch statistics into ``running_mean`` and ``running_var`` and add
one to ``num_batches_tracked``, so the running statistics would drift towards the
statistics of perturbed networks. minisam/optim/ALGORITHMS.md, section "BatchNorm during
SAM-family steps": the later passes still normalise with their own batch statistics, but
leave the running statistics exactly as the pass at θ left them.

How: the optimizer only holds parameters, not the model, so it cannot list the model's
BatchNorm layers. Instead, for the duration of the later passes, a global forward pre-hook
(``torch.nn.modules.module.register_module_forward_pre_hook``) copies the buffers of every
BatchNorm layer the first time that layer runs, and the copies are written back when the
block ends. This is exact (a copy, no arithmetic), needs no ``model=`` argument, and works
for BatchNorm layers anywhere in any model, DDP-wrapped or not. Setting ``momentum = 0``
instead would keep the means but still count ``num_batches_tracked`` up, and with
``momentum=None`` (a cumulative average) that counter changes the statistics themselves.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.module import register_module_forward_pre_hook


def _running_buffers(module: _BatchNorm) -> list:
    buffers = (module.running_mean, module.running_var, module.num_batches_tracked)
    return [b for b in buffers if b is not None]  # None where track_running_stats=False


class BatchNormSnapshot:
    """Within the ``with`` block, remember the running statistics of each BatchNorm layer
    as they were just before that layer first ran; ``restore()`` writes them back."""

    def __enter__(self):
        self.saved = {}
        self._hook = register_module_forward_pre_hook(self._remember)
        return self

    def _remember(self, module, inputs):
        if isinstance(module, _BatchNorm) and module.training and module not in self.saved:
            self.saved[module] = [b.clone() for b in _running_buffers(module)]

    def __exit__(self, *exc):
        self._hook.remove()

    def restore(self) -> None:
        with torch.no_grad():
            for module, saved in self.saved.items():
                for buffer, copy in zip(_running_buffers(module), saved, strict=True):
                    buffer.copy_(copy)


@contextmanager
def frozen_batchnorm_stats():
    """BatchNorm layers that run inside the block use their batch statistics (train mode)
    and leave ``running_mean``, ``running_var`` and ``num_batches_tracked`` as they found
    them, also when the block ends with an exception."""
    with BatchNormSnapshot() as snapshot:
        try:
            yield
        finally:
            snapshot.restore()
