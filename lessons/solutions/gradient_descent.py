"""Reference answers to the exercises of lesson 02 (gradient descent and curvature).

Try the exercises before you read these.
"""

import numpy as np


def numerical_gradient(f, point, h=1e-5):
    """∇f(point) by central differences: ∂f/∂θᵢ ≈ (f(θ + h·eᵢ) − f(θ − h·eᵢ)) / 2h, error O(h²)."""
    point = np.asarray(point, dtype=np.float64)
    gradient = np.zeros_like(point)
    for i in range(len(point)):
        step = np.zeros_like(point)
        step[i] = h
        gradient[i] = (f(point + step) - f(point - step)) / (2 * h)
    return gradient


def largest_stable_lr(curvatures):
    """Gradient descent on ½ Σ λᵢ xᵢ² multiplies each xᵢ by (1 − lr·λᵢ) per step; all of them
    shrink when |1 − lr·λᵢ| < 1 for every i, i.e. lr < 2/λ_max. That bound is the answer."""
    return 2.0 / max(curvatures)
