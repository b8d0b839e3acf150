"""Is it a copy? Distances from samples to the pictures a model was trained on: a dataset
(nearest neighbours, the memorisation ratio) or one picture (copy PSNR, patch distances)."""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from ..checks.tensors import check_image, one_picture
from ..runtime.threads import cpu_threads, pick_threads
from .psnr import decibels, unit_pixels

DEFAULT_CHUNK = 2048  # images per torch.cdist block: 2048 x 2048 float32 distances are 16 MB
DEFAULT_REFERENCE_QUERIES = 2000  # 1,000 gave the ratio of all the digits within 1%
PATCH = 7  # px, as GPNN (Granot et al. 2022) compares samples of one picture with it
SHIFT = 4  # px: a copy moved by up to this much still counts as a copy


def nearest_neighbours(
    images: torch.Tensor,
    dataset_images: torch.Tensor,
    k: int = 1,
    *,
    chunk_size: int = DEFAULT_CHUNK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` images of ``dataset_images`` [N, C, H, W] nearest to each of ``images``
    [n, C, H, W] by the L2 distance ||x - y||_2: (distances [n, k] float32, indices [n, k]),
    nearest first, on the device of ``images``. Ranked in blocks of ``chunk_size`` with a
    running top-k; the distances are then recomputed from the differences (a copy reads 0).
    """
    query, pool = _flat_pair(images, dataset_images)
    if not isinstance(k, int) or not 1 <= k <= len(pool):
        raise ValueError(f"k must be an integer in 1..{len(pool)} (training images), got {k!r}.")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}.")
    device = query.device
    distances, indices = [], []
    with cpu_threads(pick_threads(None, device)):
        for q in query.split(chunk_size):
            best_d = torch.full((len(q), k), float("inf"), device=device)
            best_i = torch.full((len(q), k), -1, dtype=torch.long, device=device)
            for start in range(0, len(pool), chunk_size):
                block = pool[start : start + chunk_size].to(device)
                d = torch.cdist(q, block)  # [q, m], ||q_i - x_j||_2
                ids = torch.arange(start, start + len(block), device=device).expand_as(d)
                best_d, pick = torch.cat([best_d, d], 1).topk(k, dim=1, largest=False)
                best_i = torch.cat([best_i, ids], 1).gather(1, pick)
            neighbours = pool[best_i.to(pool.device)].to(device)  # [q, k, D]
            distances.append((q[:, None, :] - neighbours).norm(dim=-1))
            indices.append(best_i)
    return torch.cat(distances), torch.cat(indices)


def memorisation_ratio(
    samples: torch.Tensor,
    dataset_images: torch.Tensor,
    *,
    reference_queries: int = DEFAULT_REFERENCE_QUERIES,
    seed: int = 0,
    chunk_size: int = DEFAULT_CHUNK,
) -> float:
    """median_i d(sample_i, training set) / median_j d(train_j, training set without train_j)
    for ``samples`` [n, C, H, W] and ``dataset_images`` [N, C, H, W], N >= 2: about 1 for new
    pictures, about 0 for copies. The denominator uses ``reference_queries`` training images
    drawn with ``seed``.
    """
    if len(dataset_images) < 2:
        raise ValueError("dataset_images needs at least 2 images for a leave-one-out distance.")
    if not isinstance(reference_queries, int) or reference_queries < 1:
        raise ValueError(f"reference_queries must be a positive integer, got {reference_queries}.")
    sample_d, _ = nearest_neighbours(samples, dataset_images, chunk_size=chunk_size)
    gen = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(dataset_images), generator=gen)[:reference_queries]
    # k = 2: the image itself (distance 0) and its nearest other image. With exact duplicates
    # in the set, "itself" may come second; either way keep the first index that is not j.
    d, idx = nearest_neighbours(
        dataset_images[chosen.to(dataset_images.device)], dataset_images, k=2, chunk_size=chunk_size
    )
    is_self = idx[:, 0].cpu() == chosen
    reference = torch.where(is_self, d[:, 1].cpu(), d[:, 0].cpu())
    denominator = float(reference.median())
    if denominator == 0.0:
        raise ValueError(
            "dataset_images: most training images have an exact duplicate, so the leave-one-out "
            "distance is 0; remove the duplicates first."
        )
    return float(sample_d.median()) / denominator


def _flat_pair(
    images: torch.Tensor, dataset_images: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two checked image batches [n, C, H, W], [N, C, H, W] as float32 [n, C H W], [N, C H W]."""
    check_image(images, "images")
    check_image(dataset_images, "dataset_images")
    if images.shape[1:] != dataset_images.shape[1:]:
        raise ValueError(
            f"images are {list(images.shape[1:])} but dataset_images are "
            f"{list(dataset_images.shape[1:])} ([C, H, W]): resize one set to the other's size."
        )
    if len(images) == 0 or len(dataset_images) == 0:
        raise ValueError("images and dataset_images must each hold at least one image.")
    return images.detach().flatten(1).float(), dataset_images.detach().flatten(1).float()


def copy_psnr(samples: torch.Tensor, picture: torch.Tensor, shift: int = SHIFT) -> torch.Tensor:
    """The best PSNR (dB) of each of ``samples`` [n, C, h, w] against ``picture`` [1, C, H, W],
    its mirror image and shifts: float64 [n]. The smaller of the two, less a border of
    ``shift`` px, slides over every position of the larger. A copy scores above 30 dB.
    """
    picture = _same_channels(picture, samples)
    h, w = samples.shape[-2:]
    H, W = picture.shape[-2:]
    if not ((h <= H and w <= W) or (h >= H and w >= W)):
        raise ValueError(
            f"samples ({h}x{w}) and picture ({H}x{W}) must nest: one at least as tall and as "
            "wide as the other."
        )
    x, p = unit_pixels(samples), unit_pixels(picture[0])
    inner = slice(shift, -shift if shift else None)
    best = []
    for image in x:
        mse = []
        for ref in (p, p.flip(-1)):
            small, large = (image, ref) if h * w < H * W else (ref, image)
            mse.append(_best_window_mse(small[:, inner, inner], large).min())
        best.append(torch.stack(mse).min())
    return decibels(torch.stack(best))


def _best_window_mse(small: torch.Tensor, large: torch.Tensor) -> torch.Tensor:
    """MSE of ``small`` [C, h, w] against every h x w window of ``large`` [C, H, W], by
    sum (a - b)^2 = sum a^2 - 2 sum a b + sum b^2 with convolutions: [H - h + 1, W - w + 1]."""
    c, h, w = small.shape
    big = large[None]
    cross = F.conv2d(big, small[None])[0, 0]  # sum a b at every offset
    window_sq = F.conv2d(big**2, torch.ones(1, c, h, w, dtype=big.dtype))[0, 0]
    return ((window_sq - 2 * cross + (small**2).sum()) / small.numel()).clamp_min(0.0)


def patches(images: torch.Tensor, patch: int = PATCH) -> torch.Tensor:
    """Every ``patch`` x ``patch`` window of each image, flattened: [n * L, C * patch^2]
    (L = (H - patch + 1)(W - patch + 1) windows per image, stride 1)."""
    check_image(images, "images")
    cols = F.unfold(images.detach().float().cpu(), patch)  # [n, C p^2, L]
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def _nearest_rms(queries: torch.Tensor, pool: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """For each row of ``queries`` [q, D], the RMS difference to its nearest row of ``pool``
    [m, D]: min_j ||q_i - p_j||_2 / sqrt(D). Returns float32 [q]."""
    best = [torch.cdist(block, pool).min(dim=1).values for block in queries.split(chunk)]
    return torch.cat(best) / math.sqrt(queries.shape[1])


def patch_distance(
    samples: torch.Tensor, picture: torch.Tensor, patch: int = PATCH, mirror: bool = False
) -> torch.Tensor:
    """For each of ``samples`` [n, C, h, w], the mean over its ``patch`` x ``patch`` windows of
    the RMS difference to the nearest window of ``picture`` [1, C, H, W] (and of its mirror
    image with ``mirror``): float32 [n], ~0 when every bit of the sample is in the picture.
    """
    picture = _same_channels(picture, samples)
    pool = patches(torch.cat([picture, picture.flip(-1)]) if mirror else picture, patch)
    per_sample = [_nearest_rms(patches(s[None], patch), pool).mean() for s in samples]
    return torch.stack(per_sample)


def held_out_patch_distance(
    picture: torch.Tensor, side: Optional[int] = None, patch: int = PATCH
) -> float:
    """:func:`patch_distance` of the picture's own held-out parts, the yardstick for samples:
    for each corner crop of side ``side`` (default half the picture), against the windows
    that do not overlap it; the mean over the four corners.
    """
    picture = one_picture(picture)
    _, _, h, w = picture.shape
    side = side or min(h, w) // 2
    if not patch <= side <= min(h, w) - patch:
        raise ValueError(f"side must be in {patch}..{min(h, w) - patch} (room for {patch} px "
                         f"windows inside and outside the crop), got {side}.")  # fmt: skip
    windows = patches(picture, patch)  # row-major over top-left corners (y, x)
    ys, xs = torch.meshgrid(torch.arange(h - patch + 1), torch.arange(w - patch + 1), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    scores = []
    for y0, x0 in ((0, 0), (0, w - side), (h - side, 0), (h - side, w - side)):
        inside = (ys >= y0) & (ys <= y0 + side - patch) & (xs >= x0) & (xs <= x0 + side - patch)
        overlaps = (ys > y0 - patch) & (ys < y0 + side) & (xs > x0 - patch) & (xs < x0 + side)
        scores.append(float(_nearest_rms(windows[inside], windows[~overlaps]).mean()))
    return sum(scores) / len(scores)


def sample_spread(samples: torch.Tensor) -> float:
    """How different the samples [n, C, H, W] are, in [-1, 1] units: :func:`diversity` divided
    by sqrt(C H W), the mean over pairs of the RMS difference per value (0: all the same)."""
    check_image(samples, "samples")
    return diversity(samples) / math.sqrt(samples[0].numel())


def _same_channels(picture: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
    """``picture`` as one picture [1, C, H, W], with as many channels as ``samples``."""
    picture = one_picture(picture)
    check_image(samples, "samples")
    if samples.shape[1] != picture.shape[1]:
        raise ValueError(
            f"samples have {samples.shape[1]} channels, the picture {picture.shape[1]}."
        )
    return picture


@torch.no_grad()
def diversity(samples: torch.Tensor, *, chunk_size: int = DEFAULT_CHUNK) -> float:
    """Mean L2 distance between two different samples [n, C, H, W], in float64:
    (1 / (n (n-1))) sum_{i != j} ||x_i - x_j||_2."""
    check_image(samples, "samples")
    if len(samples) < 2:
        raise ValueError(f"samples must hold at least 2 images, got {len(samples)}.")
    x = samples.detach().flatten(1).double()
    total = sum(float(torch.cdist(block, x).sum()) for block in x.split(chunk_size))
    return total / (len(x) * (len(x) - 1))  # the diagonal (i = j) adds 0


def picture_variants(x0: torch.Tensor, max_shift: int = 2) -> torch.Tensor:
    """The one picture ``x0`` [1, C, H, W] as a small "training set" for the copying check: it
    and its left-right mirror, each shifted by every (dy, dx) with |dy|, |dx| <= ``max_shift``
    = s px (edge pixels repeated into the gap): [2 (2 s + 1)^2, C, H, W], x0 itself first."""
    x0 = one_picture(x0, "x0")
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 1:
        raise ValueError(f"max_shift must be an integer >= 1 (pixels), got {max_shift!r}.")
    s = max_shift
    if s >= min(x0.shape[-2:]):
        raise ValueError(f"max_shift={s} must be smaller than the picture's side.")
    h, w = x0.shape[-2:]
    offsets = [(0, 0)] + [
        (dy, dx) for dy in range(-s, s + 1) for dx in range(-s, s + 1) if dy or dx
    ]
    out = []
    for picture in (x0, x0.flip(-1)):
        padded = F.pad(picture, (s, s, s, s), mode="replicate")
        # the picture moved by (dy, dx): its pixel (i, j) lands at (i + dy, j + dx)
        out += [padded[..., s - dy : s - dy + h, s - dx : s - dx + w] for dy, dx in offsets]
    return torch.cat(out).contiguous()
