"""How good and how varied are samples of the digits? The idea of FID (Heusel et al. 2017)
with a small CNN trained in seconds on the real digits instead of Inception: its accuracy on
the class asked for, and the Fréchet distance of its features."""

from __future__ import annotations

from typing import Callable, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checks.tensors import check_image
from ..runtime.device import pick_device
from ..runtime.threads import cpu_threads, pick_threads
from .copying import diversity

CLASSIFIER_SIZE = 16  # every image is resized to this side: one network for 8 to 64 px digits
HELD_OUT_FRACTION = 0.1  # of the labelled images, kept out of training to measure accuracy
DEFAULT_CLASSIFIER_STEPS = 400  # 95% held-out accuracy on the digits, about 5 s on a CPU
CLASSIFIER_BATCH = 128
CLASSIFIER_LR = 2e-3


class DigitClassifier(nn.Module):
    """A small CNN for small grey images (the digits, MNIST) [B, C, H, W] in [-1, 1], resized
    to 16 px: three 3x3 convolutions (16 px, 8, 4), a linear layer to ``feature_dim`` features
    (after a ReLU, as Inception's pooled features), a linear layer to the class logits."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, feature_dim: int = 64) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(),  # 16 x 16
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),  # 8 x 8
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),  # 4 x 4
            nn.Flatten(), nn.Linear(64 * (CLASSIFIER_SIZE // 4) ** 2, feature_dim), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(feature_dim, num_classes)
        self.held_out_accuracy: Optional[float] = None  # set by train_classifier

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Images [B, C, H, W] -> penultimate-layer features [B, feature_dim]."""
        check_image(x, "images")
        if x.shape[1] != self.in_channels or min(x.shape[-2:]) < 8:
            raise ValueError(
                f"images must be [B, {self.in_channels}, H, W] with H, W >= 8, got {list(x.shape)}."
            )
        if x.shape[-2:] != (CLASSIFIER_SIZE, CLASSIFIER_SIZE):
            # Area averaging when shrinking (no aliasing of thin strokes), bilinear when growing.
            mode = "area" if x.shape[-1] > CLASSIFIER_SIZE else "bilinear"
            x = F.interpolate(x, size=(CLASSIFIER_SIZE, CLASSIFIER_SIZE), mode=mode)
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
    """Train a :class:`DigitClassifier` on ``images`` [N, C, H, W] in [-1, 1] and integer
    ``labels`` [N] (classes 0..K-1) with Adam and cross-entropy; returned in eval mode.

    ``HELD_OUT_FRACTION`` of the images are kept out, and the accuracy on them is stored as
    ``held_out_accuracy``. ``seed`` fixes the split, the initial weights and the batches.
    """
    check_image(images, "images")
    labels = torch.as_tensor(labels)
    if labels.shape != (len(images),) or labels.dtype.is_floating_point or len(images) < 10:
        raise ValueError(
            f"labels must be integers [N] with N = {len(images)} (one per image, N >= 10), got "
            f"{labels.dtype} {list(labels.shape)}."
        )
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
    with cpu_threads(pick_threads(None, dev)):
        for _ in range(steps):
            idx = torch.randint(0, len(x), (CLASSIFIER_BATCH,), generator=gen).to(dev)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    model.eval()
    model.held_out_accuracy = class_accuracy(
        model, images[held.to(images.device)], labels[held.to(labels.device)]
    )
    return model


@torch.no_grad()
def class_accuracy(
    classifier: DigitClassifier, samples: torch.Tensor, labels: torch.Tensor
) -> float:
    """Fraction of ``samples`` [n, C, H, W] that ``classifier`` puts in class ``labels`` [n]."""
    labels = one_label_each(labels, len(samples))
    logits = _in_batches(classifier, samples, classifier.forward)
    return float((logits.argmax(1) == labels).float().mean())


@torch.no_grad()
def features(classifier: DigitClassifier, images: torch.Tensor) -> torch.Tensor:
    """The classifier's penultimate-layer features of ``images`` [n, C, H, W]: [n, d], CPU."""
    return _in_batches(classifier, images, classifier.features)


def _in_batches(classifier: nn.Module, images: torch.Tensor, fn: Callable) -> torch.Tensor:
    """``fn`` of ``images``, 1,024 at a time on the classifier's device, back on the CPU."""
    check_image(images, "images")
    device = next(classifier.parameters()).device
    with cpu_threads(pick_threads(None, device)):
        return torch.cat([fn(b.to(device).float()).cpu() for b in images.detach().split(1024)])


def frechet_distance(
    feats_a: Union[torch.Tensor, np.ndarray], feats_b: Union[torch.Tensor, np.ndarray]
) -> float:
    """Fréchet distance between Gaussian fits of two sets of features [n_a, d], [n_b, d]:

        FD = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))   (Heusel et al. 2017, eq. 2)

    mu, S the mean and (n-1) covariance of each set, in float64; biased upwards for small n,
    so compare values at equal n only.
    """
    a, b = _as_features(feats_a, "feats_a"), _as_features(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"feats_a has {a.shape[1]} features per image but feats_b has {b.shape[1]}: use "
            "features from the same network."
        )
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = (np.atleast_2d(np.cov(f, rowvar=False, ddof=1)) for f in (a, b))
    # Tr((S_a S_b)^(1/2)) = the sum of the singular values of A = S_a^(1/2) S_b^(1/2): real even
    # where a covariance is singular, where scipy's sqrtm can go complex.
    a_half = _sqrt_psd(cov_a) @ _sqrt_psd(cov_b)
    trace_sqrt = np.linalg.svd(a_half, compute_uv=False).sum()
    mean_term = float(((mu_a - mu_b) ** 2).sum())
    return mean_term + float(np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt)


def _sqrt_psd(cov: np.ndarray) -> np.ndarray:
    """The symmetric square root of a covariance matrix: U diag(sqrt(max(l, 0))) U^T."""
    values, vectors = np.linalg.eigh(cov)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def _as_features(feats: Union[torch.Tensor, np.ndarray], name: str) -> np.ndarray:
    """Features [n, d] (n >= 2) as a float64 numpy array."""
    feats = torch.as_tensor(feats).detach().cpu().numpy().astype(np.float64)
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise ValueError(
            f"{name} must be [n, d] with n >= 2 (a covariance needs 2 images), got "
            f"{list(feats.shape)}."
        )
    return feats


def one_label_each(labels: torch.Tensor, n: int) -> torch.Tensor:
    """``labels`` as a CPU tensor [n], one per image, else ``ValueError``."""
    labels = torch.as_tensor(labels).cpu()
    if labels.shape != (n,):
        raise ValueError(
            f"labels must be [n] with n = {n} (one per image), got {list(labels.shape)}."
        )
    return labels


def within_class_diversity(images: torch.Tensor, labels: torch.Tensor) -> float:
    """The mean over classes (``labels`` [n]) of the :func:`.copying.diversity` of the
    ``images`` [n, C, H, W] of each; classes with one image are skipped."""
    labels = one_label_each(labels, len(images))
    values = [diversity(images[labels == c]) for c in labels.unique() if (labels == c).sum() > 1]
    if not values:
        raise ValueError("within_class_diversity needs a class with at least 2 images.")
    return sum(values) / len(values)
