"""Is it a copy? (metrics/copying.py): nearest neighbours, the memorisation ratio, diversity,
and the measures of variations of one picture."""

import math

import pytest
import torch
from tiny import shuffled_blocks, smooth_picture

from diffusion_helpers.metrics.copying import (
    copy_psnr,
    diversity,
    held_out_patch_distance,
    memorisation_ratio,
    nearest_neighbours,
    patch_distance,
    picture_variants,
    sample_spread,
)


def test_a_copy_scores_as_a_copy():
    picture = smooth_picture()
    shifted = torch.roll(picture, shifts=(3, -2), dims=(2, 3))  # moved 3 px down, 2 px left
    mirrored = picture.flip(-1)
    psnr = copy_psnr(torch.cat([picture, shifted, mirrored]), picture)
    assert psnr[0] > 100 and psnr[2] > 100  # exact (up to round-off in the sums)
    assert psnr[1] > 100  # the window inside the 4 px border matches exactly
    assert float(patch_distance(picture, picture)) == pytest.approx(0.0, abs=1e-3)


def test_a_copy_inside_a_larger_canvas_is_found():
    picture = smooth_picture()
    canvas = smooth_picture(64, seed=9)
    canvas[..., 10:58, 5:53] = picture
    assert float(copy_psnr(canvas, picture)) > 40
    assert float(copy_psnr(smooth_picture(64, seed=9), picture)) < 20


def test_a_reshuffle_is_no_copy_but_has_the_look():
    """Tiles moved around: far from the picture pixel by pixel, but every patch inside a tile
    is one of the picture's."""
    picture = smooth_picture()
    shuffled = shuffled_blocks(picture)
    noise = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(2)) * 2 - 1
    assert float(copy_psnr(shuffled, picture)) < 20
    d_shuffled = float(patch_distance(shuffled, picture))
    d_noise = float(patch_distance(noise, picture))
    reference = held_out_patch_distance(picture)
    assert d_shuffled < reference < d_noise
    assert d_noise > 3 * d_shuffled  # measured: 0.12 and 0.59


def test_held_out_patch_distance_is_zero_for_a_repeating_picture():
    """A picture made of one tile repeated: every held-out part appears elsewhere."""
    tile = smooth_picture(12, seed=4)
    picture = tile.repeat(1, 1, 4, 4)
    # cdist works through matrix products: exact matches come out ~1e-4, not 0
    assert held_out_patch_distance(picture, 12) == pytest.approx(0.0, abs=1e-3)
    assert held_out_patch_distance(smooth_picture()) > 0.01


def test_sample_spread_is_zero_for_equal_samples_and_in_value_units():
    picture = smooth_picture()
    assert sample_spread(picture.repeat(3, 1, 1, 1)) == 0.0
    pair = torch.cat([torch.zeros(1, 3, 8, 8), torch.full((1, 3, 8, 8), 0.5)])
    assert sample_spread(pair) == pytest.approx(0.5)


def test_measurements_refuse_mismatched_channels():
    with pytest.raises(ValueError, match="channels"):
        patch_distance(torch.zeros(1, 1, 16, 16), torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="picture"):
        copy_psnr(torch.zeros(1, 3, 16, 16), torch.zeros(2, 3, 16, 16))


def brute_force_distances(a, b):
    """All pairwise L2 distances [n, N] in float64, straight from the definition."""
    diff = a.flatten(1).double()[:, None, :] - b.flatten(1).double()[None, :, :]
    return (diff**2).sum(-1).sqrt()


def test_nearest_neighbours_of_flat_greys_are_known():
    """Flat images c * 1 at c = -1, -0.5, 0, 0.5, 1; the query 0.3 * 1 is 0.2 sqrt(D) from
    0.5, 0.3 sqrt(D) from 0 and 0.7 sqrt(D) from 1, in that order."""
    levels = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0])
    dataset = levels.reshape(5, 1, 1, 1).expand(5, 1, 4, 4).contiguous()
    query = torch.full((1, 1, 4, 4), 0.3)
    d, idx = nearest_neighbours(query, dataset, k=3)
    assert idx.tolist() == [[3, 2, 4]]
    assert torch.allclose(d, torch.tensor([[0.2, 0.3, 0.7]]) * 4.0, atol=1e-6)  # sqrt(16) = 4


def test_nearest_neighbours_of_perturbed_copies_are_the_originals():
    gen = torch.Generator().manual_seed(0)
    dataset = torch.rand(100, 3, 8, 8, generator=gen) * 2 - 1
    which = torch.tensor([5, 42, 0, 99, 42])
    noise = 0.01 * torch.randn(5, 3, 8, 8, generator=gen)
    d, idx = nearest_neighbours(dataset[which] + noise, dataset)
    assert d.shape == idx.shape == (5, 1) and idx.dtype == torch.long
    assert idx[:, 0].tolist() == which.tolist()
    assert torch.allclose(d[:, 0], noise.flatten(1).norm(dim=1), rtol=1e-4)
    exact, _ = nearest_neighbours(dataset[:3], dataset)
    assert exact.abs().max() == 0.0  # recomputed from differences, no matmul round-off


def test_chunked_search_equals_unchunked_and_brute_force():
    gen = torch.Generator().manual_seed(1)
    queries = torch.randn(50, 1, 6, 6, generator=gen)
    dataset = torch.randn(203, 1, 6, 6, generator=gen)
    d_small, i_small = nearest_neighbours(queries, dataset, k=5, chunk_size=7)
    d_big, i_big = nearest_neighbours(queries, dataset, k=5, chunk_size=10_000)
    assert torch.equal(i_small, i_big)
    assert torch.allclose(d_small, d_big, atol=1e-5)
    reference, ref_idx = brute_force_distances(queries, dataset).sort(dim=1)
    assert torch.equal(i_small, ref_idx[:, :5])
    assert torch.allclose(d_small.double(), reference[:, :5], atol=1e-5)


def test_nearest_neighbours_rejects_bad_shapes_and_k():
    x = torch.zeros(4, 1, 16, 16)
    with pytest.raises(ValueError, match="dataset_images"):
        nearest_neighbours(x, torch.zeros(10, 1, 8, 8))
    with pytest.raises(ValueError, match="dataset_images"):
        nearest_neighbours(x, torch.zeros(10, 3, 16, 16))
    with pytest.raises(ValueError, match="images"):
        nearest_neighbours(torch.zeros(1, 16, 16), x)
    for k in (0, 5, 2.0):
        with pytest.raises(ValueError, match="k must"):
            nearest_neighbours(x, x, k=k)
    with pytest.raises(ValueError, match="chunk_size"):
        nearest_neighbours(x, x, chunk_size=0)


def test_memorisation_ratio_of_copies_is_near_zero(digits):
    """Copies plus noise of std 0.01: noise norm 0.01 * sqrt(256) = 0.16 against a median
    leave-one-out distance of ~2.9 gives ~0.055 (measured 0.056); exact copies give 0."""
    train = digits["x_train"]
    gen = torch.Generator().manual_seed(1)
    copies = train[:300] + 0.01 * torch.randn(300, 1, 16, 16, generator=gen)
    assert memorisation_ratio(copies, train) < 0.1
    assert memorisation_ratio(train[:300], train) == 0.0


def test_memorisation_ratio_of_new_real_digits_is_near_one(digits):
    """Held-out real digits against the training split: measured 1.015 for this split and
    0.97-1.01 over five random 1,400/397 splits, so 0.85..1.15 leaves room for round-off and
    other torch versions while a model that half-copies (ratio ~0.5) would fail it."""
    ratio = memorisation_ratio(digits["x_test"], digits["x_train"])
    assert 0.85 < ratio < 1.15
    assert memorisation_ratio(digits["x_test"], digits["x_train"]) == ratio  # fixed seed


def test_memorisation_ratio_reference_subset_and_errors(digits):
    """With 300 leave-one-out queries instead of all 1,400 the ratio moved by <= 3% (measured
    over five seeds); 10% is the bound."""
    full = memorisation_ratio(digits["x_test"], digits["x_train"])
    part = memorisation_ratio(digits["x_test"], digits["x_train"], reference_queries=300)
    assert abs(part / full - 1) < 0.1
    with pytest.raises(ValueError, match="at least 2"):
        memorisation_ratio(digits["x_test"], digits["x_train"][:1])
    with pytest.raises(ValueError, match="duplicate"):
        memorisation_ratio(digits["x_test"], digits["x_train"][:5].repeat(3, 1, 1, 1))


def test_diversity_is_zero_for_copies_and_the_distance_for_two(digits):
    x = digits["x_train"]
    assert diversity(x[:1].repeat(20, 1, 1, 1)) == 0.0
    two = x[:2]
    assert math.isclose(diversity(two), float(brute_force_distances(two, two)[0, 1]), rel_tol=1e-9)
    some = x[:50]
    expected = float(brute_force_distances(some, some).sum()) / (50 * 49)
    assert math.isclose(diversity(some, chunk_size=7), expected, rel_tol=1e-9)
    with pytest.raises(ValueError, match="at least 2"):
        diversity(x[:1])


def test_picture_variants_holds_the_picture_its_mirror_and_shifts():
    x0 = torch.full((1, 1, 16, 16), -1.0)
    x0[0, 0, 5, 9] = 1.0  # one white pixel
    variants = picture_variants(x0, max_shift=2)
    assert variants.shape == (50, 1, 16, 16)  # 2 x 5 x 5
    assert torch.equal(variants[0], x0[0])
    assert torch.equal(variants[25], x0[0].flip(-1))
    white = {tuple((v[0] == 1).nonzero()[0].tolist()) for v in variants[:25]}
    assert white == {(5 + dy, 9 + dx) for dy in range(-2, 3) for dx in range(-2, 3)}


def test_picture_variants_shift_repeats_the_edge():
    ramp = torch.linspace(-1, 1, 8).expand(1, 1, 8, 8)  # brighter to the right
    variants = picture_variants(ramp, max_shift=1)
    offsets = [(0, 0)] + [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    moved_right = variants[offsets.index((0, 1))][0]
    assert torch.equal(moved_right[:, 1:], ramp[0, 0, :, :-1])
    assert torch.equal(moved_right[:, 0], ramp[0, 0, :, 0])  # the left edge, repeated


def test_a_copy_of_the_picture_has_ratio_near_zero_another_picture_not():
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand(1, 3, 16, 16, generator=gen) * 2 - 1
    variants = picture_variants(x0)
    copies = (x0 + 0.01 * torch.randn(4, 3, 16, 16, generator=gen)).clamp(-1, 1)
    others = torch.rand(4, 3, 16, 16, generator=gen) * 2 - 1
    assert memorisation_ratio(copies, variants) < 0.05
    assert memorisation_ratio(others, variants) > 0.8


@pytest.mark.parametrize("kwargs", [dict(max_shift=0), dict(max_shift=16)])
def test_picture_variants_refuses_bad_shifts(kwargs):
    with pytest.raises(ValueError, match="max_shift"):
        picture_variants(torch.zeros(1, 1, 16, 16), **kwargs)
