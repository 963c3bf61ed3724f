"""Optimizers: SGD (the base), SAM / multi-step SAM / ASAM, XSAM, and LR schedules.

    from minisam import optim
    opt = optim.XSAM(optim.SGD(model.parameters(), lr=0.1, momentum=0.9), rho=0.05)
    loss = opt.step(closure)      # closure() returns the loss; the optimizer calls backward

See ALGORITHMS.md for the exact equations each one implements.
"""

from .sam import SAM
from .schedule import CosineAnnealingLR, LRScheduler, StepLR
from .sgd import SGD, Optimizer
from .xsam import XSAM

__all__ = ["SGD", "SAM", "XSAM", "Optimizer", "LRScheduler", "StepLR", "CosineAnnealingLR"]
