"""The checkers of the notebooks' "your turn" cells. ``check_q_sample(q_sample)`` tries the
learner's function on a few cases, edge cases included, and prints one line starting with "✓"
and returns True, or prints what differs with a hint and returns False; it never raises because
of the learner's function, and stops it after ``judge.TIME_LIMIT_S`` seconds. Each checker is a
row of :mod:`.table`; one judge, :mod:`.judge`, runs them all.
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
