"""Training checkpoints: one ``torch.save`` file holding everything needed to sample or resume.

A checkpoint is a dict of tensors and plain Python values only (configs are stored as dicts),
so it loads with ``torch.load(..., weights_only=True)``: opening a checkpoint never runs code.
Files are written atomically (a temporary file in the same folder, then ``os.replace``), so an
interrupted save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional, Union

import torch

from .env import pick_device
from .schedule import NoiseSchedule
from .unet import UNet, UNetConfig

FORMAT = "diffusion_helpers.checkpoint"
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
    payload = {"format": FORMAT, "version": VERSION, **state}
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
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
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # a damaged file fails in many ways inside unpickling
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated, corrupt, or another kind of file): "
            f"{str(err).splitlines()[0][:200]}. Delete it to start training afresh."
        ) from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a torch file but not a diffusion_helpers checkpoint.")
    for key in ("model_config", "model", "step"):
        if key not in state:
            raise CheckpointError(f"{path} lacks {key!r}: the checkpoint is incomplete.")
    return state


def check_config(stored: dict, given: dict, what: str, path: PathLike) -> None:
    """Raise :class:`CheckpointError` naming the first key where two configs differ."""
    for key in sorted(set(stored) | set(given)):
        a, b = stored.get(key, "<missing>"), given.get(key, "<missing>")
        if a != b:
            raise CheckpointError(
                f"the {what} config in {path} does not match: {key} is {a!r} in the checkpoint "
                f"but {b!r} here. Build the same {what}, or use another checkpoint path."
            )


def load_checkpoint(
    path: PathLike, model: Optional[UNet] = None, weights: str = "ema"
) -> tuple[UNet, dict]:
    """Load the weights of a checkpoint into ``model`` (built from the stored config if None).

    Args:
        weights: ``"ema"`` (the averaged weights to sample with; the raw ones if the run kept
            no EMA) or ``"raw"`` (the optimiser's weights).
    Returns:
        ``(model, info)``: ``info`` is the whole checkpoint dict (step, losses, configs, ...).
    """
    if weights not in ("ema", "raw"):
        raise ValueError(f"weights must be 'ema' or 'raw', got {weights!r}.")
    state = read_checkpoint(path)
    if model is None:
        model = UNet(UNetConfig.from_dict(state["model_config"]))
    else:
        check_config(state["model_config"], model.config.to_dict(), "model", path)
    chosen = state.get("ema") if weights == "ema" and state.get("ema") is not None else None
    try:
        model.load_state_dict(chosen if chosen is not None else state["model"])
    except RuntimeError as err:
        raise CheckpointError(f"the weights in {path} do not fit the model: {err}") from err
    return model, state


def load_model(path: PathLike, device: Optional[Union[str, torch.device]] = None) -> UNet:
    """Build the U-Net stored in a checkpoint, load its EMA weights, and return it in eval mode
    on ``device`` (default: :func:`diffusion_helpers.env.pick_device`)."""
    model, _ = load_checkpoint(path)
    return model.to(pick_device(device)).eval()


def load_for_sampling(
    path: PathLike, device: Optional[Union[str, torch.device]] = None
) -> tuple[UNet, NoiseSchedule, dict]:
    """What a sampler needs from a checkpoint: the U-Net (EMA weights, eval mode, on ``device``),
    the noise schedule it was trained with, and the whole checkpoint dict."""
    model, state = load_checkpoint(path)
    if not state.get("schedule_config"):
        raise CheckpointError(f"{path} does not say which noise schedule it was trained with.")
    return model.to(pick_device(device)).eval(), NoiseSchedule(**state["schedule_config"]), state


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
