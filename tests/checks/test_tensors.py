"""Checks of tensors (checks/tensors.py): one rule for pictures in model space, [-1, 1] up to
RANGE_SLACK, any float type, met everywhere a picture comes in."""

import pytest
import torch
from tiny import tiny_config

from diffusion_helpers.checks.tensors import RANGE_SLACK, check_range
from diffusion_helpers.pictures.data import ImageDataset, as_training_data, load_dataset

EVERY_PLACE = {
    "check_range": lambda x: check_range(x, "images"),
    "ImageDataset": lambda x: ImageDataset(x),
    "load_dataset": lambda x: load_dataset(x, 16),
    "as_training_data": lambda x: as_training_data(x, tiny_config(), torch.device("cpu")),
}


@pytest.mark.parametrize("check", EVERY_PLACE.values(), ids=EVERY_PLACE.keys())
def test_one_rule_for_pictures_wherever_they_come_in(check):
    """The data range was checked in three places with two rules (a 1e-3 slack against none,
    float32 only against any float); now one."""
    x = torch.zeros(3, 3, 16, 16)
    x[1] = 1 + RANGE_SLACK / 2  # rounding of a [0, 1] -> [-1, 1] conversion: accepted
    check(x)
    check(x.double())  # any float type
    x[2] = 1 + 2 * RANGE_SLACK
    with pytest.raises(ValueError, match=r"item 2 spans \[1, 1\], outside \[-1, 1\]"):
        check(x)
    x[2, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="item 2 has NaN or infinite values"):
        check(x)
    with pytest.raises(ValueError, match="floating-point"):
        check(torch.zeros(3, 3, 16, 16, dtype=torch.uint8))


def test_the_first_item_is_counted_from_first_index():
    x = torch.zeros(2, 1, 4, 4)
    x[1] = 255.0
    with pytest.raises(ValueError, match=r"batch: item 11 spans \[255, 255\].*x / 127\.5 - 1"):
        check_range(x, "batch", first_index=10)
    check_range(torch.zeros(0, 1, 4, 4))  # nothing to check
