"""Training checkpoints: one ``torch.save`` file holding everything needed to sample or resume.

A checkpoint is a dict of tensors and plain Python values only (configs are stored as dicts),
so it loads with ``torch.load(..., weights_only=True)``: opening a checkpoint never runs code.
Files are written atomically (a temporary file in the same folder, then ``os.replace``), so an
interrupted save leaves the previous checkpoint intact; the temporary files a killed save left
(named ``<checkpoint>.<pid>.<8 random characters>.tmp``, and only those) are removed by the next
save. While a run trains into a checkpoint it holds an OS lock on ``unet.pt.lock``
(:class:`.outputs.CheckpointLock`), so a second run cannot overwrite it.

Outputs are checked before any work is done (:func:`.outputs.check_checkpoint_target`,
:func:`.outputs.check_export_target`): a file that is not one of our checkpoints is never replaced.
"""

from __future__ import annotations

import errno
import glob
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Optional, Union

import torch

FORMAT = "diffusion_helpers.checkpoint"
RECORD_STEPS = 200  # (t, per-sample loss) pairs are kept for the last this many steps
VERSION = 1
PathLike = Union[str, os.PathLike]


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read, or that does not fit the model or schedule."""


def save_checkpoint(path: PathLike, state: dict) -> Path:
    """Write ``state`` (tensors and plain values) to ``path`` atomically; return the path.

    ``state`` should hold at least ``model_config`` (dict), ``model`` (state dict) and ``step``;
    :func:`diffusion_helpers.train.train` also stores the EMA weights, the optimiser, the
    schedule config, the random-generator states and the losses so far.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    payload = {"format": FORMAT, "version": VERSION, **state}
    # The pid in the name tells a later save whether the writer is still alive.
    prefix = f"{path.name}.{os.getpid()}."
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private (0600); use the usual mode
        os.replace(tmp, path)  # atomic on POSIX and Windows: readers see old or new, never half
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(path: PathLike, map_location: Union[str, torch.device] = "cpu") -> dict:
    """Load a checkpoint dict safely (``weights_only=True``); raise :class:`CheckpointError`
    when the file is missing, truncated, corrupt, or not one of our checkpoints."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}.")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): delete it to start training afresh.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # a damaged file fails in many ways inside unpickling
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated, corrupt, or another kind of file): "
            f"{load_failure(err)}. Delete it to start training afresh."
        ) from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a torch file but not a diffusion_helpers checkpoint.")
    for key in ("model_config", "model", "step"):
        if key not in state:
            raise CheckpointError(f"{path} lacks {key!r}: the checkpoint is incomplete.")
    return state


def load_failure(err: BaseException) -> str:
    """What went wrong in ``torch.load``, in one line, without torch's advice to retry with
    ``weights_only=False``: that would run code from the file, which a learner must never do."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if any("weights_only" in line or "WeightsUnpickler" in line for line in lines):
        return (
            "it holds Python objects other than tensors and plain values, so it was not "
            "written by diffusion_helpers (opening it could run code, so it is refused)"
        )
    first = lines[0] if lines else type(err).__name__
    return first[:200]


def model_config(state: dict, model: Any, path: PathLike) -> dict:
    """The stored model config as ``model``'s config class writes it: fields added since the
    checkpoint was written (``num_classes``) take their defaults."""
    try:
        return type(model.config).from_dict(state["model_config"]).to_dict()
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"the model config in {path} is not valid: {err}") from err


def check_config(stored: dict, given: dict, what: str, path: PathLike) -> None:
    """Raise :class:`CheckpointError` naming the first key where two configs differ (both
    plain dicts; a model config is normalised by its class first, see :func:`model_config`)."""
    for key in sorted(set(stored) | set(given)):
        a, b = stored.get(key, "<missing>"), given.get(key, "<missing>")
        if a != b:
            raise CheckpointError(
                f"the {what} config in {path} does not match: {key} is {a!r} in the checkpoint "
                f"but {b!r} here. Build the same {what}, or use another checkpoint path."
            )


def export_weights(src: PathLike, dst: PathLike, dtype: torch.dtype = torch.float16) -> Path:
    """Write a small sampling-only copy of a training checkpoint: the EMA weights in ``dtype``
    (half the bytes of float32, and no optimiser state), the configs and the step count.

    :func:`load_checkpoint` reads it like any checkpoint (the weights go back to float32 when
    loaded into the model); it cannot resume training.
    """
    state = read_checkpoint(src)
    weights = state.get("ema") if state.get("ema") is not None else state["model"]
    small = {
        "model_config": state["model_config"],
        "schedule_config": state.get("schedule_config"),
        "model": {k: v.to(dtype) if v.is_floating_point() else v for k, v in weights.items()},
        "step": state["step"],
        "exported_from_weights": "ema" if state.get("ema") is not None else "raw",
    }
    return save_checkpoint(dst, small)


# ----------------------------------------------------------------------------- training state


def training_state(
    model: torch.nn.Module,
    ema: Optional[torch.nn.Module],
    optimizer: torch.optim.Optimizer,
    scaler: Optional[Any],
    schedule: Any,
    generator: torch.Generator,
) -> dict:
    """What a resumed run needs of the model and its training to continue exactly as if it had
    never stopped: the configs, the weights (raw and EMA), the optimiser and gradient-scaler
    state and the random generators (the caller adds how far the run has come)."""
    return {
        "model_config": model.config.to_dict(),
        "schedule_config": schedule.config(),
        "model": model.state_dict(),
        "ema": ema.state_dict() if ema is not None else None,
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state() if torch.cuda.is_available() else None,
    }


def resume_training(
    path: PathLike,
    model: torch.nn.Module,
    ema: Optional[torch.nn.Module],
    optimizer: torch.optim.Optimizer,
    scaler: Optional[Any],
    schedule: Any,
    generator: torch.Generator,
    device: torch.device,
) -> dict:
    """Load a checkpoint written by :func:`training_state` into the given objects and return
    its progress dict (``step``, ``losses``, ``record_t``, ``record_loss``)."""
    state = read_checkpoint(path, map_location=device)
    if "optimizer" not in state:
        raise CheckpointError(
            f"{path} is a sampling-only copy (made by --export): it cannot resume training. "
            "Sample from it, or train into another checkpoint path."
        )
    check_config(model_config(state, model, path), model.config.to_dict(), "model", path)
    check_config(state.get("schedule_config") or {}, schedule.config(), "schedule", path)
    try:
        model.load_state_dict(state["model"])
        if ema is not None and state.get("ema") is not None:
            ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())
        if state.get("cuda_rng") is not None and device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"].cpu())
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        return {
            "step": int(state["step"]),
            "losses": [float(v) for v in state["losses"]],
            "record_t": state["record_t"].cpu(),
            "record_loss": state["record_loss"].cpu(),
        }
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(f"cannot resume from {path}: {err}") from err


def is_our_checkpoint(path: Path) -> bool:
    """True when ``path`` is a file this package wrote (readable, with our format tag)."""
    try:
        read_checkpoint(path)
    except CheckpointError:
        return False
    return True


def rescue_path(path: PathLike) -> Path:
    """Where a checkpoint goes when its own folder stopped accepting it (the temp folder)."""
    return Path(tempfile.gettempdir()) / f"diffusion_helpers-rescue-{os.getpid()}-{Path(path).name}"


def pid_alive(pid: int) -> bool:
    """True if a process with this id runs on this machine (``kill(pid, 0)`` probes it)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the temporary files of saves into ``path`` that were killed: exactly the names
    :func:`save_checkpoint` makes (``<name>.<pid>.<8 characters>.tmp``) whose process is gone.
    A file of the user's that merely starts with the name (``unet.pt.notes.tmp``) is kept."""
    ours = re.compile(re.escape(path.name) + r"\.(\d+)\.[A-Za-z0-9_]{8}\.tmp")
    removed = []
    for tmp in path.parent.glob(f"{glob.escape(path.name)}.*.tmp"):
        match = ours.fullmatch(tmp.name)
        if match and not pid_alive(int(match.group(1))) and tmp.is_file() and not tmp.is_symlink():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def save_or_rescue(path: Path, state: dict) -> tuple[Path, Optional[str]]:
    """Save ``state`` to ``path``; if the folder refuses it now (full disk, permissions changed),
    save it to :func:`rescue_path` instead. Returns ``(where it went, the reason or None)``."""
    try:
        return save_checkpoint(path, state), None
    except OSError as err:
        reason = os.strerror(err.errno) if err.errno else str(err)
        if err.errno not in (errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, errno.ENOENT):
            reason = f"{type(err).__name__}: {reason}"
        return save_checkpoint(rescue_path(path), state), reason
