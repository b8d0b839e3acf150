"""What ``python -m diffusion_helpers edit|inpaint|vary`` runs: notebook 06, headless.

Like :mod:`.demo`, each function checks its output folder before any work, writes pictures
there and prints one line per file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from ..editing import edit as sdedit
from ..editing import inpaint
from ..figures.animation import save_gif
from ..figures.plots import show_images
from ..metrics.copying import copy_psnr
from ..metrics.psnr import psnr
from ..pictures.images import load_image, sample_image_path
from ..pictures.masks import PRESETS, mask_preset, masked
from ..reverse import FAST_SAMPLER, Sampler
from ..schedule import NoiseSchedule
from ..storage.outputs import check_checkpoint_target, check_output_folder
from ..tutorial.settings import settings
from ..tutorial.variations import sample_variations, train_variations
from .demo import frame_every, save_figure, stop_if_interrupted, trained_model


def run_edit(
    image: Optional[Path],
    out: Path,
    *,
    checkpoint: Optional[Path] = None,
    strength: float = 0.5,
    n: int = 4,
    sampler: Sampler = FAST_SAMPLER,
    seed: int = 0,
    device: Optional[str] = None,
    label: Optional[int] = None,
) -> dict:
    """SDEdit: ``image`` noised to ``strength`` and denoised ``n`` times by a trained model
    (default: the shipped one), with PSNR to the input under each result."""
    check_output_folder(out, "edits")
    model, schedule, picture = _model_and_picture(checkpoint, image, device)
    run = sdedit(model, schedule, picture.expand(n, -1, -1, -1), strength, sampler, seed=seed,
                 labels=label, every=frame_every(schedule, sampler))  # fmt: skip
    scores = psnr(run.images, picture)
    titles = ["input"] + [f"{s:.1f} dB to the input" for s in scores.tolist()]
    return _write(
        out,
        edits=show_images(torch.cat([picture, run.images]), titles=titles),
        reverse_gif=run.frames,
    )


def run_inpaint(
    image: Optional[Path],
    out: Path,
    *,
    checkpoint: Optional[Path] = None,
    mask: str = "centre_box",
    n: int = 4,
    resample: int = 1,
    jump: int = 10,
    sampler: Sampler = FAST_SAMPLER,
    seed: int = 0,
    device: Optional[str] = None,
    label: Optional[int] = None,
) -> dict:
    """RePaint: fill the part of ``image`` that the preset ``mask`` names, ``n`` times, with
    the PSNR of the filled part against the input under each result."""
    if mask not in PRESETS:
        raise ValueError(f"mask must be one of {', '.join(PRESETS)}; got {mask!r}.")
    check_output_folder(out, "inpainted pictures")
    model, schedule, picture = _model_and_picture(checkpoint, image, device)
    keep = mask_preset(mask, picture.shape[-1], seed=seed)
    run = inpaint(model, schedule, picture.expand(n, -1, -1, -1), keep, sampler, resample=resample,
                  jump=jump, seed=seed, labels=label, every=frame_every(schedule, sampler))  # fmt: skip
    scores = psnr(run.images, picture, mask=keep)
    titles = ["input", "to fill"] + [f"filled: {s:.1f} dB" for s in scores.tolist()]
    images = torch.cat([picture, masked(picture, keep), run.images])
    return _write(out, inpainted=show_images(images, titles=titles), reverse_gif=run.frames)


def run_vary(
    image: Optional[Path],
    out: Path,
    *,
    size: Optional[int] = None,
    crop: Optional[int] = None,
    minutes: Optional[float] = None,
    steps: Optional[int] = None,
    n: int = 4,
    sampler: Sampler = FAST_SAMPLER,
    seed: int = 0,
    device: Optional[str] = None,
) -> dict:
    """Train a patch model on crops of ``image`` (its checkpoint ``out/vary.pt`` resumes),
    then draw ``n`` variations at the picture's size and at twice its size."""
    cfg = settings(device, size, say=minutes is None and steps is None)
    size = cfg.image_size
    if crop is not None and (crop % 2 or not 2 <= crop <= size):
        raise ValueError(
            f"--crop {crop}: the patch model halves its crops once, so give an even side from 2 "
            f"to the picture's {size} px (default: half of it, {size // 2})."
        )
    check_output_folder(out, "variations")
    checkpoint = check_checkpoint_target(out / "vary.pt")
    picture = load_image(image if image is not None else sample_image_path(), size=size)
    if minutes is None and steps is None:
        minutes, steps = cfg.train_minutes, cfg.train_steps
    schedule = cfg.schedule()
    result = train_variations(
        picture, schedule, crop=crop, minutes=minutes, steps=steps, seed=seed,
        device=cfg.device, checkpoint=checkpoint,
    )  # fmt: skip
    stop_if_interrupted(result)
    every = frame_every(schedule, sampler)
    same = sample_variations(result.model, schedule, n, size, sampler, seed=seed, every=every)
    wide = sample_variations(result.model, schedule, n, 2 * size, sampler, seed=seed + 1)
    titles = ["your picture"] + [f"copy? {s:.1f} dB" for s in copy_psnr(same.images, picture)]
    return _write(
        out,
        variations=show_images(torch.cat([picture, same.images]), titles=titles),
        variations_larger=show_images(wide.images, titles=[f"{2 * size} px"] * n),
        reverse_gif=same.frames,
    )


def _model_and_picture(
    checkpoint: Optional[Path], image: Optional[Path], device: Optional[str]
) -> tuple[torch.nn.Module, NoiseSchedule, torch.Tensor]:
    """A trained model (default: the shipped one) and ``image`` at its size and channels."""
    model, schedule = trained_model(checkpoint, device)
    cfg = model.config
    source = image if image is not None else sample_image_path()
    return model, schedule, load_image(source, size=cfg.image_size, channels=cfg.image_channels)


def _write(out: Path, reverse_gif: list, **figures: object) -> dict:
    """Save each figure as ``<name>.png`` and the frames as ``reverse.gif``; list them, one
    line each. No frames (an edit of strength 0, which returns the picture as it is, takes no
    reverse step) make no GIF, and a line says so."""
    written = {name: save_figure(fig, out / f"{name}.png") for name, fig in figures.items()}
    if reverse_gif:
        written["reverse_gif"] = save_gif(reverse_gif, out / "reverse.gif")
    for name, path in written.items():
        print(f"  {name:<17} {path}")
    if not reverse_gif:
        print(f"  {'reverse_gif':<17} not written: no reverse step was taken (strength 0 keeps "
              "the picture)")  # fmt: skip
    return written
