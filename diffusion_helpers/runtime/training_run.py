"""The machinery of one training run, around Algorithm 1: :func:`.train.train` reads as the
algorithm plus its named extras, and everything here is how it runs, not what it computes.

- Where: the device and its precision (:mod:`.device`), one process or torchrun's
  (:mod:`.distributed`), CPU threads chosen again as other programs come and go
  (:mod:`.threads`), CUDA graphs on a GPU (:mod:`.graphs`).
- The checkpoint: checked and locked before any work (:mod:`..storage.outputs`); resumed when
  it exists, after checking it was trained on the same data with the same seed; saved every
  minute, at the end and on Ctrl-C or SIGTERM (:class:`Checkpointer`).
- Stopping: the budget (steps or minutes); Ctrl-C and SIGTERM are noted and obeyed at the next
  step boundary (:class:`.interrupts.StopRequests`), so a checkpoint always holds whole steps.
  An exception that cuts a step (a second Ctrl-C, a hook) is settled by :meth:`TrainingRun.
  whole_step`: the step is undone when the weights had not moved yet, completed when they had.
- The progress bar, with the loss and images per second.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from tqdm.auto import tqdm

from ..storage.checkpoint import (
    RECORD_STEPS,
    CheckpointError,
    read_checkpoint,
    resume_training,
    save_or_rescue,
    training_state,
)
from ..storage.outputs import claim_checkpoint
from .device import pick_device, pick_precision
from .distributed import Team, join
from .graphs import TrainGraphs, check_request
from .interrupts import StopRequests
from .threads import ThreadGuard


@dataclass
class Progress:
    """How far a run has come (saved in checkpoints): steps, every step's loss, and the
    (t, per-image loss) pairs of the last RECORD_STEPS steps."""

    step: int = 0
    losses: list[float] = field(default_factory=list)
    record_t: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    record_loss: torch.Tensor = field(default_factory=lambda: torch.zeros(0))

    def add(self, t: torch.Tensor, per_image: torch.Tensor, loss: float) -> None:
        """Count one step with its timesteps [B], per-image losses [B] and mean loss."""
        self.step += 1
        self.losses.append(loss)
        keep = RECORD_STEPS * t.shape[0]
        self.record_t = torch.cat([self.record_t, t.cpu()])[-keep:]
        self.record_loss = torch.cat([self.record_loss, per_image.float().cpu()])[-keep:]

    def state(self) -> dict:
        """What a checkpoint stores of it."""
        return {"step": self.step, "losses": self.losses, "record_t": self.record_t,
                "record_loss": self.record_loss}  # fmt: skip


@dataclass
class TrainingState:
    """Everything a step changes, which a checkpoint must hold to resume exactly."""

    model: torch.nn.Module
    ema: Optional[torch.nn.Module]
    optimizer: torch.optim.Optimizer
    scaler: Optional[Any]
    generator: torch.Generator
    schedule: Any


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss); the last checkpoint on disk is intact."""


class Checkpointer:
    """Writes the training state to ``path`` every ``every`` steps, every ``minutes``, and
    when asked; a folder that stopped accepting files sends the state to a rescue path (said in
    the returned note). No signal interrupts a save."""

    def __init__(
        self, path: Optional[Path], every: int, minutes: float, state: Callable[[], dict],
        stops: StopRequests,
    ) -> None:  # fmt: skip
        self.path, self.every, self.seconds, self.state = path, every, 60 * minutes, state
        self.stops = stops
        self.saved: Optional[Path] = None
        self.last = time.perf_counter()

    def due(self, step: int) -> bool:
        """True when ``step`` (just finished) should be saved."""
        late = time.perf_counter() - self.last > self.seconds
        return self.path is not None and (step % self.every == 0 or late)

    def save(self) -> str:
        """Save now; return a note for the learner ("" when all went as planned)."""
        with self.stops.held():
            self.saved, trouble = save_or_rescue(self.path, self.state())
        self.last = time.perf_counter()
        return (
            f" (could not write {self.path}: {trouble}; saved to {self.saved})" if trouble else ""
        )


class Step:
    """What :meth:`TrainingRun.whole_step` needs to settle a cut step: what the step measured
    (``t, per_image, loss``, recorded before the weights move) and whether it was undone."""

    def __init__(self) -> None:
        self.measured: Optional[tuple[torch.Tensor, torch.Tensor, float]] = None
        self.undone = False


class TrainingRun:
    """One call of :func:`.train.train`: enter it before any work (it checks and locks the
    checkpoint), :meth:`start` it once the state is built, loop while :meth:`keep_going`.

    Attributes (after entering): ``team`` (the processes), ``device``, ``precision`` (resolved),
    ``graphs`` (:class:`.graphs.TrainGraphs`, after :meth:`start`), ``stopped`` (the signal
    that stopped the run, or None), ``elapsed`` (seconds), ``first_step``, ``saver``.
    """

    def __init__(self, config: Any) -> None:
        self.cfg = config
        self.stack = ExitStack()
        self.stops = StopRequests()
        self.stopped: Optional[str] = None
        self._stored: Optional[dict] = None

    def __enter__(self) -> TrainingRun:  # noqa: D105
        cfg, stack = self.cfg, self.stack.__enter__()
        try:
            self.team: Team = stack.enter_context(join(pick_device(cfg.device)))
            self.device = self.team.device
            check_request(cfg.cuda_graphs, self.device, self.team.world_size)  # "on" refused now
            self.precision = pick_precision(cfg.precision, self.device)
            self.path: Optional[Path] = None
            self.resuming = False
            if cfg.checkpoint is not None:  # process 0 checks and locks it; all get its verdict
                self.path, self.resuming = self.team.on_main(
                    lambda: claim_checkpoint(cfg.checkpoint, stack)
                )
            self.threads = stack.enter_context(ThreadGuard(cfg.threads, self.device))
        except BaseException:
            stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:  # noqa: D105
        self.stack.close()

    def seed(self, given: Optional[int]) -> int:
        """``given``; else the seed of the checkpoint a resume continues, or a fresh random one
        (process 0's, the same on every process)."""
        if given is not None:
            return given
        stored = (self.stored().get("settings") or {}).get("seed") if self.resuming else None
        fresh = stored if stored is not None else random.SystemRandom().randrange(2**31)
        return self.team.on_main(lambda: fresh)

    def stored(self) -> dict:
        """The checkpoint this run resumes (read once; every process reads it)."""
        if self._stored is None:
            self._stored = read_checkpoint(self.path)
        return self._stored

    def start(
        self,
        state: TrainingState,
        config: Any,
        data_fingerprint: str,
        picture: Optional[torch.Tensor] = None,
    ) -> Progress:
        """Resume from the checkpoint if there is one (same model, schedule, data and seed, or
        a :class:`CheckpointError` that says which differs), then set up the saves, the
        progress bar, CUDA graphs and the stop signals. ``config`` is the resolved config,
        stored in the checkpoint, with ``picture`` when the data is one picture."""
        self.config, self.state, self.fingerprint = config, state, data_fingerprint
        self.picture = picture
        progress = Progress()
        if self.resuming:  # every process reads the checkpoint
            check_same_run(self.stored(), config, data_fingerprint, self.path)
            progress = Progress(**resume_training(
                self.path, state.model, state.ema, state.optimizer, state.scaler, state.schedule,
                state.generator, self.device,
            ))  # fmt: skip
        self.first_step = progress.step
        self.saver = Checkpointer(
            self.path if self.team.is_main else None,  # only process 0 writes
            config.checkpoint_every, config.checkpoint_minutes,
            lambda: {**training_state(state.model, state.ema, state.optimizer, state.scaler,
                                      state.schedule, state.generator),
                     **progress.state(), **self.run_record()},
            self.stops,
        )  # fmt: skip
        self.progress = progress
        show = config.progress and self.team.is_main  # one bar, on process 0
        steps = config.steps
        self.bar = tqdm(total=steps, initial=progress.step, disable=not show, desc="training",
                        unit="step")  # fmt: skip
        self.stack.callback(self.bar.close)
        self.graphs = TrainGraphs(self.team.wrap(state.model), config.cuda_graphs, self.device,
                                  self.team.world_size, self.bar.write,
                                  passthrough=(TrainingError,),
                                  rng=state.generator)  # fmt: skip
        self.stops.second_raises = self.team.world_size == 1
        self.stack.enter_context(self.stops)
        self.budget_s = config.minutes * 60 if config.minutes else math.inf
        self.started = time.perf_counter()
        self.elapsed = 0.0
        return progress

    def run_record(self) -> dict:
        """What a checkpoint says about the run, to check a resume against: the data's
        fingerprint, the seed and the resolved settings (plain values)."""
        cfg = self.config
        settings = {k: getattr(cfg, k) for k in ("batch_size", "lr", "precision", "flip", "seed",
                                                  "device", "threads", "prediction")}  # fmt: skip
        record = {"data": self.fingerprint, "settings": settings, "processes": self.team.world_size}
        return {**record, "picture": self.picture} if self.picture is not None else record

    def keep_going(self, progress: Progress) -> bool:
        """False once the budget is spent or a stop was asked for (by any process)."""
        self.threads.update()  # other programs come and go: leave their cores to them
        elapsed, self.stopped = self.team.agree(
            time.perf_counter() - self.started, self.stops.noted
        )
        self.elapsed = elapsed
        steps = self.config.steps
        if self.stopped or elapsed >= self.budget_s:
            return False
        return steps is None or progress.step < steps

    def spent(self, step: int) -> float:
        """The fraction of the budget spent, for the learning-rate schedule."""
        steps = self.config.steps
        return max(step / steps if steps else 0.0, self.elapsed / self.budget_s)

    def left(self, step: int) -> tuple[Optional[int], float]:
        """The budget left: (steps or None, seconds), for the CUDA-graphs decision."""
        steps = self.config.steps
        return (steps - step if steps else None, self.budget_s - self.elapsed)

    @contextlib.contextmanager
    def whole_step(self) -> Iterator[Step]:
        """Run one step so that an exception that cuts it (a second Ctrl-C, a hook) leaves the
        state at a step boundary: before the optimiser moved the weights, the step's random
        draws are rewound and it is undone (``step.undone``); after, it counts as done (its
        measurements were recorded first) and the caller completes its bookkeeping. Either
        way the run then stops and saves, and resuming equals a run that was never cut."""
        step, state = Step(), self.state
        rng, updates = state.generator.get_state(), optimizer_updates(state.optimizer)
        try:
            yield step
        except KeyboardInterrupt as err:
            self.stops.note(getattr(err, "signal_name", "SIGINT"))
            if optimizer_updates(state.optimizer) == updates or step.measured is None:
                state.generator.set_state(rng)
                state.optimizer.zero_grad(set_to_none=True)
                step.undone = True

    def after_step(self, progress: Progress, callback: Optional[Callable]) -> None:
        """The progress bar, a checkpoint when due, and ``callback(step, loss)``; a callback
        that raises KeyboardInterrupt stops the run after this step."""
        self.bar.update(1)
        recent = progress.losses[-20:]
        rate = (progress.step - self.first_step) * self.config.batch_size / max(
            time.perf_counter() - self.started, 1e-9)  # fmt: skip
        self.bar.set_postfix(loss=f"{sum(recent) / len(recent):.4f}", img_s=f"{rate:.0f}")
        if self.saver.due(progress.step) and (note := self.saver.save()):
            self.bar.write(f"Checkpoint at step {progress.step}{note}")  # only when it went astray
        if callback is not None:
            try:
                callback(progress.step, progress.losses[-1])
            except KeyboardInterrupt:
                self.stops.note("SIGINT")

    def finish(self, progress: Progress) -> Optional[str]:
        """The final save (if any step was done), a line on what was kept, and the signal that
        stopped the run (None when the budget ended it)."""
        self.bar.close()
        self.elapsed = time.perf_counter() - self.started
        if self.stops.noted and not self.stopped:
            self.stopped = self.stops.first  # asked for within the last step
        done = progress.step > self.first_step
        note = self.saver.save() if self.saver.path is not None and done else ""
        self.team.barrier()  # the checkpoint is complete before any process goes on
        if self.stopped:
            self.team.print(stop_report(self.stopped, progress, self.first_step, self.saver) + note)
        elif note:
            self.team.print(f"Checkpoint at step {progress.step}{note}")
        return self.stopped


def optimizer_updates(optimizer: torch.optim.Optimizer) -> int:
    """How many updates the optimiser has made: Adam's step count of its first parameter."""
    first = next(iter(optimizer.param_groups[0]["params"]), None)
    state = optimizer.state.get(first, {})
    return int(state["step"]) if "step" in state else 0


def check_same_run(stored: dict, config: Any, fingerprint: str, path: Path) -> None:
    """Refuse to resume a checkpoint trained on other data or with another seed: the two
    would mix without a word. (Older checkpoints, which recorded neither, are resumed.)"""
    if stored.get("data") not in (None, fingerprint):
        raise CheckpointError(
            f"{path} was trained on other pictures than these: resuming would mix the two. "
            "Train into another checkpoint path (or move this one away) to start afresh."
        )
    seed = (stored.get("settings") or {}).get("seed")
    if seed is not None and seed != config.seed:
        raise CheckpointError(
            f"{path} was trained with seed {seed}, not {config.seed}: a resume continues its "
            f"random draws. Use seed={seed} to continue, or another checkpoint path."
        )


def stop_report(signal_name: str, progress: Progress, first_step: int, saver: Checkpointer) -> str:
    """One true line on what an interrupted run kept, and where."""
    if saver.path is None:
        kept = "kept in memory (no checkpoint path was given)"
    elif progress.step == first_step:
        kept = f"unchanged in {saver.path}" if saver.path.exists() else "not saved (no step done)"
    else:
        kept = f"saved in {saver.saved}"
    return f"Stopped by {signal_name} at step {progress.step}; the model so far is {kept}."
