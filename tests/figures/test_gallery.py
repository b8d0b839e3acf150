"""Tests of gallery.py: class labels and rows, the one-picture variants, within-class diversity,
the guidance sweep and its figure, and the class picker widget.

The conditional model here is an oracle: for label y it knows that the pictures of class y
are all one template m_y (and "no class" is mid-grey, m_null = 0), so its noise prediction is
eq. 4 solved for the noise. Guided by w it predicts the noise of the template
m_null + w (m_y - m_null) = w m_y, and a deterministic sampler lands there exactly (clipped to
[-1, 1]): w = 0 gives grey for every class, w = 1 the template, w = 3 the template saturated.
"""

import io

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from tiny import (
    K,
    TemplateOracle,  # noqa: E402
    templates,  # noqa: E402
)

from diffusion_helpers.figures.gallery import (
    class_sampler,  # noqa: E402
    plot_class_rows,  # noqa: E402
    plot_nearest_neighbours,  # noqa: E402
)
from diffusion_helpers.figures.widgets import WIDGET_WIDTH_PX  # noqa: E402
from diffusion_helpers.metrics.copying import (
    nearest_neighbours,  # noqa: E402
)
from diffusion_helpers.schedule import NoiseSchedule  # noqa: E402
from diffusion_helpers.tutorial.sweeps import (
    class_labels,  # noqa: E402
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def schedule():
    return NoiseSchedule(num_steps=1000)


@pytest.fixture(scope="module")
def oracle(schedule):
    return TemplateOracle(schedule)


# ---------------------------------------------------------------- labels and rows


def test_plot_class_rows_one_row_per_class_named():
    images = templates().repeat_interleave(3, dim=0)
    labels = class_labels(K, 3)
    fig = plot_class_rows(images[:-1], labels[:-1], class_names=["a", "b", "c", "d"])
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c", "d"]
    grid = ax.images[0].get_array()  # K rows of 3 pictures of 8 px, 1 px white gaps
    assert grid.shape[:2] == (K * 9 - 1, 3 * 9 - 1)
    row_c = grid[2 * 9 : 2 * 9 + 8]  # class "c" (2): its square is bottom left
    assert row_c[5, 1] > row_c[1, 5]
    assert (grid[3 * 9 :, 2 * 9 :] == 255).all()  # class "d" has 2 pictures: the third is white


def test_plot_class_rows_checks_labels():
    with pytest.raises(ValueError, match="one per image"):
        plot_class_rows(templates(), torch.tensor([0, 1]))


# ---------------------------------------------------------------- one picture, many variants


# ---------------------------------------------------------------- diversity within classes


# ---------------------------------------------------------------- guidance sweep


# ---------------------------------------------------------------- class picker


def png(image_widget):
    return np.asarray(Image.open(io.BytesIO(image_widget.value)).convert("L"))


def parts(box):
    (picker, scale), (sampler, again) = box.children[0].children, box.children[1].children
    return picker, scale, sampler, again, box.children[2], box.children[3]


def test_class_sampler_draws_the_chosen_class(oracle, schedule):
    box = class_sampler(oracle, schedule, list("abcd"), n=4, guidance_scale=1.0)
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
    box = class_sampler(oracle, schedule, n=2, guidance_scale=0.0, method="ddim")
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
        class_sampler(oracle, schedule, **kwargs)


def test_plot_nearest_neighbours_pairs_each_sample_with_its_neighbour(digits):
    samples = torch.cat([digits["x_train"][:2], digits["x_test"][:6]])
    fig = plot_nearest_neighbours(samples, digits["x_train"], n=8)
    axes = fig.get_axes()
    assert len(axes) == 16 and not any(ax.axison for ax in axes)
    assert fig.get_figwidth() * fig.dpi <= 800
    d, _ = nearest_neighbours(samples, digits["x_train"])
    titles = [ax.get_title() for ax in axes]
    assert titles[:8] == ["sample"] * 8
    assert titles[8:] == [f"d = {float(v):.2f}" for v in d[:, 0]]
    assert titles[8:10] == ["d = 0.00", "d = 0.00"]  # the two training images find themselves
    assert len(plot_nearest_neighbours(samples[:3], digits["x_train"]).get_axes()) == 6


def test_plot_nearest_neighbours_wraps_into_rows_of_eight(digits):
    """12 pairs: a row of 8 samples over their 8 neighbours, then 4 over 4 (and 4 blanks)."""
    fig = plot_nearest_neighbours(digits["x_test"], digits["x_train"], n=12)
    assert fig.get_figwidth() * fig.dpi <= 800
    titles = [ax.get_title() for ax in fig.get_axes()]
    assert len(titles) == 32
    assert titles[:8] == ["sample"] * 8
    assert titles[16:24] == ["sample"] * 4 + [""] * 4
    assert all(t.startswith("d = ") for t in titles[8:16] + titles[24:28])
    assert titles[28:] == [""] * 4
