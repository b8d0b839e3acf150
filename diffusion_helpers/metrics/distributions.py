"""How far apart two sets of points are as distributions: the energy distance."""

from __future__ import annotations

import torch

from ..checks.tensors import check_points

# cdist without the matrix-product shortcut, whose rounding leaves |x - x| > 0 on the diagonal
EXACT = "donot_use_mm_for_euclid_dist"


def energy_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """The squared energy distance between two clouds a [n, 2, 1, 1] and b [m, 2, 1, 1]:

        D^2 = 2 E|X - Y| - E|X - X'| - E|Y - Y'|,  X, X' ~ a, Y, Y' ~ b   (Szekely & Rizzo 2013)

    in float64, the within-cloud means over distinct pairs (unbiased): 0 in expectation for
    one distribution, positive for any two different ones.
    """
    x = check_points(a, "a").detach().double().reshape(-1, 2)
    y = check_points(b, "b").detach().double().reshape(-1, 2).to(x.device)
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"both clouds need at least 2 points, got {len(x)} and {len(y)}.")
    n, m = len(x), len(y)
    between = torch.cdist(x, y, compute_mode=EXACT).mean()
    within_a = torch.cdist(x, x, compute_mode=EXACT).sum() / (n * (n - 1))  # diagonal: 0
    within_b = torch.cdist(y, y, compute_mode=EXACT).sum() / (m * (m - 1))
    return float(2 * between - within_a - within_b)
