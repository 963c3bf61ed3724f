"""SAM and XSAM for PyTorch optimizers: the algorithms of ``minisam.optim``, on torch tensors.

    import torch, minisam.torch
    base = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    opt = minisam.torch.XSAM(base, rho=0.05)          # or minisam.torch.SAM(base, rho=0.05)
    loss = opt.step(lambda: F.cross_entropy(model(x), y))   # the closure does not call backward

The same contract, equations and diagnostics as ``minisam.optim.SAM``/``XSAM``
(minisam/optim/ALGORITHMS.md), tested to agree with them step for step in float64. CPU or
CUDA, float32 or float64, ``torch.autocast`` with a ``GradScaler``, and
``DistributedDataParallel``: see README.md in this folder for the recipes.

This subpackage needs the optional ``torch`` extra (``pip install -e ".[torch]"``);
``import minisam`` itself never imports torch.
"""

from .batchnorm import frozen_batchnorm_stats
from .sam import SAM, NonFiniteGradient
from .xsam import XSAM

__all__ = ["SAM", "XSAM", "NonFiniteGradient", "frozen_batchnorm_stats"]
