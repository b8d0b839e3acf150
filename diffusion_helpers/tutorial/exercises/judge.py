"""The one judge of every exercise in :mod:`.table`: it runs the learner's function on copies of
each case (time-boxed, gradients on), reads what came back, and compares it with the reference
(shape, dtype, values, and for a loss the gradient). The expected values are computed only after
the learner's function has run on every case, so no frame above its call holds one to copy."""

from __future__ import annotations

import copy
import inspect
import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch

from .time_limit import TimeUp, call_with_time_limit

# A right answer in float32 is ~1e-6 relative from the reference; every known mistake is more
# than 1e-4 off on some case (the closest, abar one step off, by beta_t).
RTOL, ATOL = 1e-4, 1e-6
TIME_LIMIT_S = 10.0  # per call; the slowest right answers (Python loops over T) take < 0.1 s


@dataclass
class Exercise:
    """A row of the table, and the checker of its exercise: call it with the learner's function."""

    signature: str  # "q_sample(x0, t, noise, schedule)": the result is like the first argument
    reference: Callable[..., torch.Tensor]  # the right answer, called like the learner's function
    cases: dict[str, tuple]  # label -> the arguments of one call
    mistakes: list[tuple[Callable[..., torch.Tensor], str]]  # (a known wrong variant, its hint)
    success: str  # printed after "✓ check_<name>: "
    errors: list[tuple[str, str]] = field(default_factory=list)  # (regex on an error, hint)
    gradient_of: Optional[str] = None  # the argument the result must pass the gradient back to

    def __call__(self, fn: Any) -> bool:
        """:func:`check` the learner's ``fn``: True when it is right."""
        return check(self, fn)

    def __repr__(self) -> str:
        return f"check_{self.name}: checks your {self.signature}"

    @property
    def name(self) -> str:
        return self.signature.split("(")[0]

    @property
    def params(self) -> list[str]:
        return self.signature.split("(")[1].rstrip(")").split(", ")


@dataclass
class Trial:
    """The learner's function on one case: the copies it was given, what it returned, what is
    wrong with it, and the reference's answer."""

    label: str
    args: tuple
    inputs: tuple = ()
    got: Any = None
    problem: Optional[str] = None
    expected: Optional[torch.Tensor] = None


class StopCheckError(Exception):
    """The learner's function ran too long or was interrupted: the check ends here."""


def check(exercise: Exercise, fn: Any) -> bool:
    """Print "✓ ..." and return True when ``fn`` matches the reference on every case, else print
    what differs on the first case that fails, with a hint, and return False. Never raises."""
    try:  # gradients on even under the notebook's no_grad() or inference_mode(); both come back
        with torch.inference_mode(False), torch.enable_grad():
            problem = judge(exercise, fn)
    except StopCheckError as stop:
        problem = str(stop)
    except KeyboardInterrupt:
        problem = "stopped while checking (interrupted): run the check again."
    except Exception as err:  # something the judge did not foresee: still no traceback
        problem = f"could not check your function's result ({describe(err)})."
    if problem is not None:
        print(f"✗ check_{exercise.name}: {problem}")
        return False
    labels = ", ".join(short(label) for label in exercise.cases)
    print(f"✓ check_{exercise.name}: {exercise.success} ({len(exercise.cases)} cases: {labels}).")
    return True


def judge(exercise: Exercise, fn: Any) -> Optional[str]:
    """What is wrong with ``fn`` on the first case that fails, or None."""
    trials = [Trial(label, args) for label, args in exercise.cases.items()]
    problem = signature_problem(fn, exercise, trials[0].args)
    if problem is not None:
        return problem
    for trial in trials:  # the learner's function first: no expected value exists yet
        call(fn, trial, exercise)
    for trial in trials:
        trial.expected = exercise.reference(*clone(trial.args)).detach()
        trial.problem = trial.problem or read(trial, exercise)
    for trial in trials:
        if trial.problem is None and not close(trial.got, trial.expected):
            trial.problem = value_problem(fn, trial, trials, exercise)
        if trial.problem is not None:
            return f"wrong for {trial.label}: {trial.problem}"
    for trial in trials:  # right values: now the gradient, where the exercise needs one
        problem = gradient_problem(trial, exercise)
        if problem is not None:
            return f"wrong for {trial.label}: {problem}"
    return None


def signature_problem(fn: Any, exercise: Exercise, args: tuple) -> Optional[str]:
    """A message when ``fn`` is not a function that accepts the exercise's arguments."""
    if not callable(fn):
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


def learners_code(thunk: Callable[[], Any], label: str, what: str = "your function") -> Any:
    """``thunk()``, time-boxed and with gradients on: :class:`StopCheckError` when time runs out
    or on Ctrl-C; the learner's own errors pass through."""
    try:
        with torch.enable_grad():
            return call_with_time_limit(thunk, TIME_LIMIT_S)
    except TimeUp:
        raise StopCheckError(
            f"{what} was still running after {TIME_LIMIT_S:g} s on {label}, so the check stopped "
            "it: an endless loop? (The right answer takes milliseconds.)"
        ) from None
    except KeyboardInterrupt:
        raise StopCheckError(f"stopped while running {what} on {label} (interrupted).") from None


def call(fn: Callable, trial: Trial, exercise: Exercise) -> None:
    """Run ``fn`` on copies of the trial's arguments; keep what it returned or what went wrong."""
    trial.inputs = clone(trial.args)
    try:
        trial.got = learners_code(lambda: fn(*trial.inputs), trial.label)
    except StopCheckError:
        raise
    except NotImplementedError:
        trial.problem = "your function raises NotImplementedError: replace that line with yours."
    except BaseException as err:  # the learner's code may raise anything, SystemExit too
        said = describe(err)
        hint = next((h for pattern, h in exercise.errors if re.search(pattern, said)), None)
        trial.problem = f"your function raised {said}" + (f"\n  Hint: {hint}" if hint else "")
    else:
        for name, before, after in zip(exercise.params, trial.args, trial.inputs):
            if isinstance(before, torch.Tensor) and not (
                (after.shape, after.dtype) == (before.shape, before.dtype)
                and torch.equal(before, after.detach())
            ):
                trial.problem = (
                    f"your function changed its input `{name}` in place (`{name} *= ...`, or a "
                    "method ending in _): compute a new tensor, inputs must stay as given."
                )


def read(trial: Trial, exercise: Exercise) -> Optional[str]:
    """Say why ``trial.got`` is not a plain tensor like the reference's (a subclass becomes one)."""
    got, expected, like = trial.got, trial.expected, exercise.params[0]
    shape = list(expected.shape)
    if got is None:
        return "your function returned None: did you forget the `return` line?"
    if isinstance(got, tuple):
        return f"your function returned a tuple of {len(got)} values: return only the tensor."
    if inspect.isgenerator(got) or inspect.iscoroutine(got):
        got.close()  # never run: no "coroutine was never awaited" warning
        return f"your function returned a {type(got).__name__}: use `return`, not `yield` or async."
    if not isinstance(got, torch.Tensor):
        what = type(got).__name__
        if isinstance(got, (int, float, complex)):
            what += " (a Python number: .item() turns a tensor into one)"
        elif type(got).__module__ == "numpy":
            what += " (NumPy: compute with torch operations on the tensors you are given)"
        return f"expected a torch.Tensor of shape {shape}, got a {what}."
    if type(got) is not torch.Tensor:  # a subclass may change every operation: drop it
        got = trial.got = got.as_subclass(torch.Tensor)
    if got.is_nested:
        return f"your result is a nested tensor: return one ordinary tensor of shape {shape}."
    if got.layout != torch.strided:
        return f"your result is a sparse tensor ({got.layout}): return a dense one."
    if got.is_meta:
        return "your result is a meta tensor: it has a shape but no values. Compute it."
    if got.device != expected.device:
        return f"your result is on {got.device} but {like} is on {expected.device}: drop the .to()."
    if got.is_complex():
        return "your result is complex: return real numbers ((-0.5) ** 0.5 is complex in Python)."
    if got.shape != expected.shape:
        hint = mistake_hint([trial], exercise)
        if hint is None and got.squeeze().shape == expected.squeeze().shape:
            hint = "the values are there, with a dimension of size 1 too many or too few."
        return (
            f"your result has shape {list(got.shape)}, expected {shape}"
            + ("." if shape else " (a 0-dim tensor: one number).")
            + (f"\n  Hint: {hint}" if hint else "")
        )
    if got.dtype != expected.dtype:
        return dtype_problem(got.dtype, expected.dtype, exercise)
    if not torch.isfinite(got.detach()).all():
        return "your result contains NaN or inf (a square root of a negative number, 1/0?)."
    return None


def dtype_problem(got: torch.dtype, want: torch.dtype, exercise: Exercise) -> str:
    """The result's dtype instead of the reference's, the likely cause and what to do."""
    like = exercise.params[0]
    if got in (torch.float16, torch.bfloat16):
        why = f"Half precision keeps 3 significant digits: drop .half(), dtype={got} or autocast."
    elif not got.is_floating_point:
        why = "Integers (or booleans) cannot hold these values: compute with floats."
    elif got == torch.float32:  # where float64 is wanted: alpha-bar, like the schedule's
        why = (
            "In float32, 1 - abar_t near t = 0 keeps only about 3 significant digits, so the "
            f"schedule keeps float64. Drop the .float(), or give dtype={like}.dtype."
        )
    elif "schedule" in exercise.params:
        why = (
            "The schedule's float64 arrays made your result float64 (the U-Net would refuse it): "
            f"cast with .to({like}.dtype), or use schedule.gather(values, t, {like}), which does."
        )
    else:
        why = f"Keep the dtype of {like}: drop the .double(), or cast with .to({like}.dtype)."
    return f"your result has dtype {got}, but {like} has {want}. {why}"


def value_problem(fn: Callable, failed: Trial, trials: list[Trial], exercise: Exercise) -> str:
    """The largest difference on the failed case (its values, when few), and the first hint that
    fits: answers that change between calls, half-precision rounding, a known mistake on every
    case seen, two arguments swapped, a known mistake on this case, else which cases are right."""
    got, expected = failed.got.detach(), failed.expected
    diff = (got.double() - expected.double()).abs().max().item()
    message = f"largest difference {diff:.3g} from the reference."
    if expected.numel() <= 8:  # with enough digits to see where they differ
        scale = max(expected.double().abs().max().item(), 1e-12)
        digits = 4 if diff >= 1e-3 * scale else min(10, 3 + math.ceil(-math.log10(diff / scale)))
        message += f"\n  got:      {fmt(got, digits)}\n  expected: {fmt(expected, digits)}"
    seen = [failed] + [t for t in trials if t.problem is None and t is not failed]
    again = Trial(failed.label, failed.args, expected=failed.expected)
    call(fn, again, exercise)
    if again.problem is None and read(again, exercise) is None and not close(again.got, got):
        hint = (
            "your function gives a different answer each time it is called: use the noise "
            "passed in as an argument instead of drawing new random numbers."
        )
    else:
        hint = (
            rounding_hint(failed, exercise)
            or mistake_hint(seen, exercise)
            or swap_hint(fn, seen, exercise)
            or mistake_hint(seen[:1], exercise)  # two mistakes at once match no variant everywhere
            or fallback_hint(seen)
        )
    return message + f"\n  Hint: {hint}"


def rounding_hint(failed: Trial, exercise: Exercise) -> Optional[str]:
    """A hint when every value is a bfloat16 (or float16) number within 5% of the reference."""
    got = failed.got.detach()
    for half in (torch.bfloat16, torch.float16):  # bfloat16 first: its numbers are coarser
        if torch.equal(got, got.to(half).to(got.dtype)) and torch.allclose(
            got.double(), failed.expected.double(), rtol=5e-2, atol=1e-3
        ):
            return (
                f"your values are rounded to {half} (half precision, about 3 significant "
                f"digits): something in your function computes in {half} (.half(), "
                f"dtype={half} or autocast). Compute in the dtype of {exercise.params[0]}."
            )
    return None


def mistake_hint(seen: list[Trial], exercise: Exercise) -> Optional[str]:
    """The hint of the first known mistake that gives the learner's answers on the cases seen
    (on the first, the failed case, it must; elsewhere where it has an answer)."""
    for variant, hint in exercise.mistakes:
        if gives(variant, seen[0], False) and all(gives(variant, t) for t in seen[1:]):
            return hint
    return None


def swap_hint(fn: Callable, seen: list[Trial], exercise: Exercise) -> Optional[str]:
    """A hint when the answers are the reference's with two same-shaped arguments exchanged."""
    args = seen[0].args
    tensors = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
    for i, j in itertools.combinations(tensors, 2):

        def swapped(*a: Any, i: int = i, j: int = j) -> torch.Tensor:
            a = list(a)
            a[i], a[j] = a[j], a[i]
            return exercise.reference(*a)

        if args[i].shape == args[j].shape and all(gives(swapped, t, False) for t in seen):
            names = list(inspect.signature(fn).parameters)
            if sorted(names) == sorted(exercise.params) and names != exercise.params:
                advice = (
                    f"Your function takes ({', '.join(names)}), but it is called as "
                    f"{exercise.signature}: put its parameters in that order."
                )
            else:
                advice = (
                    f"Check that your function takes them in the order {exercise.signature}, "
                    "and which one each coefficient multiplies."
                )
            a, b = exercise.params[i], exercise.params[j]
            return f"`{a}` and `{b}` are swapped: each is used in the other's place. {advice}"
    return None


def fallback_hint(seen: list[Trial]) -> str:
    """No known cause: say which cases are right, and how to look for the difference."""
    hint = (
        "compare your code with the equation above, one factor at a time; try it on the case "
        "above and print the intermediate values."
    )
    right = "; ".join(short(t.label) for t in seen if close(t.got, t.expected))
    wrong = "; ".join(short(t.label) for t in seen if not close(t.got, t.expected))
    return f"your function is right for {right} but not for {wrong}: {hint}" if right else hint


def gradient_problem(trial: Trial, exercise: Exercise) -> Optional[str]:
    """What is wrong unless the result passes the reference's gradient back to
    ``exercise.gradient_of`` (a loss to the prediction, so that training can learn)."""
    name = exercise.gradient_of
    if name is None:
        return None
    i = exercise.params.index(name)
    got, wrt = trial.got, trial.inputs[i]
    cut_off = (
        f"your loss is cut off from {name}: .item(), .detach(), torch.tensor(...) or a NumPy "
        "detour make a new number with no link to it (requires_grad=True does not bring the "
        f"link back), so loss.backward() could not train anything. Compute it with torch "
        f"operations on {name}."
    )
    if not got.requires_grad:
        return cut_off
    try:  # a custom autograd Function runs the learner's backward: time-boxed too
        backward = lambda: torch.autograd.grad(got, wrt, allow_unused=True)[0]  # noqa: E731
        grad = learners_code(backward, trial.label, "the backward of your loss")
    except StopCheckError:
        raise
    except BaseException as err:
        return f"the gradient of your loss with respect to {name} failed: {describe(err)}."
    if grad is None:
        return cut_off
    inputs = clone(trial.args)
    if close(grad, torch.autograd.grad(exercise.reference(*inputs), inputs[i])[0]):
        return None
    return (
        f"your loss has the right value but not the right gradient with respect to {name}: "
        f"compute all of it with torch operations on {name}, in its dtype, with no .detach() "
        "on a part of it and no backward of your own."
    )


def gives(variant: Callable, trial: Trial, absent: bool = True) -> bool:
    """Whether ``variant`` gives the learner's answer on this case (``absent`` where it has none,
    an index out of range at the last step, say)."""
    try:
        wrong = variant(*clone(trial.args))
    except (IndexError, RuntimeError, ValueError):
        return absent
    return close(trial.got, wrong)


def close(got: Any, expected: torch.Tensor) -> bool:
    """|got - expected| <= ATOL + RTOL |expected| everywhere, compared in float64."""
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return False
    a, b = got.detach().double().cpu(), expected.detach().double().cpu()
    return torch.allclose(a, b, rtol=RTOL, atol=ATOL)


def clone(args: tuple) -> tuple:
    """Deep copies of ``args``, the schedule included: what a function changes stays there."""
    return copy.deepcopy(args)


def short(label: str) -> str:
    """A case's label without its note in brackets: "t = 0 (the first step)" -> "t = 0"."""
    return label.split(" (")[0]


def describe(err: BaseException) -> str:
    """``Type: first line of the message``, at most 200 characters, even when str() fails."""
    try:
        lines = str(err).strip().splitlines()
    except Exception:
        lines = []
    first = lines[0][:200] + "..." * (len(lines[0]) > 200) if lines else ""
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def fmt(x: torch.Tensor, digits: int) -> str:
    """The values of a small tensor, for messages."""
    return "[" + ", ".join(f"{v:.{digits}g}" for v in x.double().reshape(-1).tolist()) + "]"
