"""Training checkpoints: one ``torch.save`` file holding everything needed to sample or resume.

A checkpoint is a dict of tensors and plain values (configs as dicts), so it loads with
``torch.load(..., weights_only=True)``: opening one never runs code. It is written atomically
(:func:`.files.write_atomically`), to a rescue path when its folder refuses it
(:func:`save_or_rescue`); reading one checks its version, its CRCs and that its numbers are
finite, so a damaged or foreign file is named as such, not sampled. It says what the net
predicts (:mod:`..prediction`), and is loaded as that.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any, Optional, Union

import torch

from ..checks.paths import file_kind, shown_path
from ..prediction import PREDICTIONS
from ..unet import UNet, UNetConfig
from .files import WriteError, write_atomically

FORMAT = "diffusion_helpers.checkpoint"
RECORD_STEPS = 200  # (t, per-sample loss) pairs are kept for the last this many steps
VERSION = 1
# What a message says to do about a file that is not a checkpoint we can read: never to delete it.
LOAD_ADVICE = "Use another path: one that holds a checkpoint diffusion_helpers wrote."
PathLike = Union[str, os.PathLike]


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read, is damaged, or does not fit the model or
    schedule."""


# Keys of a config that explain the others: a --size change also changes the derived
# attention_resolutions, and a message should name the cause first.
EXPLAINING_KEYS = ("image_size", "image_channels", "num_classes", "patch_size", "num_steps")


def save_checkpoint(path: PathLike, state: dict) -> Path:
    """Write ``state`` (tensors and plain values) to ``path`` atomically; return the path.

    ``state`` should hold at least ``model_config`` (dict), ``model`` (state dict) and ``step``;
    :func:`diffusion_helpers.train.train` also stores the EMA weights, the optimiser, the
    schedule config, the random-generator states and the losses so far. A failed write raises
    :class:`.files.WriteError` and leaves whatever was at ``path`` as it was.
    """
    payload = {"format": FORMAT, "version": VERSION, **state}
    return write_atomically(Path(path), lambda f: torch.save(payload, f), "checkpoint")


def read_checkpoint(path: PathLike, map_location: Union[str, torch.device] = "cpu") -> dict:
    """Load a checkpoint dict safely (``weights_only=True``); raise :class:`CheckpointError`
    when the file is missing, truncated, damaged (:func:`check_intact`, :func:`first_non_finite`),
    or not one of our checkpoints."""
    path = Path(path)
    if not path.is_file():
        kind = file_kind(path)
        if kind == "a folder":
            raise CheckpointError(
                f"{shown_path(path)} is a folder, not a checkpoint file: give the checkpoint "
                f"file in it, such as {shown_path(path / 'unet.pt')}."
            )
        raise CheckpointError(
            f"no checkpoint file at {shown_path(path)}."
            if kind == "nothing"
            else f"{shown_path(path)} is {kind}, not a checkpoint file. {LOAD_ADVICE}"
        )
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"{shown_path(path)} is empty (0 bytes), not a checkpoint. {LOAD_ADVICE}"
        )
    check_intact(path)
    try:
        with warnings.catch_warnings():  # torch warns of a pickle protocol it does not expect
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # a damaged file fails in many ways inside unpickling
        raise CheckpointError(
            f"{shown_path(path)} is not a readable checkpoint: {load_failure(err, path)}. "
            f"{LOAD_ADVICE}"
        ) from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{shown_path(path)} is a torch file but not a diffusion_helpers checkpoint. "
            f"{LOAD_ADVICE}"
        )
    if state.get("version") != VERSION:
        raise CheckpointError(
            f"{shown_path(path)} is a checkpoint of version {state.get('version')!r}, which this "
            f"package does not know (it reads version {VERSION}): it may come from a newer "
            "diffusion_helpers. Update the package, or use another checkpoint."
        )
    for key in ("model_config", "model", "step"):
        if key not in state:
            raise CheckpointError(
                f"{shown_path(path)} lacks {key!r}: the checkpoint is incomplete."
            )
    bad = first_non_finite(state)
    if bad is not None:
        raise damaged(path, f"{bad} holds NaN or infinite values")
    return state


def damaged(path: Path, what: str) -> CheckpointError:
    """The error for a checkpoint whose bytes or numbers are wrong: what, and what to do."""
    return CheckpointError(
        f"{shown_path(path)} is damaged: {what}. Use an earlier copy of it, or train afresh into "
        "another path."
    )


def check_intact(path: Path) -> None:
    """Raise :class:`CheckpointError` unless every file inside the checkpoint matches its
    CRC-32, which ``torch.load`` never checks (a flipped bit would load and sample without a
    word). A file that is not a zip archive is left to ``torch.load``."""
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as err:
        raise damaged(path, f"its zip archive cannot be read ({err})") from err
    if bad is not None:
        raise damaged(path, f"the bytes of {bad} do not match their checksum (CRC)")


def first_non_finite(value: Any, name: str = "") -> Optional[str]:
    """The key ("ema.down.0.weight") of the first floating tensor in ``value`` (a checkpoint:
    nested dicts and lists) that holds NaN or an infinity; None when all are finite."""
    if isinstance(value, torch.Tensor):
        finite = not value.is_floating_point() or bool(torch.isfinite(value).all())
        return None if finite else name or "a tensor"
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = first_non_finite(item, f"{name}.{key}" if name else str(key))
        if found is not None:
            return found
    return None


def load_failure(err: BaseException, path: Path) -> str:
    """Why ``torch.load`` could not read ``path``, in whole words: what the file is when it is
    not a checkpoint ("it is a text file"), else the first sentence of torch's message, never
    its advice to retry with ``weights_only=False`` (that would run code from the file)."""
    kind = file_kind(path)
    if kind != "a zip archive":  # what torch.save writes (since torch 1.6)
        refused = " (opening it could run code, so it is refused)" if "pickle" in kind else ""
        return f"it is {kind}, not written by diffusion_helpers{refused}"
    if not zipfile.is_zipfile(path):
        return "its zip archive is cut short (a save or a copy that did not finish)"
    with zipfile.ZipFile(path) as archive:
        if not any(name.endswith("data.pkl") for name in archive.namelist()):
            return "it is a zip archive that torch.save did not write"
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if any("weights_only" in line or "WeightsUnpickler" in line for line in lines):
        return (
            "it holds Python objects other than tensors and plain values, so it was not "
            "written by diffusion_helpers (opening it could run code, so it is refused)"
        )
    first = re.sub(r"^\[enforce fail at [^\]]*\][ .]*", "", lines[0] if lines else "")
    return re.split(r"(?<=[.!?]) ", first, maxsplit=1)[0].rstrip(".") or type(err).__name__


def model_config(state: dict, model: Any, path: PathLike) -> dict:
    """The stored model config as ``model``'s config class writes it: fields added since the
    checkpoint was written (``num_classes``) take their defaults."""
    try:
        return type(model.config).from_dict(state["model_config"]).to_dict()
    except (TypeError, ValueError) as err:
        raise CheckpointError(
            f"the model config in {shown_path(path)} is not valid: {err}"
        ) from err


def check_config(stored: dict, given: dict, what: str, path: PathLike) -> None:
    """Raise :class:`CheckpointError` naming the key where two configs differ that explains the
    rest (:data:`EXPLAINING_KEYS` first, then by name), and listing the others after it (both
    plain dicts; a model config is normalised by its class first, see :func:`model_config`)."""
    rank = {key: i for i, key in enumerate(EXPLAINING_KEYS)}
    keys = sorted(set(stored) | set(given), key=lambda k: (rank.get(k, len(rank)), k))
    differ = [k for k in keys if stored.get(k, "<missing>") != given.get(k, "<missing>")]
    if differ:
        key = differ[0]
        a, b = stored.get(key, "<missing>"), given.get(key, "<missing>")
        also = f" (also different: {', '.join(differ[1:])})" if differ[1:] else ""
        raise CheckpointError(
            f"the {what} config in {shown_path(path)} does not match: {key} is {a!r} in the "
            f"checkpoint but {b!r} here{also}. Build the same {what}, or use another checkpoint "
            "path."
        )


def export_weights(src: PathLike, dst: PathLike, dtype: torch.dtype = torch.float16) -> Path:
    """Write a small sampling-only copy of a training checkpoint: the EMA weights in ``dtype``
    (half the bytes of float32, and no optimiser state), the configs, the step count, and what
    it was trained on (the data's fingerprint, and the picture for a model of one picture).

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
        **{key: state[key] for key in ("data", "picture") if state.get(key) is not None},
        "prediction": stored_prediction(state),
    }
    if os.path.lexists(dst) and not is_our_checkpoint(Path(dst)):
        raise CheckpointError(
            f"{shown_path(Path(dst))} is {file_kind(Path(dst))}, not one of our checkpoints: it is "
            "not replaced. Give the sampling-only copy another name."
        )
    return save_checkpoint(dst, small)


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
            f"{shown_path(path)} is a sampling-only copy (made by --export): it cannot resume "
            "training. "
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
        raise CheckpointError(f"cannot resume from {shown_path(path)}: {err}") from err


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


def save_or_rescue(path: Path, state: dict) -> tuple[Path, Optional[str]]:
    """Save ``state`` to ``path``; if that fails in any way a write can (a full disk, a folder
    gone read-only or away, torch's writer failing), save it to :func:`rescue_path` instead.
    Returns ``(where it went, why ``path`` refused it, or None)``. When the rescue fails too,
    a :class:`.files.WriteError` names both places; the last checkpoint written is intact."""
    try:
        return save_checkpoint(path, state), None
    except WriteError as err:
        refused = err.reason
    rescue = rescue_path(path)
    try:
        return save_checkpoint(rescue, state), refused
    except WriteError as err:
        raise WriteError(
            f"could not save the checkpoint to {shown_path(path)} ({refused}) nor to "
            f"{shown_path(rescue)} ({err.reason}): free some disk space and run again (the last "
            "checkpoint written is intact).",
            err.reason,
        ) from err


def stored_prediction(state: dict) -> str:
    """What a checkpoint's net was trained to predict (:mod:`..prediction`); checkpoints
    written before this was stored hold DDPM's noise predictors."""
    name = state.get("prediction") or (state.get("settings") or {}).get("prediction") or "eps"
    if name not in PREDICTIONS:
        raise CheckpointError(
            f"the checkpoint says its net predicts {name!r}, which this package does not know "
            f"({', '.join(PREDICTIONS)}): use another checkpoint."
        )
    return name


def load_checkpoint(
    path: PathLike, model: Optional[Any] = None, weights: str = "ema"
) -> tuple[Any, dict]:
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
        try:
            model = UNet(UNetConfig.from_dict(state["model_config"]))
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"the model config in {path} is not valid: {err}") from err
    else:
        check_config(model_config(state, model, path), model.config.to_dict(), "model", path)
    chosen = state.get("ema") if weights == "ema" and state.get("ema") is not None else None
    try:
        model.load_state_dict(chosen if chosen is not None else state["model"])
    except RuntimeError as err:
        raise CheckpointError(f"the weights in {path} do not fit the model: {err}") from err
    return model, state
