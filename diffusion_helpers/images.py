"""Pictures in and out: load any image the learner has as a tensor in [-1, 1], and back.

Every picture the package shows goes through ``to_numpy`` / ``to_pil`` here, so there is one
mapping from model space [-1, 1] to pixels: uint8 = round((clamp(x, -1, 1) + 1) / 2 * 255).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from PIL import Image

IMAGES_DIR = Path(__file__).resolve().parent.parent / "images"
DEFAULT_NAME = "scene"  # images/scene.png: the default picture (see images/README.md)
DEFAULT_IMAGE = IMAGES_DIR / f"{DEFAULT_NAME}.png"


def sample_image_path(name: Optional[str] = None) -> Path:
    """Path of a bundled sample image in ``images/`` ("scene" (default), "face", "pattern")."""
    stem = Path(name or DEFAULT_NAME).stem
    if not IMAGES_DIR.is_dir():
        raise FileNotFoundError(
            f"The sample image folder {IMAGES_DIR} is missing. The samples ship with the source "
            "checkout, not the installed package: install with `pip install -e .` from the "
            "repository, or pass your own picture to load_image('path/to/photo.jpg')."
        )
    path = IMAGES_DIR / f"{stem}.png"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in IMAGES_DIR.glob("*.png"))) or "none"
        raise FileNotFoundError(f"No sample image {stem!r} in {IMAGES_DIR} (available: {known}).")
    return path


def to_numpy(images: torch.Tensor) -> np.ndarray:
    """Tensor(s) in [-1, 1] -> uint8 pixels: uint8 = round((clamp(x, -1, 1) + 1) / 2 * 255).

    Args:
        images: one image [C, H, W] or [1, C, H, W], or a batch [B, C, H, W] with B > 1;
            C is 1 (grayscale) or 3 (RGB).

    Returns:
        one image: uint8 [H, W, C] ([H, W] when C == 1); a batch: uint8 [B, H, W, C]
        ([B, H, W] when C == 1).
    """
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"to_numpy expects a torch.Tensor, got {type(images).__name__}.")
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"to_numpy expects [C, H, W] or [B, C, H, W] with C = 1 or 3, got {list(images.shape)}."
        )
    x = images.detach().to("cpu", torch.float32).clamp(-1.0, 1.0)
    pixels = torch.round((x + 1.0) / 2.0 * 255.0).to(torch.uint8)  # [-1, 1] -> {0, ..., 255}
    array = pixels.permute(0, 2, 3, 1).numpy()  # [B, H, W, C]
    if array.shape[-1] == 1:
        array = array[..., 0]
    return array[0] if array.shape[0] == 1 else array


def to_pil(images: torch.Tensor) -> Union[Image.Image, list[Image.Image]]:
    """Tensor(s) in [-1, 1] -> one PIL image ([C, H, W] or [1, C, H, W]) or a list (B > 1).

    Uses the same pixel mapping as ``to_numpy``; 1 channel gives mode "L", 3 channels "RGB".
    """
    array = to_numpy(images)
    single = images.dim() == 3 or images.shape[0] == 1
    if single:
        return Image.fromarray(array)
    return [Image.fromarray(a) for a in array]
