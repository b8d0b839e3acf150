"""What train() can eat (pictures/training_data.py): every form of data, checked whole, labels
for conditioning, and whether the data suits mirroring."""

import pytest
import torch
from PIL import Image
from tiny import FAST, SCHEDULE, images, tiny_config, tiny_model
from torch.utils.data import DataLoader, Dataset, TensorDataset

from diffusion_helpers.pictures.dataset import ImageDataset
from diffusion_helpers.pictures.datasets import load_dataset
from diffusion_helpers.pictures.training_data import as_training_data, check_labels
from diffusion_helpers.training import train

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py
CPU = torch.device("cpu")


class PairDataset(Dataset):
    """Items are (image, label), as torchvision datasets give them."""

    def __init__(self, x, labels=None):
        self.x, self.labels = x, labels

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], (self.labels[i] if self.labels is not None else i % 2)


@pytest.mark.parametrize(
    "make",
    [
        lambda x: x,
        lambda x: TensorDataset(x),
        lambda x: PairDataset(x),
        lambda x: DataLoader(TensorDataset(x), batch_size=2, shuffle=True),
    ],
    ids=["tensor", "tensor-dataset", "pair-dataset", "dataloader"],
)
def test_every_form_gives_the_same_batches(make):
    x = images(3)
    source = as_training_data(make(x), tiny_config(), CPU)
    batch, labels = source.batch(torch.tensor([2, 0, 2]))
    assert source.size == 3 and labels is None
    assert torch.equal(batch, x[[2, 0, 2]])


def test_the_data_says_whether_it_is_mirrored(tmp_path, monkeypatch):
    """One picture and tensors are not mirrored; a dataset says so itself (photos yes, digits
    no), whatever folders the working directory holds."""
    assert not as_training_data(images(1)[0], tiny_config(), CPU).flip
    assert not as_training_data(images(3), tiny_config(), CPU).flip
    picture = tmp_path / "one.png"
    Image.fromarray(((images(1)[0].permute(1, 2, 0) + 1) * 127.5).byte().numpy()).save(picture)
    source = as_training_data(picture, tiny_config(), CPU)
    assert not source.flip and source.size == 1
    photos = ImageDataset(images(2), flip=True, source="photos")
    assert as_training_data(photos, tiny_config(), CPU).flip
    (tmp_path / "digits").mkdir()  # a folder named like the dataset once decided the flips
    monkeypatch.chdir(tmp_path)
    digits = load_dataset("digits", 16, 3, limit=4)
    assert not digits.flip and not as_training_data(digits, tiny_config(), CPU).flip


def test_folder_of_pictures_skips_unreadable_files(tmp_path, capsys):
    for i in range(3):
        pixels = (images(1, size=24, seed=i)[0].permute(1, 2, 0) + 1) * 127.5
        Image.fromarray(pixels.round().byte().numpy()).save(tmp_path / f"img{i}.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    result = train(tiny_model(), tmp_path, SCHEDULE, steps=2, batch_size=2, **FAST)
    assert len(result.losses) == 2
    assert result.config.flip is True  # photos in a folder are flipped by default
    assert "broken.png" in capsys.readouterr().out  # named in the one summary line


@pytest.mark.parametrize(
    "data, words",
    [
        (images(1) * 3, r"item 0 spans .*x \* 2 - 1"),
        (torch.cat([images(2), images(1) * 3]), r"item 2 spans"),
        (torch.zeros(1, 1, 16, 16), "built for 3x16x16"),
        (torch.zeros(2, 3, 32, 32), r"item 0 is 3x32x32.*size=16"),
        (torch.zeros(1, 3, 16, 16, dtype=torch.uint8), "floats in"),
        (42, "data must be"),
    ],
    ids=["range", "range-item-2", "channels", "size", "uint8", "number"],
)
def test_bad_data_is_refused_before_training(data, words):
    with pytest.raises(ValueError, match=words):
        train(tiny_model(), data, SCHEDULE, steps=1, **FAST)


def test_non_finite_data_names_the_item():
    x = images(4)
    x[3, 0, 5, 5] = float("nan")
    with pytest.raises(ValueError, match="item 3 .*NaN"):
        train(tiny_model(), x, SCHEDULE, steps=1, **FAST)


def test_a_dataset_is_checked_item_by_item():
    """Items built on the fly are checked as they are read: a 32 px item among 16 px ones names
    its index instead of a raw RuntimeError from torch.stack. The first FINGERPRINT_ITEMS
    items (evenly spaced) are read before training; later ones as batches are drawn."""
    mixed = [images(1)[0], images(1)[0], torch.zeros(3, 32, 32)]
    with pytest.raises(ValueError, match="item 2 is 3x32x32"):
        as_training_data(mixed, tiny_config(), CPU)  # before any training step
    many = [images(1)[0]] * 600 + [torch.zeros(3, 32, 32)]  # item 600 is not among those read
    source = as_training_data(many, tiny_config(), CPU)
    source.batch(torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="item 600 is 3x32x32"):
        source.batch(torch.tensor([0, 600]))
    with pytest.raises(ValueError, match="item 0 should be an image tensor"):
        as_training_data([torch.zeros(16, 16)], tiny_config(), CPU)
    with pytest.raises(ValueError, match="empty"):
        as_training_data([], tiny_config(), CPU)


def test_labels_come_from_the_data_or_the_argument():
    model = tiny_model(num_classes=3)
    x = images(4)
    source = as_training_data(x, model.config, CPU, labels=[0, 1, 2, 1])
    _, y = source.batch(torch.tensor([3, 2]))
    assert y.tolist() == [1, 2] and y.dtype == torch.long
    pairs = PairDataset(x, labels=[2, 2, 0, 1])
    _, y = as_training_data(pairs, model.config, CPU).batch(torch.tensor([0, 3]))
    assert y.tolist() == [2, 1]


@pytest.mark.parametrize(
    "num_classes, labels, words",
    [
        (3, None, "conditional .*no labels"),
        (None, [0, 1, 0, 1], "model is unconditional"),
        (3, [0, 1, 2], r"one entry per image \(4\)"),
        (3, [0, 1, 2, 3], r"0\.\.2"),
        (3, [0, -1, 2, 1], r"0\.\.2"),
        (3, [0.5, 1, 2, 1], "whole numbers"),
    ],
)
def test_bad_labels_name_the_argument(num_classes, labels, words):
    with pytest.raises(ValueError, match=words):
        check_labels(labels, 4, tiny_config(num_classes=num_classes))
