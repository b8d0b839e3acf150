"""How a checker judges a learner's function: the cases, the known mistakes, and the runner
that calls the function safely, compares it with the reference and picks the hint.

The learner's code runs only through :func:`learners_code` (time-boxed, with gradients on),
called by :func:`call`, which catches every exception, and by the gradient check. What it
returns is read in one place, :func:`plain_result`, which turns it into a plain dense tensor or
a message; everything after that compares plain tensors.
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch

from ...schedule import NoiseSchedule
from .time_limit import TimeUp, call_with_time_limit

T = 1000  # DDPM's number of steps; the cases use its linear and the cosine schedule

# Tolerances, |got - expected| <= ATOL + RTOL |expected|. A right answer computed in float32
# differs from the reference by ~1e-6 relative; every wrong variant below differs by far more
# than 1e-4 on at least one case (the closest, abar off by one step, by beta_t >= 1e-4 relative
# and, at t = 999, by 2% relative).
RTOL = 1e-4
ATOL = 1e-6

# Seconds one call of the learner's function (or of its loss's backward) may run before the
# check stops it. The slowest right answers we wrote, Python loops over the T = 1000 betas or
# over every pixel of a case (autograd recording each step), take under 0.1 s a call on a
# shared 2-core machine: 10 s leaves a slow Colab CPU a 100x margin, and an endless loop costs
# the learner 10 s instead of a hung notebook. The tests patch it to 1 s.
TIME_LIMIT_S = 10.0

Scalar = Callable[[NoiseSchedule, int], float]  # a schedule value at step t
Step = Callable[..., torch.Tensor]  # (x_t, t, predicted_noise, schedule, z) -> x_{t-1}
ShapeHint = Callable[[torch.Tensor, tuple, torch.Tensor], Optional[str]]  # (got, args, expected)


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
    like: str  # the argument whose dtype and device the result must have, e.g. "x0"
    rtol: float = RTOL
    atol: float = ATOL
    shape_hint: Optional[ShapeHint] = None  # why a result may have the wrong shape
    dtype_hint: Optional[Callable[[torch.dtype], Optional[str]]] = None  # why it has this dtype
    error_hint: Optional[Callable[[BaseException, Case], Optional[str]]] = None
    gradient_of: Optional[str] = None  # an argument the result must pass the right gradient to

    @property
    def params(self) -> list[str]:
        """The argument names of the signature, e.g. ["x0", "t", "noise", "schedule"]."""
        return self.signature.split("(")[1].rstrip(")").split(", ")


class StopCheckError(Exception):
    """The check cannot go on: the learner's function ran too long or was interrupted."""


def schedule(kind: str) -> NoiseSchedule:
    """A fresh DDPM-sized schedule for one call (a function that changes it cannot spoil others)."""
    return NoiseSchedule(T, kind)


def run(exercise: Exercise, fn: Callable) -> bool:
    """Try ``fn`` on every case of ``exercise``; print "✓ ..." and return True if it always
    matches the reference, else print what differs for the first case that fails (with a hint)
    and return False. Never raises, whatever ``fn`` does or returns."""
    name = f"check_{exercise.name}"
    try:
        # Gradients on even inside the notebook's torch.no_grad() or inference_mode(): a right
        # loss must be differentiable. Both modes are put back on the way out.
        with torch.inference_mode(False), torch.enable_grad():
            problem = judge(exercise, fn)
    except StopCheckError as stop:
        problem = str(stop)
    except KeyboardInterrupt:
        problem = "stopped while checking (interrupted): run the check again."
    except Exception as err:  # something the checks below did not foresee: still no traceback
        problem = f"could not check your function's result ({describe(err)})."
    if problem is not None:
        return fail(name, problem)
    labels = ", ".join(case.label.split(" (")[0] for case in exercise.cases)
    print(f"✓ {name}: {exercise.success} ({len(exercise.cases)} cases: {labels}).")
    return True


def judge(exercise: Exercise, fn: Callable) -> Optional[str]:
    """What is wrong with ``fn`` (for the first case that fails), or None if nothing is."""
    problem = signature_problem(fn, exercise, exercise.cases[0].make_args())
    if problem is not None:
        return problem
    trials = [attempt(fn, case, exercise) for case in exercise.cases]
    for trial in trials:
        if trial.problem is not None:
            return f"wrong for {trial.case.label}: {trial.problem}"
        if not close(trial.got, trial.expected, exercise):
            return f"wrong for {trial.case.label}: {value_problem(fn, trial, trials, exercise)}"
    for trial in trials:  # right values: now the gradient, where the exercise needs one
        problem = gradient_problem(trial, exercise)
        if problem is not None:
            return f"wrong for {trial.case.label}: {problem}"
    return None


@dataclass
class Trial:
    """The learner's function on one case: its result (None if unusable), the copies of the
    arguments it was given, and what went wrong."""

    case: Case
    args: tuple
    got: Optional[torch.Tensor]
    inputs: tuple
    expected: torch.Tensor
    problem: Optional[str]


def attempt(fn: Callable, case: Case, exercise: Exercise) -> Trial:
    """Run the reference and ``fn`` on one case."""
    args = case.make_args()
    expected = exercise.reference(*clone(args)).detach()
    got, inputs, problem = call(fn, args, exercise, case)
    if problem is None:
        got, problem = plain_result(got, expected, exercise)
    if problem is None:
        problem = output_problem(got, args, expected, exercise)
    return Trial(case, args, got if problem is None else None, inputs, expected, problem)


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
            f"your function's arguments are {getattr(fn, '__name__', 'fn')}{sig}, but it is "
            f"called as {exercise.signature}: {len(args)} arguments, in that order."
        )
    return None


def learners_code(thunk: Callable[[], Any], case: Case, what: str = "your function") -> Any:
    """Run ``thunk``, which runs the learner's code (``what``), within :data:`TIME_LIMIT_S`
    and with gradients on (a torch.set_grad_enabled of the learner's stays inside). Raises
    :class:`StopCheckError` when time runs out or on Ctrl-C; the learner's own exceptions pass
    through."""
    try:
        with torch.enable_grad():
            return call_with_time_limit(thunk, TIME_LIMIT_S)
    except TimeUp:
        raise StopCheckError(
            f"{what} was still running after {TIME_LIMIT_S:g} s on {case.label}, so the check "
            "stopped it: an endless loop? (The right answer takes milliseconds.)"
        ) from None
    except KeyboardInterrupt:
        raise StopCheckError(
            f"stopped while running {what} on {case.label} (interrupted)."
        ) from None


def call(
    fn: Callable, args: tuple, exercise: Exercise, case: Case
) -> tuple[Any, tuple, Optional[str]]:
    """Call ``fn`` on a copy of ``args``; return (result, the copies, what went wrong or None)."""
    inputs = clone(args)
    try:
        got = learners_code(lambda: fn(*inputs), case)
    except StopCheckError:
        raise
    except NotImplementedError:
        message = (
            "your function raises NotImplementedError: replace the `raise NotImplementedError` "
            "line with your code, run the cell, then run this check again."
        )
        return None, inputs, message
    except BaseException as err:  # the learner's code may raise anything, SystemExit too
        hint = exercise.error_hint(err, case) if exercise.error_hint else None
        message = f"your function raised {describe(err)}"
        return None, inputs, message + (f"\n  Hint: {hint}" if hint else "")
    for position, (before, after) in enumerate(zip(args, inputs)):
        if isinstance(before, torch.Tensor) and not same(before, after):
            param = exercise.params[position]
            message = (
                f"your function changed its input `{param}` in place (e.g. `{param} *= ...` or a "
                "method ending in _): compute a new tensor instead, inputs must stay as given."
            )
            return None, inputs, message
    return got, inputs, None


def plain_result(
    got: Any, expected: torch.Tensor, exercise: Exercise
) -> tuple[Optional[torch.Tensor], Optional[str]]:
    """``got`` as a plain, dense, real tensor on ``expected``'s device (its autograd graph
    kept), or (None, a message saying why it is not one)."""
    shape = list(expected.shape)
    if got is None:
        return None, "your function returned None: did you forget the `return` line?"
    if isinstance(got, tuple):
        return None, (
            f"your function returned a tuple of {len(got)} values: return only the tensor "
            f"({expected.dim()}-dim, shape {shape})."
        )
    if inspect.isgenerator(got) or inspect.iscoroutine(got):
        if inspect.iscoroutine(got):
            got.close()  # never run: no "coroutine was never awaited" warning
        return None, (
            f"your function returned a {type(got).__name__}: it contains `yield` or is `async "
            "def`. Make it a plain function that ends with `return`."
        )
    if not isinstance(got, torch.Tensor):
        what = type(got).__name__
        if isinstance(got, (int, float, complex)):
            what += " (a Python number: .item() turns a tensor into one)"
        elif type(got).__module__ == "numpy":
            what += " (NumPy: compute with torch operations on the tensors you are given)"
        return None, f"expected a torch.Tensor of shape {shape}, got a {what}."
    if type(got) is not torch.Tensor:  # a subclass may change every operation: drop it
        try:
            got = got.as_subclass(torch.Tensor)
        except Exception as err:
            return None, (
                f"your result is a {type(got).__name__}, which the check cannot read as a "
                f"tensor ({describe(err)}): return an ordinary torch.Tensor."
            )
    if got.is_nested:
        return None, f"your result is a nested tensor: return one ordinary tensor of shape {shape}."
    if got.layout != torch.strided:
        return None, f"your result is a sparse tensor ({got.layout}): return a dense one."
    if got.is_quantized:
        return None, f"your result is quantized ({got.dtype}): return floats."
    if got.is_meta:
        return None, (
            "your result is a meta tensor (device='meta'): it has a shape but no values. "
            "Compute it from the tensors you are given."
        )
    if got.device != expected.device:
        return None, (
            f"your result is on {got.device} but {exercise.like} is on {expected.device}: "
            f"compute on the device of {exercise.like} (no .cuda() or .to(...) needed)."
        )
    if got.is_complex():
        return None, (
            f"your result is complex ({got.dtype}): return real numbers. A Python power of a "
            "negative number, like (-0.5) ** 0.5, gives a complex one."
        )
    return got, None


def output_problem(
    got: torch.Tensor, args: tuple, expected: torch.Tensor, exercise: Exercise
) -> Optional[str]:
    """A message when ``got`` has not the expected shape and dtype, or has NaNs."""
    if got.shape != expected.shape:
        return shape_problem(got, args, expected, exercise)
    problem = dtype_problem(got.dtype, expected.dtype, exercise)
    if problem is not None:
        return problem
    if not torch.isfinite(got.detach()).all():
        return "your result contains NaN or inf (a square root of a negative number, or 1/0?)."
    return None


def shape_problem(
    got: torch.Tensor, args: tuple, expected: torch.Tensor, exercise: Exercise
) -> str:
    """What differs in the shape, with the exercise's hint or what the shapes themselves tell."""
    message = f"your result has shape {list(got.shape)}, expected {list(expected.shape)}."
    hint = exercise.shape_hint(got, args, expected) if exercise.shape_hint else None
    if hint is None and got.numel() == expected.numel():
        if got.squeeze().shape == expected.squeeze().shape:
            hint = "The values are there, with a dimension of size 1 too many or too few."
        else:
            hint = "It has the right number of values, arranged in another shape."
    return message + (f" {hint}" if hint else "")


def image_shape_hint(got: torch.Tensor, args: tuple, expected: torch.Tensor) -> Optional[str]:
    """Why a result meant to be an image batch [B, C, H, W] has another shape."""
    if got.dim() > expected.dim() and got.numel() > expected.numel():
        return (
            "It has more dimensions than the images: broadcasting added some (a value picked "
            "per image, shape [B], must be shaped [B, 1, 1, 1] before it multiplies an image "
            "batch [B, C, H, W]; schedule.gather does it), or a torch.stack did."
        )
    if got.dim() == expected.dim() and got.shape[1:] == expected.shape[1:]:
        return f"The batch differs: return one result for each of the {len(expected)} images."
    return None


def dtype_problem(got: torch.dtype, expected: torch.dtype, exercise: Exercise) -> Optional[str]:
    """A message when the result's dtype is not the reference's: which, why, and what to do."""
    if got == expected:
        return None
    like = exercise.like
    cause = exercise.dtype_hint(got) if exercise.dtype_hint else None
    if cause is None and got in (torch.float16, torch.bfloat16):
        cause = (
            "Half precision keeps only about 3 significant digits: drop the cast to it (.half(), "
            f"dtype={got} or autocast) and compute in the dtype of {like}."
        )
    elif cause is None and not got.is_floating_point:
        cause = (
            "Integers (or booleans) cannot hold these values (torch.tensor of ints, or //?): "
            f"compute with floats, in the dtype of {like}."
        )
    elif cause is None:
        cause = (
            "Something in your function changed the dtype (.float(), .double(), or torch.tensor"
            f"(...) without dtype=): keep that of {like}, or cast with .to({like}.dtype)."
        )
    return f"your result has dtype {got}, but {like} has {expected}. {cause}"


def schedule_dtype_hint(like: str) -> Callable[[torch.dtype], Optional[str]]:
    """The dtype hint of the exercises that use the schedule: its arrays are float64, and the
    package casts them only where they are picked (:meth:`NoiseSchedule.gather`)."""

    def hint(got: torch.dtype) -> Optional[str]:
        if got != torch.float64:
            return None
        return (
            "The schedule's arrays are float64, and multiplying by them made your result float64 "
            f"too (the U-Net would refuse it): index them and cast with .to({like}.dtype), or use "
            f"schedule.gather(values, t, {like}), which picks, shapes to [B, 1, 1, 1] and casts."
        )

    return hint


def value_problem(fn: Callable, failed: Trial, trials: list[Trial], exercise: Exercise) -> str:
    """What differs on the failed case, and the hint that names the likeliest cause: an answer
    that changes from call to call, half-precision rounding, two arguments swapped, then the
    known mistake that gives the same answers (first one that matches on every case, else one
    that matches on the failed case: two mistakes at once match no single variant everywhere)."""
    got, expected = failed.got.detach(), failed.expected
    diff = (got.double() - expected.double()).abs().max().item()
    message = f"largest difference {diff:.3g} from the reference."
    if expected.numel() <= 8:
        scale = max(expected.double().abs().max().item(), 1e-12)
        digits = 4 if diff >= 1e-3 * scale else min(10, 3 + math.ceil(-math.log10(diff / scale)))
        message += f"\n  got:      {fmt(got, digits)}\n  expected: {fmt(expected, digits)}"
    hint = (
        changing_hint(fn, failed, exercise)
        or rounding_hint(got, expected, exercise)
        or swap_hint(fn, failed, trials, exercise)
        or mistake_hint(failed, trials, exercise)
        or fallback_hint(fn, failed, trials, exercise)
    )
    return message + f"\n  Hint: {hint}"


def changing_hint(fn: Callable, failed: Trial, exercise: Exercise) -> Optional[str]:
    """A hint when a second call on the same arguments gives another answer."""
    again, _, problem = call(fn, failed.args, exercise, failed.case)
    if problem is None:
        again, problem = plain_result(again, failed.expected, exercise)
    if again is not None and (again.shape, again.dtype) == (failed.got.shape, failed.got.dtype):
        if not torch.equal(again.detach(), failed.got.detach()):
            return (
                "your function gives a different answer each time it is called: use the noise "
                "passed in as an argument instead of drawing new random numbers."
            )
    return None


def rounding_hint(got: torch.Tensor, expected: torch.Tensor, exercise: Exercise) -> Optional[str]:
    """A hint when the result is right up to the rounding of a half-precision dtype: every value
    is a bfloat16 (or float16) number, within 5% of the reference."""
    for half in (torch.bfloat16, torch.float16):  # bfloat16 first: its numbers are coarser
        if torch.equal(got, got.to(half).to(got.dtype)) and torch.allclose(
            got.double(), expected.double(), rtol=5e-2, atol=1e-3
        ):
            return (
                f"your values are rounded to {half} (half precision, about 3 significant "
                f"digits): something in your function computes in {half} (.half(), "
                f"dtype={half} or autocast). Compute in the dtype of {exercise.like}."
            )
    return None


def swap_hint(
    fn: Callable, failed: Trial, trials: list[Trial], exercise: Exercise
) -> Optional[str]:
    """A hint when the result is the reference's with two same-shaped arguments exchanged."""
    seen = [failed] + [trial for trial in trials if trial.got is not None and trial is not failed]
    tensors = [i for i, a in enumerate(failed.args) if isinstance(a, torch.Tensor)]
    for i, j in itertools.combinations(tensors, 2):
        if failed.args[i].shape != failed.args[j].shape:
            continue
        if all(
            close(trial.got, swapped_reference(trial.args, i, j, exercise), exercise)
            for trial in seen
        ):
            a, b = exercise.params[i], exercise.params[j]
            advice = order_note(fn, exercise) or (
                f"Check that your function takes them in the order {exercise.signature}, and "
                "which one each coefficient multiplies."
            )
            return f"`{a}` and `{b}` are swapped: each is used in the other's place. {advice}"
    return None


def swapped_reference(args: tuple, i: int, j: int, exercise: Exercise) -> Optional[torch.Tensor]:
    """The reference's answer with arguments ``i`` and ``j`` exchanged (None if it has none)."""
    copies = list(clone(args))
    copies[i], copies[j] = copies[j], copies[i]
    try:
        return exercise.reference(*copies).detach()
    except (IndexError, RuntimeError, ValueError):
        return None


def order_note(fn: Callable, exercise: Exercise) -> Optional[str]:
    """A sentence when ``fn``'s parameters carry the exercise's names in another order."""
    try:
        names = [p.name for p in inspect.signature(fn).parameters.values()]
    except (TypeError, ValueError):
        return None
    if sorted(names) != sorted(exercise.params) or names == exercise.params:
        return None
    return (
        f"Your function takes ({', '.join(names)}), but it is called as {exercise.signature}: "
        "put its parameters in that order."
    )


def mistake_hint(failed: Trial, trials: list[Trial], exercise: Exercise) -> Optional[str]:
    """The hint of the known mistake that gives the learner's answers."""
    others = [trial for trial in trials if trial.got is not None and trial is not failed]
    for everywhere in (True, False):
        for mistake in exercise.mistakes:
            if gives(mistake, failed, exercise, absent=False) and (
                not everywhere or all(gives(mistake, trial, exercise) for trial in others)
            ):
                return mistake.hint
    return None


def fallback_hint(fn: Callable, failed: Trial, trials: list[Trial], exercise: Exercise) -> str:
    """No known cause: say which cases are right, and how to look for the difference."""
    hint = (
        "compare your code with the equation above, one factor at a time; try it on the case "
        "above and print the intermediate values."
    )
    verdicts = [
        (t.case.label.split(" (")[0], close(t.got, t.expected, exercise))
        for t in trials
        if t.got is not None
    ]
    right = [label for label, ok in verdicts if ok]
    if right:
        wrong = [label for label, ok in verdicts if not ok]
        hint = (
            f"your function is right for {'; '.join(right)} but not for {'; '.join(wrong)}: {hint}"
        )
    note = order_note(fn, exercise)
    return hint + (f" {note}" if note else "")


def gradient_problem(trial: Trial, exercise: Exercise) -> Optional[str]:
    """For an exercise with ``gradient_of``: a message unless the result passes the reference's
    gradient back to that argument (the loss to predicted_noise, so that training can learn)."""
    if exercise.gradient_of is None:
        return None
    name, i = exercise.gradient_of, exercise.params.index(exercise.gradient_of)
    cut_off = (
        f"your loss is cut off from {name}: .item(), .detach(), torch.tensor(...) or a NumPy "
        "detour make a new number with no link to it (requires_grad=True does not bring the "
        f"link back), so loss.backward() could not train anything. Compute it with torch "
        f"operations on {name}."
    )
    got, wrt = trial.got, trial.inputs[i]
    if not got.requires_grad:
        return cut_off
    try:
        grad = learners_code(  # a custom autograd Function would run the learner's backward
            lambda: torch.autograd.grad(got, wrt, torch.ones_like(got), allow_unused=True)[0],
            trial.case,
            what="the backward of your loss",
        )
    except StopCheckError:
        raise
    except BaseException as err:
        return (
            f"the gradient of your loss with respect to {name} could not be computed "
            f"({describe(err)}). Return the loss; the training loop calls backward()."
        )
    if grad is None:
        return cut_off
    inputs = clone(trial.args)
    reference = exercise.reference(*inputs)
    expected = torch.autograd.grad(reference, inputs[i], torch.ones_like(reference))[0]
    if close(grad, expected, exercise):
        return None
    diff = (grad.double() - expected.double()).abs().max().item()
    said = (
        f"your loss has the right value but not the right gradient with respect to {name} "
        f"(largest difference {diff:.3g} from the reference's)"
    )
    if not grad.any():
        return (
            f"{said}: none of it reaches {name}, so part of your loss is cut off from it (a "
            f".detach(), .item() or torch.tensor(...) inside?). Compute all of it with torch "
            f"operations on {name}."
        )
    return (
        f"{said}. Compute all of it with torch operations on {name}, in its dtype, with no "
        ".detach() on a part of it and no backward of your own."
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


def close(got: torch.Tensor, expected: Optional[torch.Tensor], exercise: Exercise) -> bool:
    """Element-wise |got - expected| <= atol + rtol |expected|, compared in float64."""
    if expected is None:
        return False
    a, b = got.detach().double().cpu(), expected.detach().double().cpu()
    return a.shape == b.shape and torch.allclose(a, b, rtol=exercise.rtol, atol=exercise.atol)


def same(before: torch.Tensor, after: Any) -> bool:
    """True when the learner's copy ``after`` still equals the argument ``before``."""
    return (
        type(after) is torch.Tensor
        and after.layout == before.layout
        and after.dtype == before.dtype
        and after.shape == before.shape
        and torch.equal(before, after.detach())
    )


def clone(args: Sequence[Any]) -> tuple:
    """Copies of the tensors in ``args`` (gradients kept where asked), other values as they are."""
    return tuple(
        (a.detach().clone().requires_grad_(a.requires_grad) if isinstance(a, torch.Tensor) else a)
        for a in args
    )


def describe(err: BaseException) -> str:
    """``Type: first line of the message``, short, even for an exception whose str() fails."""
    try:
        lines = str(err).strip().splitlines()
    except Exception:
        lines = []
    first = lines[0] if lines else ""
    if len(first) > 200:
        first = first[:200] + "..."
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def fmt(x: torch.Tensor, digits: int = 4) -> str:
    """A few values of a tensor, for messages."""
    values = x.detach().double().reshape(-1).tolist()
    return "[" + ", ".join(f"{v:.{digits}g}" for v in values) + "]"
