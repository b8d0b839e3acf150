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
from torch import nn

from ..checks.tensors import check_image
from ..runtime.device import pick_device
from ..runtime.threads import cpu_threads, pick_threads
from .copying import diversity

# The classifier resizes every image to this size first, so one network serves 8, 16, 32 and
# 64 px digits, and a classifier trained on 32 px data judges 32 px samples alike.
CLASSIFIER_SIZE = 16
# Fraction of the labelled images that train_classifier holds out to measure its accuracy.
HELD_OUT_FRACTION = 0.1
# Classifier training: 400 Adam steps of 128 images reach 95% held-out accuracy on sklearn's
# digits at 16 px (notebook 05, seed 0; 97-98% was measured at other sizes and seeds) in about
# 5 s on one idle CPU core (tests/metrics/test_classifier.py checks it learns).
DEFAULT_CLASSIFIER_STEPS = 400
CLASSIFIER_BATCH = 128
CLASSIFIER_LR = 2e-3


# ---------------------------------------------------------------------------------------------
# 1. Copies or new pictures?
# ---------------------------------------------------------------------------------------------


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
    and the classifier's accuracy on them is stored as ``classifier.held_out_accuracy`` (95%
    on sklearn's digits at 16 px, seed 0). ``seed`` also fixes the initial weights and the batches, so the
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


def within_class_diversity(images: torch.Tensor, labels: torch.Tensor) -> float:
    """The mean over classes of :func:`.metrics.copying.diversity` among the ``images`` [n, C, H, W] of
    each class (``labels`` [n]; classes with one image are skipped): how different two pictures
    of the same class are. Guidance lowers it; compare with the real pictures' value."""
    labels = torch.as_tensor(labels).cpu()
    if labels.shape != (len(images),):
        raise ValueError(
            f"labels must be [n] with n = {len(images)} (one per image), got {list(labels.shape)}."
        )
    values = [diversity(images[labels == c]) for c in labels.unique() if (labels == c).sum() > 1]
    if not values:
        raise ValueError("within_class_diversity needs a class with at least 2 images.")
    return sum(values) / len(values)
