"""Is the model copying, and how good are its pictures?

Two questions about samples from a model trained on a data set (the digits, say):

1. **Copies or new pictures?** :func:`nearest_neighbours` finds, for every sample, the closest
   training image in pixel space (L2); :func:`plot_nearest_neighbours` shows the pairs, and
   :func:`memorisation_ratio` sums it up in one number: the samples' typical distance to the
   training set divided by the training images' typical distance to each other. About 1: new
   pictures, as far from the training set as its own images are from one another. About 0:
   copies.
2. **How good, how varied?** The idea of FID (Heusel et al. 2017) without downloading
   Inception: a small CNN, :class:`DigitClassifier`, trained in seconds on the real digits
   (:func:`train_classifier`). :func:`class_accuracy` asks whether it recognises the class a
   conditional sample was meant to be; :func:`frechet_distance` compares the statistics of its
   :func:`features` on samples and on real images; :func:`diversity` says how different the
   samples are from each other (it falls as classifier-free guidance grows).
"""

from __future__ import annotations

import time
from typing import Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from .env import cpu_threads, pick_device, pick_threads
from .forward import check_image
from .viz import show_images

# Rows of queries and of training images per torch.cdist call: a 2048 x 2048 float32 block of
# distances is 16 MB, so 10,000 samples x 60,000 training images at 32 px fit in any memory.
DEFAULT_CHUNK = 2048
# Training images used as queries for the leave-one-out reference distance of
# memorisation_ratio. On the digits, 1,000 random queries gave the all-images ratio within 1%
# and 300 within 3% (5 seeds each, measured), so 2,000 costs little accuracy at any N.
DEFAULT_REFERENCE_QUERIES = 2000
# plot_nearest_neighbours: 8 pairs fill 800 px at 100 px per image; more start a new row.
PAIRS_PER_ROW = 8
# The classifier resizes every image to this size first, so one network serves 8, 16, 32 and
# 64 px digits, and a classifier trained on 32 px data judges 32 px samples alike.
CLASSIFIER_SIZE = 16
# Fraction of the labelled images that train_classifier holds out to measure its accuracy.
HELD_OUT_FRACTION = 0.1
# Classifier training: 400 Adam steps of 128 images reach ~98% held-out accuracy on sklearn's
# digits in 4.6 s on one idle CPU core (8 s of CPU time on a busy shared machine; measured,
# see tests/test_evaluate.py); 300 steps gave 97% as well.
DEFAULT_CLASSIFIER_STEPS = 400
CLASSIFIER_BATCH = 128
CLASSIFIER_LR = 2e-3


# ---------------------------------------------------------------------------------------------
# 1. Copies or new pictures?
# ---------------------------------------------------------------------------------------------


def nearest_neighbours(
    images: torch.Tensor,
    dataset_images: torch.Tensor,
    k: int = 1,
    *,
    chunk_size: int = DEFAULT_CHUNK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` training images closest to each image, by Euclidean (L2) distance in pixels.

    d(x, y) = ||x - y||_2 over all C x H x W values in [-1, 1]. Distances are ranked with
    ``torch.cdist`` on blocks of ``chunk_size`` x ``chunk_size`` images (a running top-k per
    block), so memory stays small however large the sets are; the distances returned are then
    recomputed directly from the differences, so an exact copy reads 0, not matmul round-off.

    Args:
        images: the queries [n, C, H, W] (samples, say); the work runs on their device.
        dataset_images: the training images [N, C, H, W], same C, H, W (may stay on the CPU).
        k: how many neighbours, 1 <= k <= N.
        chunk_size: images per block; smaller uses less memory, larger is a little faster.

    Returns:
        (distances [n, k] float32, indices [n, k] int64 into ``dataset_images``), nearest
        first, on the device of ``images``.
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
    """median_i d(sample_i, training set) / median_j d(train_j, training set without train_j).

    The denominator is the typical leave-one-out nearest-neighbour distance inside the
    training set: how far a *new* image from the same distribution lies from its closest
    training image. So the ratio is about 1 for new pictures (held-out real digits gave
    0.97-1.02 over five random splits) and about 0 for copies of training images (copies plus
    noise of std 0.01 gave 0.056).

    For speed the denominator uses at most ``reference_queries`` training images as queries,
    a random subset drawn with ``seed`` (each still searched against all the other training
    images); the result is the same on every run.

    Read it with the picture (:func:`plot_nearest_neighbours`): a ratio a little below 1 can
    also come from smooth, typical-looking samples that sit close to many training images;
    copies show as pairs that look identical.

    Args:
        samples: generated images [n, C, H, W] in [-1, 1].
        dataset_images: the training images [N, C, H, W], N >= 2.
    """
    _flat_pair(samples, dataset_images)  # the checks: one shape, non-empty
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


def plot_nearest_neighbours(
    samples: torch.Tensor, dataset_images: torch.Tensor, n: int = 8
) -> Figure:
    """The first ``n`` samples, each above its nearest training image, titled with the L2
    distance between the two; rows of up to ``PAIRS_PER_ROW`` pairs, 800 px wide at 100 dpi.

    Copies show as pairs that look identical with a small d; new pictures differ visibly.
    """
    check_image(samples, "samples")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    shown = samples[:n].detach().cpu()
    distances, indices = nearest_neighbours(shown, dataset_images)
    neighbours = dataset_images[indices[:, 0].to(dataset_images.device)].detach().cpu()
    cols = min(len(shown), PAIRS_PER_ROW)
    blank = torch.ones_like(shown[:1])  # white on white, axis off: an empty place
    pictures, titles = [], []
    for start in range(0, len(shown), cols):  # a row of samples, then their neighbours
        part = slice(start, start + cols)
        pad = cols - len(shown[part])
        for images, names in (
            (shown[part], ["sample"] * cols),
            (neighbours[part], [f"d = {float(d):.2f}" for d in distances[part, 0]]),
        ):
            pictures += [images, blank.expand(pad, -1, -1, -1)]
            titles += names[: len(images)] + [""] * pad
    fig = show_images(torch.cat(pictures), titles=titles, ncols=cols, size=8.0 / max(cols, 4))
    fig.suptitle("top: sample · below it: nearest training image (L2 distance d)", fontsize=10)
    return fig


def _flat_pair(
    images: torch.Tensor, dataset_images: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check two image batches [n, C, H, W], [N, C, H, W] of one shape; return them flattened
    to float32 [n, D] and [N, D] (D = C H W)."""
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


# ---------------------------------------------------------------------------------------------
# 2. How good, how varied? A small classifier stands in for Inception.
# ---------------------------------------------------------------------------------------------


class DigitClassifier(nn.Module):
    """A small CNN for 10 classes of small grey images (sklearn's digits, MNIST).

    Images [B, C, H, W] in [-1, 1], any size >= 8 px, are first resized to
    ``CLASSIFIER_SIZE`` = 16 px, then: conv 3x3 (16) -> conv 3x3 stride 2 (32, 8x8) ->
    conv 3x3 stride 2 (64, 4x4) -> linear (64 features, the penultimate layer used by
    :func:`features`) -> linear (``num_classes`` logits). ReLU after each hidden layer, the
    features' included (as in Inception's pooled features): units that no digit switches on
    stay 0 and simply add nothing to the Fréchet distance.

    ``held_out_accuracy`` and ``train_seconds`` are set by :func:`train_classifier`.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, feature_dim: int = 64) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64 * (CLASSIFIER_SIZE // 4) ** 2, feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)
        self.held_out_accuracy: Optional[float] = None  # set by train_classifier
        self.train_seconds: Optional[float] = None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Images [B, C, H, W] -> penultimate-layer features [B, feature_dim]."""
        check_image(x, "images")
        if x.shape[1] != self.in_channels or min(x.shape[-2:]) < 8:
            raise ValueError(
                f"images must be [B, {self.in_channels}, H, W] with H, W >= 8, got {list(x.shape)}."
            )
        if x.shape[-2:] != (CLASSIFIER_SIZE, CLASSIFIER_SIZE):
            # Area averaging when shrinking (no aliasing of thin strokes), bilinear when growing.
            shrink = x.shape[-1] > CLASSIFIER_SIZE
            x = F.interpolate(
                x,
                size=(CLASSIFIER_SIZE, CLASSIFIER_SIZE),
                mode="area" if shrink else "bilinear",
                align_corners=None if shrink else False,
            )
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images [B, C, H, W] in [-1, 1] -> class logits [B, num_classes]."""
        return self.head(self.features(x))


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    steps: int = DEFAULT_CLASSIFIER_STEPS,
    seed: int = 0,
    device: Optional[Union[str, torch.device]] = None,
) -> DigitClassifier:
    """Train a :class:`DigitClassifier` on labelled images with Adam and cross-entropy.

    ``HELD_OUT_FRACTION`` (10%) of the images, picked with ``seed``, are kept out of training
    and the classifier's accuracy on them is stored as ``classifier.held_out_accuracy`` (~98%
    on sklearn's digits). ``seed`` also fixes the initial weights and the batches, so the
    same call gives the same classifier. Returns it in eval mode on ``device``.

    Args:
        images: [N, C, H, W] in [-1, 1], H, W >= 8.
        labels: int64 [N], classes 0..K-1.
    """
    check_image(images, "images")
    labels = torch.as_tensor(labels)
    if labels.shape != (len(images),) or labels.dtype.is_floating_point or len(images) < 10:
        raise ValueError(
            f"labels must be integers [N] with N = {len(images)} (one per image, N >= 10), got "
            f"{labels.dtype} {list(labels.shape)}."
        )
    if int(labels.min()) < 0:
        raise ValueError("labels must be class indices 0..K-1, got a negative label.")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}.")
    dev = pick_device(device)
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=gen)
    n_held = max(1, round(HELD_OUT_FRACTION * len(images)))
    held, kept = order[:n_held], order[n_held:]
    x = images.detach()[kept.to(images.device)].float().to(dev)
    y = labels[kept.to(labels.device)].long().to(dev)
    with torch.random.fork_rng(devices=[]):  # seed the weights without touching global RNG
        torch.manual_seed(seed)
        model = DigitClassifier(images.shape[1], int(labels.max()) + 1).to(dev)
    optimiser = torch.optim.Adam(model.parameters(), lr=CLASSIFIER_LR)
    model.train()
    start = time.perf_counter()
    with cpu_threads(pick_threads(None, dev)):
        for _ in range(steps):
            idx = torch.randint(0, len(x), (CLASSIFIER_BATCH,), generator=gen).to(dev)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    model.eval()
    model.train_seconds = time.perf_counter() - start
    model.held_out_accuracy = class_accuracy(
        model, images[held.to(images.device)], labels[held.to(labels.device)]
    )
    return model


@torch.no_grad()
def class_accuracy(
    classifier: DigitClassifier, samples: torch.Tensor, labels: torch.Tensor
) -> float:
    """Fraction of ``samples`` [n, C, H, W] that ``classifier`` puts in class ``labels`` [n]:
    for class-conditional samples, how often the model drew the class it was asked for."""
    labels = torch.as_tensor(labels)
    if labels.shape != (len(samples),):
        raise ValueError(
            f"labels must be [n] with n = {len(samples)} (one per sample), got "
            f"{list(labels.shape)}."
        )
    logits = _in_batches(classifier, samples, classifier.forward)
    return float((logits.argmax(1) == labels.cpu()).float().mean())


@torch.no_grad()
def features(classifier: DigitClassifier, images: torch.Tensor) -> torch.Tensor:
    """The classifier's penultimate-layer features of ``images`` [n, C, H, W]: [n, d] on the
    CPU, the statistics :func:`frechet_distance` compares."""
    return _in_batches(classifier, images, classifier.features)


def _in_batches(classifier: nn.Module, images: torch.Tensor, fn: object) -> torch.Tensor:
    """``fn`` applied to ``images`` 1,024 at a time on the classifier's device, in eval mode;
    the outputs concatenated on the CPU."""
    check_image(images, "images")
    device = next(classifier.parameters()).device
    was_training = classifier.training
    classifier.eval()
    try:
        with cpu_threads(pick_threads(None, device)):
            out = [fn(b.to(device).float()).cpu() for b in images.detach().split(1024)]
    finally:
        classifier.train(was_training)
    return torch.cat(out)


def frechet_distance(
    feats_a: Union[torch.Tensor, np.ndarray], feats_b: Union[torch.Tensor, np.ndarray]
) -> float:
    """Fréchet distance between Gaussian fits of two sets of features [n_a, d], [n_b, d]:

        FD = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))

    (Heusel et al. 2017, eq. 2; Dowson & Landau 1982), with mu, S the mean and the (n-1)
    covariance of each set, in float64. The matrix square root is never formed: S_a S_b has
    the eigenvalues of A A^T with A = S_a^(1/2) S_b^(1/2) (symmetric PSD square roots by
    eigen-decomposition), so Tr((S_a S_b)^(1/2)) is the sum of the singular values of A. That
    stays real and accurate when covariances are singular (dead feature units, n < d), where
    a general ``sqrtm`` warns and can go complex; it agrees with ``scipy.linalg.sqrtm`` to
    ~1e-13 relative on the digit features.

    What it measures: how far apart the two feature distributions are, in their means and
    spreads: quality (samples that do not look like digits move the mean) and diversity (too
    few kinds of samples shrink the covariance) in one number. 0 for identical statistics.

    What it misses: it sees only what the feature network sees (here a small digit
    classifier, so it is not comparable to published FID numbers, which use Inception-v3
    features of 50,000 images); only means and covariances, not the full distributions; and it
    is biased upwards for small n (two samples of the same distribution score > 0, more so for
    fewer images), so compare values only at equal n.
    """
    a, b = _as_features(feats_a, "feats_a"), _as_features(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"feats_a has {a.shape[1]} features per image but feats_b has {b.shape[1]}: use "
            "features from the same network."
        )
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False, ddof=1), np.cov(b, rowvar=False, ddof=1)
    cov_a, cov_b = np.atleast_2d(cov_a), np.atleast_2d(cov_b)
    a_half = _sqrt_psd(cov_a) @ _sqrt_psd(cov_b)  # A, with A A^T similar to S_a S_b
    trace_sqrt = np.linalg.svd(a_half, compute_uv=False).sum()  # Tr((S_a S_b)^(1/2))
    mean_term = float(((mu_a - mu_b) ** 2).sum())
    return mean_term + float(np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt)


def _sqrt_psd(cov: np.ndarray) -> np.ndarray:
    """The symmetric square root of a covariance matrix: U diag(sqrt(max(l, 0))) U^T."""
    values, vectors = np.linalg.eigh(cov)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def _as_features(feats: Union[torch.Tensor, np.ndarray], name: str) -> np.ndarray:
    """Features [n, d] (n >= 2) as a float64 numpy array."""
    if isinstance(feats, torch.Tensor):
        feats = feats.detach().cpu().numpy()
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise ValueError(
            f"{name} must be [n, d] with n >= 2 (a covariance needs 2 images), got "
            f"{list(feats.shape)}."
        )
    return feats


@torch.no_grad()
def diversity(samples: torch.Tensor, *, chunk_size: int = DEFAULT_CHUNK) -> float:
    """Mean L2 distance between two different samples, (1 / (n (n-1))) sum_{i != j}
    ||x_i - x_j||_2, in float64: 0 when all samples are one image, in the same units as
    :func:`nearest_neighbours` (compare with the diversity of real images)."""
    check_image(samples, "samples")
    if len(samples) < 2:
        raise ValueError(f"samples must hold at least 2 images, got {len(samples)}.")
    x = samples.detach().flatten(1).double()
    total = sum(float(torch.cdist(block, x).sum()) for block in x.split(chunk_size))
    return total / (len(x) * (len(x) - 1))  # the diagonal (i = j) adds 0
