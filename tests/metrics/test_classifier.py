"""Tests of evaluate.py: nearest neighbours, the memorisation ratio, the digit classifier, the
Fréchet distance and diversity. All on the CPU with fixed seeds; the digits are sklearn's
bundled 8x8 digits (no download), built here until datasets.load_dataset("digits") exists."""

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from diffusion_helpers.metrics.classifier import (
    class_accuracy,  # noqa: E402
    features,  # noqa: E402
    frechet_distance,  # noqa: E402
    train_classifier,  # noqa: E402
    within_class_diversity,  # noqa: E402
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def classifier(digits):
    """Trained once for the module (~5 s on one core)."""
    return train_classifier(digits["x_train"], digits["y_train"], seed=0, device="cpu")


# --- nearest_neighbours ----------------------------------------------------------------------


# --- memorisation_ratio and its picture -----------------------------------------------------


# --- Fréchet distance -----------------------------------------------------------------------


def test_frechet_distance_of_identical_sets_is_zero():
    feats = torch.randn(500, 16, generator=torch.Generator().manual_seed(0)) * 3 + 1
    assert abs(frechet_distance(feats, feats)) < 1e-9


def test_frechet_distance_of_a_shifted_set_is_the_squared_shift_and_symmetric():
    """Same covariance, so Tr(S + S - 2 (S S)^(1/2)) = 0 and FD = ||shift||^2."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(400, 8, generator=gen, dtype=torch.float64)
    a = a @ torch.randn(8, 8, generator=gen, dtype=torch.float64)  # float64: a + shift exact
    shift = torch.arange(8.0, dtype=torch.float64) / 4
    fd = frechet_distance(a, a + shift)
    assert math.isclose(fd, float((shift**2).sum()), rel_tol=1e-9)
    b = torch.randn(300, 8, generator=gen, dtype=torch.float64) * 2
    assert math.isclose(frechet_distance(a, b), frechet_distance(b, a), rel_tol=1e-9)


def test_frechet_distance_in_one_dimension_is_mean_and_std_difference():
    """For 1-D Gaussians FD = (m_a - m_b)^2 + (s_a - s_b)^2 (s the n-1 standard deviation)."""
    gen = np.random.default_rng(0)
    a, b = gen.normal(1.0, 2.0, (200, 1)), gen.normal(-0.5, 0.5, (300, 1))
    expected = (a.mean() - b.mean()) ** 2 + (a.std(ddof=1) - b.std(ddof=1)) ** 2
    assert math.isclose(frechet_distance(a, b), expected, rel_tol=1e-9)


def test_frechet_distance_matches_scipy_sqrtm():
    linalg = pytest.importorskip("scipy.linalg")
    gen = np.random.default_rng(1)
    a = gen.normal(size=(300, 6)) @ gen.normal(size=(6, 6))
    b = gen.normal(size=(250, 6)) @ gen.normal(size=(6, 6)) + 0.3
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(s_a @ s_b).real
    expected = ((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * root)
    assert math.isclose(frechet_distance(a, b), expected, rel_tol=1e-8)


def test_frechet_distance_rejects_mismatched_features():
    with pytest.raises(ValueError, match="same network"):
        frechet_distance(torch.zeros(5, 4), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="n >= 2"):
        frechet_distance(torch.zeros(1, 4), torch.zeros(5, 4))
    with pytest.raises(ValueError, match="feats_b"):
        frechet_distance(torch.zeros(5, 4), torch.zeros(5))


# --- the digit classifier --------------------------------------------------------------------


def test_classifier_recognises_held_out_digits(classifier, digits):
    """Measured: 97.9% on its own 10% hold-out, 97.2% on the 397 test digits (400 steps,
    seed 0, ~5 s on one core). > 90% is the promise; permuted labels score ~chance (8.8%)."""
    assert classifier.held_out_accuracy > 0.9
    assert class_accuracy(classifier, digits["x_test"], digits["y_test"]) > 0.9
    permuted = digits["y_test"][torch.randperm(397, generator=torch.Generator().manual_seed(0))]
    assert class_accuracy(classifier, digits["x_test"], permuted) < 0.25
    assert not classifier.training


def test_classifier_judges_other_sizes_after_resizing(classifier, digits):
    """Trained at 16 px; the same digits at 8 px and 32 px scored 97.2% too (measured)."""
    for size in (8, 32):
        x = F.interpolate(digits["x_test"], size=(size, size), mode="bilinear")
        assert class_accuracy(classifier, x, digits["y_test"]) > 0.9
    with pytest.raises(ValueError, match="H, W >= 8"):
        features(classifier, torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match="images must be"):
        features(classifier, torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match="labels"):
        class_accuracy(classifier, digits["x_test"], digits["y_test"][:5])


def test_train_classifier_is_reproducible_and_checks_labels(digits):
    x, y = digits["x_train"][:200], digits["y_train"][:200]
    a = train_classifier(x, y, steps=3, seed=5, device="cpu")
    b = train_classifier(x, y, steps=3, seed=5, device="cpu")
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    with pytest.raises(ValueError, match="labels"):
        train_classifier(x, y[:10], steps=1)
    with pytest.raises(ValueError, match="labels"):
        train_classifier(x, y.float(), steps=1)
    with pytest.raises(ValueError, match="steps"):
        train_classifier(x, y, steps=0)


def test_features_and_frechet_rank_real_above_noisy_above_noise(classifier, digits):
    """FD against the training digits, measured: held-out real 36, real + noise (std 0.5) 353,
    uniform noise 7,134. Each step a factor of ~10, so factors of 3 are asserted."""
    real = features(classifier, digits["x_train"])
    assert real.shape == (1400, 64) and real.device.type == "cpu"
    gen = torch.Generator().manual_seed(0)
    test = digits["x_test"]
    noisy = (test + 0.5 * torch.randn(test.shape, generator=gen)).clamp(-1, 1)
    noise = torch.rand(test.shape, generator=gen) * 2 - 1
    fd_real, fd_noisy, fd_noise = (
        frechet_distance(real, features(classifier, x)) for x in (test, noisy, noise)
    )
    assert 0 < fd_real < fd_noisy / 3 < fd_noise / 9


# --- diversity -------------------------------------------------------------------------------


def test_within_class_diversity_is_the_mean_of_per_class_diversities():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(7, 1, 4, 4, generator=gen) * 2 - 1
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2])

    def brute(a):  # mean distance over ordered pairs i != j, from the definition
        d = [float((a[i] - a[j]).norm()) for i in range(len(a)) for j in range(len(a)) if i != j]
        return sum(d) / len(d)

    expected = (brute(x[:3]) + brute(x[3:5]) + brute(x[5:])) / 3
    assert within_class_diversity(x, labels) == pytest.approx(expected, rel=1e-6)


def test_within_class_diversity_skips_single_pictures_and_needs_a_pair():
    x = torch.stack([torch.full((1, 2, 2), v) for v in (-1.0, 1.0, 0.0)])
    assert within_class_diversity(x, torch.tensor([0, 0, 1])) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="at least 2"):
        within_class_diversity(x, torch.tensor([0, 1, 2]))
