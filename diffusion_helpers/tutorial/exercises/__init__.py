"""Checkers for the notebooks' "your turn" cells: each tries the learner's function on several
inputs, edge cases included, compares it with the package's reference, and says what is wrong.

- :func:`check_alpha_bar`: ``fn(betas [T]) -> abar [T]``, the running product of eq. 4.
- :func:`check_q_sample`: ``fn(x0, t, noise, schedule) -> x_t``, eq. 4.
- :func:`check_loss`: ``fn(predicted_noise, noise) -> loss``, Algorithm 1's loss (0-dim).
- :func:`check_reverse_step`: ``fn(x_t, t, predicted_noise, schedule, z) -> x_{t-1}``,
  Algorithm 2 with sigma_t^2 = beta_t.
- notebook 07: :func:`check_score` (Tweedie's formula), :func:`check_langevin_step`,
  :func:`check_flow_loss` and :func:`check_euler_step` (flow matching).

A checker returns True after printing one line starting with "✓", or False after printing what
differs and a hint. It never raises because of the learner's function: a wrong signature, an
exception inside it, ``None``, a wrong type, shape, dtype or device, an odd tensor (sparse,
meta, nested, complex) each get their own message. The result must have the reference's dtype
(float64 for alpha-bar like the betas, float32 for x_t and the loss like the images), and the
loss must pass the reference's gradient back to ``predicted_noise``. Each call of the learner's
function is stopped after ``runner.TIME_LIMIT_S`` = 10 s (:mod:`.time_limit` says how), and
Ctrl-C while it runs ends the check with one line. The hints come from known wrong variants (a
missing square root, alpha instead of alpha-bar, a sum instead of a mean, ...), from two
arguments swapped, and from half-precision rounding: when the learner's answer equals one of
them, its hint is printed.

Timesteps are 0-based as everywhere in the package: code ``t`` is the paper's t + 1.
"""

from .beyond import check_euler_step, check_flow_loss, check_langevin_step, check_score
from .forward import check_alpha_bar, check_q_sample
from .reverse import check_reverse_step
from .training import check_loss

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
