"""Checkers for the notebooks' "your turn" cells: each tries the learner's function on a few
cases, edge cases included, compares it with the package's reference, and says what is wrong.

- notebook 02: :func:`check_alpha_bar` (``fn(betas) -> abar``, the running product) and
  :func:`check_q_sample` (``fn(x0, t, noise, schedule) -> x_t``, eq. 4);
- notebook 03: :func:`check_loss` (``fn(predicted_noise, noise) -> loss``, Algorithm 1);
- notebook 04: :func:`check_reverse_step` (``fn(x_t, t, predicted_noise, schedule, z)``,
  Algorithm 2 with sigma_t^2 = beta_t);
- notebook 07: :func:`check_score` (Tweedie's formula), :func:`check_langevin_step`,
  :func:`check_flow_loss` and :func:`check_euler_step` (flow matching).

A checker prints one line starting with "✓" and returns True, or prints what differs with a
hint and returns False; it never raises because of the learner's function, and stops it after
``judge.TIME_LIMIT_S`` seconds. The cases and the known mistakes are rows of :mod:`.table`;
one judge, :mod:`.judge`, runs them.
"""

from .table import (
    check_alpha_bar,
    check_euler_step,
    check_flow_loss,
    check_langevin_step,
    check_loss,
    check_q_sample,
    check_reverse_step,
    check_score,
)

__all__ = [
    "check_alpha_bar",
    "check_euler_step",
    "check_flow_loss",
    "check_langevin_step",
    "check_loss",
    "check_q_sample",
    "check_reverse_step",
    "check_score",
]
