"""Checks of plain values (checks/values.py): the one rule for class labels, met everywhere a
label comes in, and config values of the wrong type named with their type."""

import dataclasses

import numpy as np
import pytest
import torch
from tiny import images, tiny_config, tiny_model

from diffusion_helpers.checks.values import class_indices, number, whole_number
from diffusion_helpers.guidance import resolve_labels
from diffusion_helpers.pictures.data import ImageDataset, as_training_data, load_dataset

CPU = torch.device("cpu")
K = 3  # classes of the models below


def by_class_indices(labels):
    return class_indices(labels, 2, K)


def by_the_unet(labels):
    model = tiny_model(num_classes=K)
    return model.check_labels(
        labels if isinstance(labels, torch.Tensor) else torch.tensor(labels), 2
    )


def by_sampling(labels):
    return resolve_labels(tiny_model(num_classes=K), labels, None, 2)[0]


def by_training(labels):
    data = as_training_data(images(2), tiny_config(num_classes=K), CPU, labels)
    return data.batch(torch.tensor([0, 1]))[1]


def named(dataset):
    """The labels of a dataset as the class names say them (a dataset renumbers its classes)."""
    assert dataset.labels.dtype == torch.long
    return torch.tensor([int(dataset.classes[i]) for i in dataset.labels])


def by_a_dataset(labels):
    return named(ImageDataset(torch.zeros(2, 1, 8, 8), torch.as_tensor(labels), ["0", "1", "2"]))


def by_load_dataset(labels):
    return named(load_dataset(torch.zeros(2, 1, 8, 8), 8, labels=labels))


EVERY_PLACE = [by_class_indices, by_the_unet, by_sampling, by_training, by_a_dataset]
EVERY_PLACE += [by_load_dataset]


@pytest.mark.parametrize("check", EVERY_PLACE, ids=lambda f: f.__name__)
def test_one_rule_for_labels_wherever_they_come_in(check):
    """Whole floats such as 3.0 were accepted by some of the six places and refused by the
    others; now every place refuses floats, whole or not, and takes the same integers."""
    assert check([2, 1]).tolist() == [2, 1]
    assert check(torch.tensor([2, 1], dtype=torch.int32)).dtype == torch.long
    assert check(np.array([0, 2])).tolist() == [0, 2]
    for floats in ([2.0, 1.0], torch.tensor([2.0, 1.0]), np.array([2.0, 1.0]), [0.5, 1]):
        with pytest.raises(ValueError, match=r"whole numbers.*floats are refused, 3\.0 too"):
            check(floats)
    for bad, words in (
        ([0, 1, 2], "one entry per"),
        ([0, -1], r"0\.\.2|>= 0"),
        (torch.tensor([True, False]), "whole numbers"),
    ):
        with pytest.raises(ValueError, match=words):
            check(bad)


def test_labels_name_their_range_and_the_no_class_label():
    assert class_indices(1, 3, K).tolist() == [1, 1, 1]  # one int for all
    assert class_indices([3, 0], 2, K, null_class=True).tolist() == [3, 0]
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.2, got values from 0 to 3"):
        class_indices([3, 0], 2, K)
    with pytest.raises(ValueError, match=r"must lie in 0\.\.2 for 3 classes, and 3 means no"):
        class_indices([4, 0], 2, K, null_class=True)
    with pytest.raises(ValueError, match=r">= 0"):
        class_indices([-1, 0], 2)  # no number of classes: only >= 0
    assert class_indices([7, 0], 2).tolist() == [7, 0]


def test_a_config_value_of_the_wrong_type_is_named_with_its_type():
    """image_size "16" in a stored config gave "not all arguments converted during string
    formatting"; a value of the wrong type says its type and what to write."""
    config = dataclasses.replace(tiny_config(), image_size="16")
    with pytest.raises(ValueError) as err:
        config.check()
    message = str(err.value)
    assert "image_size must be a whole number" in message
    assert "the text '16' (a str): write the number without quotes" in message
    with pytest.raises(ValueError, match=r"got 16\.0 \(a float\)"):
        whole_number(16.0, "image_size")
    with pytest.raises(ValueError, match=r"dropout must be a number, got the text '0\.1'"):
        number("0.1", "dropout")
    with pytest.raises(ValueError, match=r"got True \(a bool\)"):
        whole_number(True, "steps")
    with pytest.raises(ValueError, match=r"from 1 to 8, got 9\.$"):
        whole_number(9, "levels", 1, 8)  # the right type, out of range: the value alone
