"""The guidance sweep of notebook 05 (tutorial/sweeps.py)."""

import pytest
import torch
from tiny import K, NearestTemplate, TemplateOracle, templates
from torch import nn

from diffusion_helpers.reverse import Sampler
from diffusion_helpers.schedule import NoiseSchedule
from diffusion_helpers.tutorial.sweeps import (
    class_labels,
    guidance_sweep,
    guidance_table,
    pick_per_class,
    plot_guidance_sweep,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def schedule():
    return NoiseSchedule(num_steps=1000)


@pytest.fixture(scope="module")
def oracle(schedule):
    return TemplateOracle(schedule)


def test_class_labels_class_by_class():
    assert class_labels(3, 2).tolist() == [0, 0, 1, 1, 2, 2]
    assert class_labels(3, 2).dtype == torch.long


@pytest.mark.parametrize("args", [(0, 2), (3, 0), (3, 1.5), (True, 2)])
def test_class_labels_refuses_bad_counts(args):
    with pytest.raises(ValueError, match="must be an integer >= 1"):
        class_labels(*args)


def test_pick_per_class_draws_each_class_at_random_class_by_class():
    images = torch.linspace(-1, 1, 30).reshape(30, 1, 1, 1).expand(30, 1, 2, 2).contiguous()
    labels = torch.arange(30) % 3  # 10 of each class, interleaved
    picked, picked_labels = pick_per_class(images, labels, 4, seed=0)
    assert picked_labels.tolist() == class_labels(3, 4).tolist()
    index = ((picked[:, 0, 0, 0] + 1) / 2 * 29).round().long()  # which image each one is
    assert (labels[index] == picked_labels).all() and len(set(index.tolist())) == 12
    assert index[:4].tolist() != [0, 3, 6, 9]  # not simply the first ones
    again, _ = pick_per_class(images, labels, 4, seed=0)
    assert torch.equal(picked, again)
    few, few_labels = pick_per_class(images[:4], labels[:4], 5)  # class 0 has 2
    assert few_labels.tolist() == [0, 0, 1, 2]


def test_guidance_sweep_lands_on_w_times_the_template(oracle, schedule):
    classifier = NearestTemplate()
    reference = classifier.features(templates().repeat_interleave(2, dim=0))
    results = guidance_sweep(
        oracle, schedule, classifier, scales=(0, 1, 3), per_class=2,
        reference_features=reference, sampler=Sampler("ddim", 20),
    )  # fmt: skip
    assert [r.scale for r in results] == [0.0, 1.0, 3.0]
    for r in results:
        assert r.labels.tolist() == class_labels(K, 2).tolist()
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
        guidance_sweep(plain, schedule, NearestTemplate())


def test_guidance_table_and_figure(oracle, schedule):
    results = guidance_sweep(
        oracle,
        schedule,
        NearestTemplate(),
        scales=(0, 1),
        per_class=2,
        sampler=Sampler("dpm_solver", 5),
    )
    table = guidance_table(results, real_diversity=1.5)
    assert table.splitlines()[2].split()[:2] == ["1", "100%"]
    assert table.splitlines()[-1].split() == ["real", "1.50"]
    fig = plot_guidance_sweep(results, class_names=list("abcd"), real_diversity=1.5)
    (grid,) = [ax for ax in fig.axes if ax.images]
    assert grid.images[0].get_array().shape[:2] == (2 * 9 - 1, K * 9 - 1)  # a row per w
    assert [t.get_text() for t in grid.get_xticklabels()] == list("abcd")
    rows = [t.get_text() for t in grid.get_yticklabels()]
    assert rows[1].startswith("w = 1\n100% right")
    charts = [ax for ax in fig.axes if ax.lines]
    assert list(charts[0].lines[0].get_xdata()) == [0.0, 1.0]


def test_plot_frechet_sets_titles_each_row_with_its_fd_and_ratio():
    from diffusion_helpers.metrics.classifier import DigitClassifier, features, frechet_distance
    from diffusion_helpers.metrics.copying import memorisation_ratio
    from diffusion_helpers.tutorial.sweeps import plot_frechet_sets

    torch.manual_seed(0)
    classifier = DigitClassifier().eval()  # untrained: any features do for the bookkeeping
    g = torch.Generator().manual_seed(1)
    real = torch.rand(40, 1, 16, 16, generator=g) * 2 - 1
    other = torch.rand(20, 1, 16, 16, generator=g) * 2 - 1
    real_features = features(classifier, real)
    fig = plot_frechet_sets({"copies": real[:20], "others": other}, classifier, real_features, real)
    (grid,) = [ax for ax in fig.axes if ax.images]
    rows = [t.get_text() for t in grid.get_yticklabels()]
    for row, (name, images) in zip(rows, {"copies": real[:20], "others": other}.items()):
        fd = frechet_distance(features(classifier, images), real_features)
        assert row == f"{name}\nFD {fd:.0f} · ratio {memorisation_ratio(images, real):.2f}"
    assert rows[0].endswith("ratio 0.00")  # copies of training pictures
