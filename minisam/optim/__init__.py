"""Optimizers: SGD, Adam and AdamW (the bases), SAM / multi-step SAM / ASAM / m-sharpness,
XSAM, and learning-rate schedules.

    from minisam import optim
    opt = optim.XSAM(optim.SGD(model.parameters(), lr=0.1, momentum=0.9), rho=0.05)
    loss = opt.step(closure)      # closure() returns the loss; the optimizer calls backward

minisam/optim/ALGORITHMS.md gives the exact equations each one implements.
"""

from .adam import Adam, AdamW
from .sam import SAM
from .schedule import CosineAnnealingLR, LRScheduler, StepLR
from .sgd import SGD, Optimizer
from .xsam import XSAM

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "SAM",
    "XSAM",
    "Optimizer",
    "LRScheduler",
    "StepLR",
    "CosineAnnealingLR",
]
