"""Measuring sharpness: the worst loss in a ρ-ball, where it lies, curvature, loss slices.

Every measurement takes the same two things an optimizer does -- a ``closure`` that
returns the loss Tensor (without calling backward) and the list of ``params`` -- so it
works on a network, a mini-batch or a toy landscape alike. Each moves the parameters
while it measures and puts them back exactly, leaving every ``p.grad`` as it found it
(``probing.py``). ‖·‖ is the L2 norm over all parameters together, as in SAM.

    worst = worst_case_loss(closure, params, rho=0.05)          # max L(θ+ε), ‖ε‖ ≤ ρ
    cosine_to_maximum(g1, worst.epsilon)                         # how well g₁ points at it
    top_hessian_eigenvalue(closure, params)                      # λ_max by power iteration
    loss_slice_1d(closure, params, filter_normalized_direction(params), alphas)

One idea per module:

    neighbourhood.py   the maximum of L in the ρ-ball, and how well a direction points at it
    curvature.py       Hessian-vector products and λ_max, with ReLU's on/off pattern held
    slices.py          1-D and 2-D loss slices, filter-normalised directions, the g₀/g₁ plane
    probing.py         moving θ to probe the loss and putting it back, shared by the three
"""

from ..nn import frozen_relu_pattern
from ..vector import EPS0
from .curvature import HVP_STEP, hessian_vector_product, top_hessian_eigenvalue
from .neighbourhood import WorstCase, cosine_to_maximum, worst_case_loss
from .slices import (
    GradPlane,
    circle_losses,
    filter_normalized_direction,
    grad_plane,
    loss_slice_1d,
    loss_slice_2d,
)

__all__ = [
    "EPS0",
    "HVP_STEP",
    "GradPlane",
    "WorstCase",
    "circle_losses",
    "cosine_to_maximum",
    "filter_normalized_direction",
    "frozen_relu_pattern",
    "grad_plane",
    "hessian_vector_product",
    "loss_slice_1d",
    "loss_slice_2d",
    "top_hessian_eigenvalue",
    "worst_case_loss",
]
