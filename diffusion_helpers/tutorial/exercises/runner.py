"""How a checker judges a learner's function: the cases, the known mistakes, and the runner
that calls the function safely, compares it with the reference and picks the hint."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch

from ...schedule import NoiseSchedule

T = 1000  # DDPM's number of steps; the cases use its linear and the cosine schedule

# Tolerances, |got - expected| <= ATOL + RTOL |expected|. A right answer computed in float32
# differs from the reference by ~1e-6 relative; every wrong variant below differs by far more
# than 1e-4 on at least one case (the closest, abar off by one step, by beta_t >= 1e-4 relative
# and, at t = 999, by 2% relative).
RTOL = 1e-4
ATOL = 1e-6

Scalar = Callable[[NoiseSchedule, int], float]  # a schedule value at step t
Step = Callable[..., torch.Tensor]  # (x_t, t, predicted_noise, schedule, z) -> x_{t-1}


@dataclass
class Case:
    """One input of a checker. ``make_args`` builds fresh arguments for every call, so a
    function that changes its inputs in place cannot spoil the reference or the next case."""

    label: str
    make_args: Callable[[], tuple]


@dataclass
class Mistake:
    """A known wrong variant: ``compute(*args)`` gives its answer, ``hint`` says how to fix it."""

    hint: str
    compute: Callable[..., torch.Tensor]


@dataclass
class Exercise:
    """What a checker needs: the signature to expect, the cases, the reference, the mistakes."""

    name: str  # e.g. "q_sample"
    signature: str  # e.g. "q_sample(x0, t, noise, schedule)"
    cases: list[Case]
    reference: Callable[..., torch.Tensor]
    mistakes: list[Mistake]
    success: str  # printed after "✓ check_<name>: "
    rtol: float = RTOL
    atol: float = ATOL
    extra_checks: Optional[Callable[[torch.Tensor, tuple, torch.Tensor], Optional[str]]] = None
    error_hint: Optional[Callable[[Exception, Case], Optional[str]]] = None


def schedule(kind: str) -> NoiseSchedule:
    """A fresh DDPM-sized schedule for one call (a function that changes it cannot spoil others)."""
    return NoiseSchedule(T, kind)


def run(exercise: Exercise, fn: Callable) -> bool:
    """Try ``fn`` on every case of ``exercise``; print "✓ ..." and return True if it always
    matches the reference, else print what differs for the first case that fails (with a hint)
    and return False."""
    name = f"check_{exercise.name}"
    problem = signature_problem(fn, exercise, exercise.cases[0].make_args())
    if problem is not None:
        return fail(name, problem)
    trials = []
    for case in exercise.cases:
        args = case.make_args()
        expected = exercise.reference(*clone(args)).detach()
        got, problem = call(fn, args, exercise, case)
        if problem is None:
            problem = output_problem(got, args, expected, exercise)
        trials.append(Trial(case, args, got if problem is None else None, expected, problem))
    for trial in trials:
        if trial.problem is not None:
            return fail(name, f"wrong for {trial.case.label}: {trial.problem}")
        if not close(trial.got, trial.expected, exercise):
            problem = value_problem(fn, trial, trials, exercise)
            return fail(name, f"wrong for {trial.case.label}: {problem}")
    labels = ", ".join(case.label.split(" (")[0] for case in exercise.cases)
    print(f"✓ {name}: {exercise.success} ({len(exercise.cases)} cases: {labels}).")
    return True


@dataclass
class Trial:
    """The learner's function on one case: its result (None if unusable) and what went wrong."""

    case: Case
    args: tuple
    got: Optional[torch.Tensor]
    expected: torch.Tensor
    problem: Optional[str]


def signature_problem(fn: Any, exercise: Exercise, args: tuple) -> Optional[str]:
    """A message when ``fn`` is not a function that accepts the exercise's arguments."""
    if fn is None or not callable(fn):
        return (
            f"expected a function {exercise.signature}, got {type(fn).__name__}. Pass the "
            f"function itself: check_{exercise.name}({exercise.name}), without calling it."
        )
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: let the call decide
        return None
    try:
        sig.bind(*args)
    except TypeError:
        return (
            f"your function's arguments are {fn.__name__}{sig}, but it is called as "
            f"{exercise.signature}: {len(args)} arguments, in that order."
        )
    return None


def call(fn: Callable, args: tuple, exercise: Exercise, case: Case) -> tuple[Any, Optional[str]]:
    """Call ``fn`` on a copy of ``args``; return (result, None) or (None, what went wrong)."""
    copies = clone(args)
    try:
        got = fn(*copies)
    except NotImplementedError:
        return None, (
            "your function raises NotImplementedError: replace the `raise NotImplementedError` "
            "line with your code, run the cell, then run this check again."
        )
    except Exception as err:  # the learner's code may raise anything; say what and where
        hint = exercise.error_hint(err, case) if exercise.error_hint else None
        message = f"your function raised {type(err).__name__}: {err}"
        return None, message + (f"\n  Hint: {hint}" if hint else "")
    for position, (before, after) in enumerate(zip(args, copies)):
        if isinstance(before, torch.Tensor) and not torch.equal(before, after.detach()):
            param = exercise.signature.split("(")[1].rstrip(")").split(", ")[position]
            return None, (
                f"your function changed its input `{param}` in place (e.g. `{param} *= ...` or "
                f"a method ending in _): compute a new tensor instead, inputs must stay as given."
            )
    return got, None


def output_problem(
    got: Any, args: tuple, expected: torch.Tensor, exercise: Exercise
) -> Optional[str]:
    """A message when ``got`` is not a tensor of the expected shape and dtype (or has NaNs)."""
    if got is None:
        return "your function returned None: did you forget the `return` line?"
    if isinstance(got, tuple):
        return (
            f"your function returned a tuple of {len(got)} values: return only the tensor "
            f"({expected.dim()}-dim, shape {list(expected.shape)})."
        )
    if not isinstance(got, torch.Tensor):
        what = type(got).__name__
        if isinstance(got, (int, float)):
            what += " (a Python number: .item() turns a tensor into one)"
        return f"expected a torch.Tensor of shape {list(expected.shape)}, got a {what}."
    special = exercise.extra_checks(got, args, expected) if exercise.extra_checks else None
    if special is not None:
        return special
    if got.shape != expected.shape:
        return (
            f"your result has shape {list(got.shape)}, expected {list(expected.shape)}."
            + broadcast_hint(got, expected)
        )
    if not got.dtype.is_floating_point:
        return f"your result has dtype {got.dtype}: expected floating point ({expected.dtype})."
    if not torch.isfinite(got.detach()).all():
        return "your result contains NaN or inf (a square root of a negative number, or 1/0?)."
    return None


def broadcast_hint(got: torch.Tensor, expected: torch.Tensor) -> str:
    """A hint when the answer's shape suggests a tensor t was not reshaped to broadcast."""
    if got.dim() > expected.dim():
        return (
            " Broadcasting added dimensions: a per-image value of shape [B] must be reshaped to "
            "[B, 1, 1, 1] before it multiplies an image batch [B, C, H, W]."
        )
    return ""


def value_problem(fn: Callable, failed: Trial, trials: list[Trial], exercise: Exercise) -> str:
    """What differs on the failed case, and the hint of the known mistake that gives the same
    answers: first one that matches the learner on every case, else one that matches on the
    failed case (two mistakes at once match no single variant everywhere)."""
    got, expected = failed.got.detach(), failed.expected
    diff = (got.double() - expected.double()).abs().max().item()
    message = f"largest difference {diff:.3g} from the reference."
    if expected.numel() <= 8:
        message += f"\n  got:      {fmt(got)}\n  expected: {fmt(expected)}"
    again, _ = call(fn, failed.args, exercise, failed.case)
    if isinstance(again, torch.Tensor) and again.shape == got.shape:
        if not torch.equal(again.detach(), got):
            return message + (
                "\n  Hint: your function gives a different answer each time it is called: use "
                "the noise passed in as an argument instead of drawing new random numbers."
            )
    others = [trial for trial in trials if trial.got is not None and trial is not failed]
    for everywhere in (True, False):
        for mistake in exercise.mistakes:
            if gives(mistake, failed, exercise, absent=False) and (
                not everywhere or all(gives(mistake, trial, exercise) for trial in others)
            ):
                return message + f"\n  Hint: {mistake.hint}"
    return message + (
        "\n  Hint: compare your code with the equation above, one factor at a time; try it on "
        "the case above and print the intermediate values."
    )


def gives(mistake: Mistake, trial: Trial, exercise: Exercise, absent: bool = True) -> bool:
    """True when the mistake gives the learner's answer on this case; ``absent`` when it has no
    answer there (an index out of range at the last step, say)."""
    try:
        wrong = mistake.compute(*clone(trial.args)).detach()
    except (IndexError, RuntimeError, ValueError):
        return absent
    return close(trial.got, wrong, exercise)


def fail(name: str, message: str) -> bool:
    """Print the failure line and return False."""
    print(f"✗ {name}: {message}")
    return False


def close(got: torch.Tensor, expected: torch.Tensor, exercise: Exercise) -> bool:
    """Element-wise |got - expected| <= atol + rtol |expected|, compared in float64."""
    a, b = got.detach().double().cpu(), expected.detach().double().cpu()
    return a.shape == b.shape and torch.allclose(a, b, rtol=exercise.rtol, atol=exercise.atol)


def clone(args: Sequence[Any]) -> tuple:
    """Copies of the tensors in ``args`` (gradients kept where asked), other values as they are."""
    return tuple(
        (a.detach().clone().requires_grad_(a.requires_grad) if isinstance(a, torch.Tensor) else a)
        for a in args
    )


def fmt(x: torch.Tensor) -> str:
    """A few values of a tensor, for messages."""
    values = x.detach().double().reshape(-1).tolist()
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"
