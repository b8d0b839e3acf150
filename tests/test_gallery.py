"""Tests of gallery.py: class labels and rows, the one-picture variants, within-class diversity,
the guidance sweep and its figure, and the class picker widget.

The conditional model here is an oracle: for label y it knows that the pictures of class y
are all one template m_y (and "no class" is mid-grey, m_null = 0), so its noise prediction is
eq. 4 solved for the noise. Guided by w it predicts the noise of the template
m_null + w (m_y - m_null) = w m_y, and a deterministic sampler lands there exactly (clipped to
[-1, 1]): w = 0 gives grey for every class, w = 1 the template, w = 3 the template saturated.
"""

import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torch import nn  # noqa: E402

from diffusion_helpers import evaluate as ev  # noqa: E402
from diffusion_helpers import gallery  # noqa: E402
from diffusion_helpers.schedule import NoiseSchedule  # noqa: E402
from diffusion_helpers.widgets import WIDGET_WIDTH_PX  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

K, SIZE = 4, 8  # classes, picture side


def templates():
    """K pictures [K, 1, 8, 8]: background -0.5, a +0.5 square in quadrant c for class c.
    All have the same norm, so a nearest-template classifier ties on mid-grey."""
    m = torch.full((K, 1, SIZE, SIZE), -0.5)
    for c in range(K):
        r, q = divmod(c, 2)
        m[c, :, 4 * r : 4 * r + 4, 4 * q : 4 * q + 4] = 0.5
    return m


@dataclass
class Config:
    image_size: int = SIZE
    image_channels: int = 1
    num_classes: int = K


class TemplateOracle(nn.Module):
    """eps(x_t, t, y) = (x_t - sqrt(abar_t) m_y) / sqrt(1 - abar_t), m_K (no class) = 0."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule
        self.register_buffer("means", torch.cat([templates(), torch.zeros(1, 1, SIZE, SIZE)]))
        self.config = Config()

    def forward(self, x, t, labels):
        abar = self.schedule.gather(self.schedule.alpha_bars, t, x)
        return (x - abar.sqrt() * self.means[labels]) / (1 - abar).sqrt()


class NearestTemplate(nn.Module):
    """A stand-in for evaluate.DigitClassifier: logits -||x - m_c||^2, features = pixels.
    The templates are a (frozen) parameter: evaluate finds the device from the parameters."""

    def __init__(self):
        super().__init__()
        self.means = nn.Parameter(templates(), requires_grad=False)

    def features(self, x):
        return x.flatten(1)

    def forward(self, x):
        return -(torch.cdist(x.flatten(1), self.means.flatten(1)) ** 2)


@pytest.fixture(scope="module")
def schedule():
    return NoiseSchedule(num_steps=1000)


@pytest.fixture(scope="module")
def oracle(schedule):
    return TemplateOracle(schedule)


# ---------------------------------------------------------------- labels and rows


def test_class_labels_class_by_class():
    assert gallery.class_labels(3, 2).tolist() == [0, 0, 1, 1, 2, 2]
    assert gallery.class_labels(3, 2).dtype == torch.long


@pytest.mark.parametrize("args", [(0, 2), (3, 0), (3, 1.5), (True, 2)])
def test_class_labels_refuses_bad_counts(args):
    with pytest.raises(ValueError, match="must be an integer >= 1"):
        gallery.class_labels(*args)


def test_plot_class_rows_one_row_per_class_named():
    images = templates().repeat_interleave(3, dim=0)
    labels = gallery.class_labels(K, 3)
    fig = gallery.plot_class_rows(images[:-1], labels[:-1], class_names=["a", "b", "c", "d"])
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c", "d"]
    grid = ax.images[0].get_array()  # K rows of 3 pictures of 8 px, 1 px white gaps
    assert grid.shape[:2] == (K * 9 - 1, 3 * 9 - 1)
    row_c = grid[2 * 9 : 2 * 9 + 8]  # class "c" (2): its square is bottom left
    assert row_c[5, 1] > row_c[1, 5]
    assert (grid[3 * 9 :, 2 * 9 :] == 255).all()  # class "d" has 2 pictures: the third is white


def test_plot_class_rows_checks_labels():
    with pytest.raises(ValueError, match="one per image"):
        gallery.plot_class_rows(templates(), torch.tensor([0, 1]))


def test_pick_per_class_draws_each_class_at_random_class_by_class():
    images = torch.linspace(-1, 1, 30).reshape(30, 1, 1, 1).expand(30, 1, 2, 2).contiguous()
    labels = torch.arange(30) % 3  # 10 of each class, interleaved
    picked, picked_labels = gallery.pick_per_class(images, labels, 4, seed=0)
    assert picked_labels.tolist() == gallery.class_labels(3, 4).tolist()
    index = ((picked[:, 0, 0, 0] + 1) / 2 * 29).round().long()  # which image each one is
    assert (labels[index] == picked_labels).all() and len(set(index.tolist())) == 12
    assert index[:4].tolist() != [0, 3, 6, 9]  # not simply the first ones
    again, _ = gallery.pick_per_class(images, labels, 4, seed=0)
    assert torch.equal(picked, again)
    few, few_labels = gallery.pick_per_class(images[:4], labels[:4], 5)  # class 0 has 2
    assert few_labels.tolist() == [0, 0, 1, 2]


# ---------------------------------------------------------------- one picture, many variants


def test_picture_variants_holds_the_picture_its_mirror_and_shifts():
    x0 = torch.full((1, 1, 16, 16), -1.0)
    x0[0, 0, 5, 9] = 1.0  # one white pixel
    variants = gallery.picture_variants(x0, max_shift=2)
    assert variants.shape == (50, 1, 16, 16)  # 2 x 5 x 5
    assert torch.equal(variants[0], x0[0])
    assert torch.equal(variants[25], x0[0].flip(-1))
    white = {tuple((v[0] == 1).nonzero()[0].tolist()) for v in variants[:25]}
    assert white == {(5 + dy, 9 + dx) for dy in range(-2, 3) for dx in range(-2, 3)}


def test_picture_variants_shift_repeats_the_edge():
    ramp = torch.linspace(-1, 1, 8).expand(1, 1, 8, 8)  # brighter to the right
    variants = gallery.picture_variants(ramp, max_shift=1)
    offsets = [(0, 0)] + [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    moved_right = variants[offsets.index((0, 1))][0]
    assert torch.equal(moved_right[:, 1:], ramp[0, 0, :, :-1])
    assert torch.equal(moved_right[:, 0], ramp[0, 0, :, 0])  # the left edge, repeated


def test_a_copy_of_the_picture_has_ratio_near_zero_another_picture_not():
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand(1, 3, 16, 16, generator=gen) * 2 - 1
    variants = gallery.picture_variants(x0)
    copies = (x0 + 0.01 * torch.randn(4, 3, 16, 16, generator=gen)).clamp(-1, 1)
    others = torch.rand(4, 3, 16, 16, generator=gen) * 2 - 1
    assert ev.memorisation_ratio(copies, variants) < 0.05
    assert ev.memorisation_ratio(others, variants) > 0.8


@pytest.mark.parametrize("kwargs", [dict(max_shift=0), dict(max_shift=16)])
def test_picture_variants_refuses_bad_shifts(kwargs):
    with pytest.raises(ValueError, match="max_shift"):
        gallery.picture_variants(torch.zeros(1, 1, 16, 16), **kwargs)


# ---------------------------------------------------------------- diversity within classes


def test_within_class_diversity_is_the_mean_of_per_class_diversities():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(7, 1, 4, 4, generator=gen) * 2 - 1
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2])

    def brute(a):  # mean distance over ordered pairs i != j, from the definition
        d = [float((a[i] - a[j]).norm()) for i in range(len(a)) for j in range(len(a)) if i != j]
        return sum(d) / len(d)

    expected = (brute(x[:3]) + brute(x[3:5]) + brute(x[5:])) / 3
    assert gallery.within_class_diversity(x, labels) == pytest.approx(expected, rel=1e-6)


def test_within_class_diversity_skips_single_pictures_and_needs_a_pair():
    x = torch.stack([torch.full((1, 2, 2), v) for v in (-1.0, 1.0, 0.0)])
    assert gallery.within_class_diversity(x, torch.tensor([0, 0, 1])) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="at least 2"):
        gallery.within_class_diversity(x, torch.tensor([0, 1, 2]))


# ---------------------------------------------------------------- guidance sweep


def test_guidance_sweep_lands_on_w_times_the_template(oracle, schedule):
    classifier = NearestTemplate()
    reference = classifier.features(templates().repeat_interleave(2, dim=0))
    results = gallery.guidance_sweep(
        oracle, schedule, classifier, scales=(0, 1, 3), per_class=2,
        reference_features=reference, method="ddim", steps=20,
    )  # fmt: skip
    assert [r.scale for r in results] == [0.0, 1.0, 3.0]
    for r in results:
        assert r.labels.tolist() == gallery.class_labels(K, 2).tolist()
        want = (r.scale * templates()[r.labels]).clamp(-1, 1)  # w = 0: grey for every class
        assert torch.allclose(r.images, want, atol=1e-3), r.scale
    # w = 0 ignores the class: the classifier sees near-ties and guesses (chance is 1/4)
    assert results[0].accuracy <= 0.5
    assert results[1].accuracy == 1.0 and results[2].accuracy == 1.0
    assert all(r.diversity == pytest.approx(0.0, abs=1e-2) for r in results)  # no noise left
    assert results[1].frechet == pytest.approx(0.0, abs=1e-3)  # the reference exactly
    assert results[2].frechet > 1.0  # saturated templates sit elsewhere


def test_guidance_sweep_needs_a_conditional_model(schedule):
    plain = nn.Conv2d(1, 1, 1)
    with pytest.raises(ValueError, match="class-conditional"):
        gallery.guidance_sweep(plain, schedule, NearestTemplate())


def test_guidance_table_and_figure(oracle, schedule):
    results = gallery.guidance_sweep(
        oracle, schedule, NearestTemplate(), scales=(0, 1), per_class=2, steps=5
    )
    table = gallery.guidance_table(results, real_diversity=1.5)
    assert table.splitlines()[2].split()[:2] == ["1", "100%"]
    assert table.splitlines()[-1].split() == ["real", "1.50"]
    fig = gallery.plot_guidance_sweep(results, class_names=list("abcd"), real_diversity=1.5)
    (grid,) = [ax for ax in fig.axes if ax.images]
    assert grid.images[0].get_array().shape[:2] == (2 * 9 - 1, K * 9 - 1)  # a row per w
    assert [t.get_text() for t in grid.get_xticklabels()] == list("abcd")
    rows = [t.get_text() for t in grid.get_yticklabels()]
    assert rows[1].startswith("w = 1\n100% right")
    charts = [ax for ax in fig.axes if ax.lines]
    assert list(charts[0].lines[0].get_xdata()) == [0.0, 1.0]


# ---------------------------------------------------------------- class picker


def png(image_widget):
    return np.asarray(Image.open(io.BytesIO(image_widget.value)).convert("L"))


def parts(box):
    (picker, scale), (sampler, again) = box.children[0].children, box.children[1].children
    return picker, scale, sampler, again, box.children[2], box.children[3]


def test_class_sampler_draws_the_chosen_class(oracle, schedule):
    box = gallery.class_sampler(oracle, schedule, list("abcd"), n=4, guidance_scale=1.0)
    picker, scale, sampler, again, text, image = parts(box)
    first = png(image)
    assert first.shape[1] <= WIDGET_WIDTH_PX and "<b>a</b>" in text.value
    picker.value = 3
    third = png(image)
    assert "<b>d</b>" in text.value and not np.array_equal(first, third)
    # a 2 x 2 grid of 8 px pictures with 1 px gaps (17 px), enlarged by a whole factor; in the
    # first picture, class 3's square (bottom right) is bright and the top left is not
    f = third.shape[1] // 17
    assert third.shape == (17 * f, 17 * f)
    assert third[6 * f, 6 * f] > 128 > third[1 * f, 1 * f]


def test_class_sampler_ignores_the_class_at_w_zero_and_new_noise_moves_on(oracle, schedule):
    box = gallery.class_sampler(oracle, schedule, n=2, guidance_scale=0.0, method="ddim")
    picker, scale, sampler, again, text, image = parts(box)
    before = png(image)
    picker.value = 2
    assert np.array_equal(before, png(image))  # w = 0: the label is not used
    scale.value = 2.0
    assert "w = 2" in text.value and not np.array_equal(before, png(image))
    again.click()
    assert "seed 1" in text.value


@pytest.mark.parametrize(
    "kwargs, word",
    [(dict(method="ddpm"), "method"), (dict(guidance_scale=-1.0), "guidance_scale"),
     (dict(class_names=["x"]), "class_names")],
)  # fmt: skip
def test_class_sampler_refuses_bad_arguments(oracle, schedule, kwargs, word):
    with pytest.raises(ValueError, match=word):
        gallery.class_sampler(oracle, schedule, **kwargs)
