"""Tests of pictures/data.py: every source of load_dataset, offline, on data made here, and what
train() can eat (as_training_data): every form of data, checked whole, labels for
conditioning, and whether the data suits mirroring."""

import io
import os
import pickle
import struct

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd
from PIL import Image
from tiny import FAST, SCHEDULE, images, tiny_config, tiny_model
from torch.utils.data import DataLoader, Dataset, TensorDataset

from diffusion_helpers.pictures import data as datasets
from diffusion_helpers.pictures.data import (
    ImageDataset,
    as_training_data,
    load_dataset,
)
from diffusion_helpers.pictures.data import training_labels as check_labels
from diffusion_helpers.pictures.images import load_image
from diffusion_helpers.training import train

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py
SKLEARN_DIGITS = pytest.importorskip("sklearn.datasets").load_digits()
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def digits32():
    return load_dataset("digits", 32)


# ---------------------------------------------------------------------------------------------
# digits
# ---------------------------------------------------------------------------------------------


def test_digits_shape_range_labels_classes(digits32):
    ds = digits32
    assert ds.images.shape == (1797, 1, 32, 32) and ds.images.dtype == torch.float32
    assert ds.images.min() == -1.0 and ds.images.max() <= 1.0
    assert ds.images.max() > 0.9  # some strokes are full ink
    assert ds.labels.dtype == torch.int64
    assert torch.equal(ds.labels, torch.from_numpy(SKLEARN_DIGITS.target).long())
    assert ds.classes == [str(d) for d in range(10)]
    assert len(ds) == 1797
    image, label = ds[5]
    assert image.shape == (1, 32, 32) and int(label) == 5


def test_digits_describe(digits32):
    line = digits32.describe()
    assert "\n" not in line
    for part in ("digits", "1,797 images", "32x32", "1 channel", "10 classes"):
        assert part in line


def test_digits_white_on_black_with_border():
    # At size 12 there is no resize: the 8x8 ink values map to v / 8 - 1, inside a 2-pixel
    # border of -1 (black paper), exactly.
    ds = load_dataset("digits", 12)
    expected = torch.from_numpy(SKLEARN_DIGITS.images).float() / 8.0 - 1.0
    torch.testing.assert_close(ds.images[:, 0, 2:10, 2:10], expected, rtol=0, atol=1e-6)
    border = ds.images.clone()
    border[:, :, 2:10, 2:10] = -1.0
    assert torch.all(border == -1.0)


def test_digits_three_channels_repeat_the_grey(digits32):
    ds = load_dataset("digits", 32, 3, limit=20)
    assert ds.images.shape == (20, 3, 32, 32)
    for c in range(3):
        assert torch.equal(ds.images[:, c : c + 1], digits32.images[:20])


def named(ds):
    """The class name of each picture of a dataset, as its labels read."""
    return [ds.classes[i] for i in ds.labels.tolist()]


def test_limit_keeps_the_first_items(digits32, capsys):
    ds = load_dataset("digits", 32, limit=7)
    assert torch.equal(ds.images, digits32.images[:7])
    assert torch.equal(ds.labels, digits32.labels[:7])  # the digits start 0, 1, ..., 6
    assert ds.classes == digits32.classes[:7]  # the digits 7, 8, 9 have no picture: left out
    assert "no pictures of classes 7, 8, 9" in capsys.readouterr().out


@pytest.mark.parametrize("limit", [0, -3, 2.5, True, "5"])
def test_bad_limit(limit):
    with pytest.raises(ValueError, match="limit"):
        load_dataset("digits", 16, limit=limit)


@pytest.mark.parametrize("size", [4, 2000, 16.0, True, None])
def test_bad_size(size):
    with pytest.raises(ValueError, match="size"):
        load_dataset("digits", size)


@pytest.mark.parametrize("channels", [2, 4, 0, True])
def test_bad_channels(channels):
    with pytest.raises(ValueError, match="channels"):
        load_dataset("digits", 16, channels)


def test_works_with_a_dataloader():
    ds = load_dataset("digits", 8, limit=10)
    images, labels = next(iter(DataLoader(ds, batch_size=4)))
    assert images.shape == (4, 1, 8, 8) and labels.tolist() == [0, 1, 2, 3]


# ---------------------------------------------------------------------------------------------
# folders
# ---------------------------------------------------------------------------------------------


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def solid(mode, size, colour):
    return Image.new(mode, size, colour)


@pytest.fixture
def class_folder(tmp_path):
    """cats/: a red 30x20 PNG and a noisy 40x40 JPEG; dogs/: a transparent RGBA PNG, a
    truncated PNG, a text file; plus a loose file at the top and a hidden folder."""
    root = tmp_path / "pets"
    (root / "cats").mkdir(parents=True)
    (root / "dogs" / "puppies").mkdir(parents=True)
    (root / ".ipynb_checkpoints").mkdir()
    solid("RGB", (30, 20), (255, 0, 0)).save(root / "cats" / "a_red.png")
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    Image.fromarray(noise).save(root / "cats" / "b_noise.jpg", quality=90)
    solid("RGBA", (24, 24), (0, 0, 255, 0)).save(root / "dogs" / "puppies" / "clear.png")
    good = png_bytes(Image.fromarray(noise))
    (root / "dogs" / "broken.png").write_bytes(good[: len(good) // 2])
    (root / "dogs" / "notes.txt").write_text("a good dog\n")
    (root / "README.md").write_text("my pets\n")
    solid("RGB", (8, 8), (0, 0, 0)).save(root / ".ipynb_checkpoints" / "x.png")
    return root


def test_folder_with_class_subfolders(class_folder, capsys):
    ds = load_dataset(class_folder, 16)
    assert ds.classes == ["cats", "dogs"]
    assert ds.images.shape == (3, 3, 16, 16) and ds.images.dtype == torch.float32
    assert ds.labels.tolist() == [0, 0, 1]
    red = ds.images[0]
    assert torch.all(red[0] == 1.0) and torch.all(red[1:] == -1.0)  # 255 -> 1, 0 -> -1
    # every picture went through load_image: the JPEG matches it exactly
    jpeg = load_image(class_folder / "cats" / "b_noise.jpg", size=16, channels=3)[0]
    assert torch.equal(ds.images[1], jpeg)
    assert torch.all(ds.images[2] == 1.0)  # fully transparent -> white, as in load_image
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out  # one summary line
    line = out[0]
    assert line.startswith("Skipped 3 of 6 files")
    assert "broken.png (" in line and "corrupt" in line
    assert "notes.txt (not a picture: .txt)" in line
    assert "README.md (outside the class folders)" in line
    assert "x.png" not in line  # hidden folders are not looked at


def test_folder_summary_names_the_first_few_and_counts(tmp_path, capsys):
    flat = tmp_path / "flat"
    flat.mkdir()
    solid("L", (10, 10), 128).save(flat / "ok.png")
    for i in range(5):
        (flat / f"bad{i}.jpg").write_bytes(b"not a jpeg at all")
    ds = load_dataset(flat, 8, 1)
    assert len(ds) == 1
    line = capsys.readouterr().out.strip()
    assert "Skipped 5 of 6 files" in line and "bad0.jpg" in line and "and 2 more" in line
    assert "bad4.jpg" not in line


def test_flat_folder_is_unlabelled(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    solid("RGB", (20, 20), (255, 255, 255)).save(flat / "b.png")
    solid("L", (12, 16), 0).save(flat / "a.jpg")
    ds = load_dataset(str(flat), 8, channels=1)
    assert ds.labels is None and ds.classes == []
    assert ds.images.shape == (2, 1, 8, 8)
    assert torch.all(ds.images[0] == -1.0) and torch.all(ds.images[1] == 1.0)  # sorted by name
    assert isinstance(ds[0], torch.Tensor)
    assert "unlabelled" in ds.describe()


def test_folder_limit_counts_readable_pictures(class_folder):
    ds = load_dataset(class_folder, 8, limit=2)
    assert ds.labels.tolist() == [0, 0]


def test_empty_folder_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty.*no picture.*digits"):
        load_dataset(tmp_path / "empty", 16)


def test_folder_of_unreadable_files_error(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    with pytest.raises(ValueError, match=r"no picture.*x\.png"):
        load_dataset(folder, 16)


def test_missing_path_error(tmp_path):
    with pytest.raises(ValueError, match=r"no such folder.*cifar10"):
        load_dataset(str(tmp_path / "nowhere"), 16)


def test_unknown_name_error():
    with pytest.raises(ValueError, match=r"'mnsit'.*unknown.*Did you mean 'mnist'.*folder"):
        load_dataset("mnsit", 16)


def test_a_file_is_not_a_folder(tmp_path):
    path = tmp_path / "one.png"
    solid("RGB", (8, 8), (0, 0, 0)).save(path)
    with pytest.raises(ValueError, match="load_image"):
        load_dataset(path, 16)


def test_other_source_types_error():
    with pytest.raises(ValueError, match="from_numpy"):
        load_dataset(np.zeros((2, 1, 8, 8), np.float32), 8)


def test_memory_guard(monkeypatch):
    monkeypatch.setattr(datasets, "MAX_DATASET_BYTES", 1000)
    with pytest.raises(ValueError, match="limit="):
        load_dataset(torch.zeros(10, 1, 8, 8), 8)


# ---------------------------------------------------------------------------------------------
# torchvision layouts, faked (tests never download)
# ---------------------------------------------------------------------------------------------


def write_idx(path, array: np.ndarray) -> None:
    """The idx format of MNIST: 0, 0, type 0x08 (uint8), ndim, then each dim as a big-endian
    uint32, then the bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def fake_mnist(root, folder="MNIST", n=6):
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    write_idx(raw / "train-images-idx3-ubyte", images)
    write_idx(raw / "train-labels-idx1-ubyte", labels)
    write_idx(raw / "t10k-images-idx3-ubyte", images[:2])
    write_idx(raw / "t10k-labels-idx1-ubyte", labels[:2])
    return images, labels


@pytest.mark.parametrize(
    ("name", "folder", "kind"),
    [("mnist", "MNIST", tvd.MNIST), ("fashion_mnist", "FashionMNIST", tvd.FashionMNIST)],
)
def test_fake_mnist_layout(tmp_path, name, folder, kind):
    images, labels = fake_mnist(tmp_path, folder)
    ds = load_dataset(name, 28, root=tmp_path)
    expected = torch.from_numpy(images).float().unsqueeze(1) / 127.5 - 1.0
    torch.testing.assert_close(ds.images, expected, rtol=0, atol=1e-6)
    # the classes with pictures, in their order, labels renumbered over them and reading right
    assert ds.classes == [kind.classes[i] for i in sorted(set(labels.tolist()))]
    assert named(ds) == [kind.classes[i] for i in labels.tolist()]
    small = load_dataset(name, 16, 3, root=tmp_path, limit=4)
    assert small.images.shape == (4, 3, 16, 16) and small.labels.shape == (4,)


def test_default_root_is_inside_the_work_folder(tmp_path, monkeypatch):
    fake_mnist(tmp_path / "work" / "data")
    monkeypatch.setenv("DIFFUSION_WORKDIR", str(tmp_path / "work"))
    assert len(load_dataset("mnist", 8)) == 6


def fake_cifar10(root, per_batch=2):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(2)
    all_data, all_labels = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3 * 32 * 32), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels, "batch_label": name}, f)
        if name != "test_batch":
            all_data.append(data)
            all_labels += labels
    names = ["airplane", "automobile", "bird", "cat", "deer"]
    names += ["dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names, "num_vis": 3072}, f)
    return np.concatenate(all_data).reshape(-1, 3, 32, 32), all_labels, names


def test_fake_cifar10_layout(tmp_path):
    data, labels, names = fake_cifar10(tmp_path)
    ds = load_dataset("cifar10", 32, root=tmp_path)
    expected = torch.from_numpy(data).float() / 127.5 - 1.0  # R, G, B planes, train batches only
    assert ds.images.shape == (10, 3, 32, 32)
    torch.testing.assert_close(ds.images, expected, rtol=0, atol=1e-6)
    assert named(ds) == [names[i] for i in labels]
    assert ds.classes == [names[i] for i in sorted(set(labels))]
    assert ds.source == "cifar10"  # data.py flips the named photo datasets by this
    grey = load_dataset("cifar10", 32, 1, root=tmp_path, limit=3)  # stops after two batches
    luma = 0.299 * expected[:3, 0] + 0.587 * expected[:3, 1] + 0.114 * expected[:3, 2]
    torch.testing.assert_close(grey.images[:, 0], luma, rtol=0, atol=1e-5)
    assert named(grey) == [names[i] for i in labels[:3]]


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_offline_without_files_fails_fast(tmp_path, monkeypatch, name):
    def must_not_be_called(*args, **kwargs):
        raise AssertionError("torchvision was called although the files are missing")

    for kind in ("MNIST", "FashionMNIST", "CIFAR10"):
        monkeypatch.setattr(tvd, kind, must_not_be_called)
    with pytest.raises(ValueError, match=rf"{name}.*not in.*download=True.*folder") as info:
        load_dataset(name, 16, root=tmp_path)
    assert str(tmp_path) in str(info.value)


def test_failed_download_is_a_value_error(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(tvd, "MNIST", offline)
    with pytest.raises(ValueError, match=r"Could not download.*'mnist'.*digits"):
        load_dataset("mnist", 16, root=tmp_path, download=True)


def test_damaged_files_are_a_value_error(tmp_path):
    fake_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"\0\0\x20\x09junk")
    with pytest.raises(ValueError, match=r"could not be read.*download=True"):
        load_dataset("mnist", 16, root=tmp_path)
    fake_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=r"'cifar10'.*could not be read"):
        load_dataset("cifar10", 16, root=tmp_path)


# ---------------------------------------------------------------------------------------------
# tensors
# ---------------------------------------------------------------------------------------------


def test_tensor_without_labels():
    x = torch.rand(5, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    ds = load_dataset(x, 8)
    assert torch.equal(ds.images, x) and ds.labels is None and ds.classes == []
    up = load_dataset(torch.full((2, 1, 8, 8), 0.25), 16)
    assert up.images.shape == (2, 1, 16, 16)
    torch.testing.assert_close(up.images, torch.full((2, 1, 16, 16), 0.25))
    assert load_dataset(x.double(), 8, limit=2).images.dtype == torch.float32


@pytest.mark.parametrize("size", [8, 20, 48])
def test_resize_is_pillows_bilinear(size):
    # Independent reference: Pillow's BILINEAR on float ("F") pictures, a triangle filter
    # stretched over the source pixels when shrinking (antialiased). Tolerance: float32 rounding.
    x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1
    ds = load_dataset(x, size)
    ref = [
        np.asarray(Image.fromarray(a[0].numpy(), mode="F").resize((size, size), Image.BILINEAR))
        for a in x
    ]
    torch.testing.assert_close(ds.images[:, 0], torch.from_numpy(np.stack(ref)), rtol=0, atol=1e-5)


def test_tensor_with_labels():
    x = torch.zeros(4, 1, 8, 8)
    ds = load_dataset(x, 8, labels=[2, 0, 2, 1])
    assert ds.labels.dtype == torch.int64 and ds.labels.tolist() == [2, 0, 2, 1]
    assert ds.classes == ["0", "1", "2"]
    assert ds[0][1] == 2
    ds = load_dataset(x, 8, labels=torch.tensor([3, 3, 3, 3]), limit=2)
    assert ds.labels.tolist() == [0, 0] and ds.classes == ["3"]


def test_classes_without_pictures_are_dropped_and_the_labels_renumbered(capsys):
    """Labels with gaps would give a conditional model classes it never saw: the classes
    left are numbered densely and keep their names, and one line says what was dropped."""
    ds = load_dataset(torch.zeros(4, 1, 8, 8), 8, labels=[5, 0, 2, 5])
    assert ds.classes == ["0", "2", "5"] and ds.labels.tolist() == [2, 0, 1, 2]
    assert named(ds) == ["5", "0", "2", "5"]
    out = capsys.readouterr().out.strip()
    assert out == (
        "the tensor: no pictures of classes 1, 3, 4, so they are left out: labels 0..2 are now "
        "0, 2, 5."
    )
    assert load_dataset(torch.zeros(2, 1, 8, 8), 8, labels=[1, 0]).classes == ["0", "1"]
    assert capsys.readouterr().out == ""  # nothing dropped, nothing said


def test_an_unreadable_class_folder_is_no_class(tmp_path, capsys):
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(tmp_path / "cat" / "a.png")
    Image.new("RGB", (8, 8), (20, 30, 200)).save(tmp_path / "dog" / "b.png")
    (tmp_path / "dog" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    ds = load_dataset(tmp_path, 8)
    assert ds.classes == ["cat"] and ds.labels.tolist() == [0]
    out = capsys.readouterr().out
    assert "Skipped 1 of 2 files" in out and "no pictures of class dog, so it is left out" in out


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        ([0, 1, 2], "one entry per picture"),
        (torch.zeros(4, 1, dtype=torch.long), "one entry per picture"),
        ([0.5, 1, 2, 3], "whole numbers"),
        ([0, -1, 2, 3], ">= 0"),
    ],
)
def test_tensor_bad_labels(labels, match):
    with pytest.raises(ValueError, match=match):
        load_dataset(torch.zeros(4, 1, 8, 8), 8, labels=labels)


def test_labels_only_for_tensors():
    with pytest.raises(ValueError, match="labels= is only for a tensor"):
        load_dataset("digits", 8, labels=[0])


def test_non_finite_tensor_names_the_item():
    x = torch.zeros(4, 1, 8, 8)
    x[2, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match=r"item 2 has NaN or infinite"):
        load_dataset(x, 8)
    x[2, 0, 3, 3] = float("inf")
    with pytest.raises(ValueError, match=r"item 2 has NaN or infinite"):
        load_dataset(x, 16)  # checked before the resize could clamp it away


def test_out_of_range_tensor_names_the_item():
    x = torch.zeros(3, 3, 8, 8)
    x[1] = 200.0
    with pytest.raises(ValueError, match=r"item 1 .*outside \[-1, 1\].*127\.5"):
        load_dataset(x, 8)


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.zeros(1, 8, 8), "unsqueeze"),
        (torch.zeros(2, 2, 8, 8), "C = 1 or 3"),
        (torch.zeros(2, 1, 8, 6), "square"),
        (torch.zeros(2, 1, 8, 8, dtype=torch.uint8), "127.5"),
        (torch.zeros(0, 1, 8, 8), "no images"),
    ],
)
def test_bad_tensor_shapes(x, match):
    with pytest.raises(ValueError, match=match):
        load_dataset(x, 8)


def test_tensor_channel_conversion():
    rgb = torch.tensor([1.0, -1.0, 0.0]).view(1, 3, 1, 1).expand(2, 3, 8, 8)
    grey = load_dataset(rgb, 8, 1)
    torch.testing.assert_close(grey.images, torch.full((2, 1, 8, 8), 0.299 - 0.587))
    assert load_dataset(grey.images, 8, 3).images.shape == (2, 3, 8, 8)


def test_dataset_checks_itself():
    with pytest.raises(ValueError, match="item 0"):
        ImageDataset(torch.full((1, 1, 4, 4), 1.5))
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.1"):
        ImageDataset(torch.zeros(2, 1, 4, 4), torch.tensor([0, 2]), ["a", "b"])


def test_a_skipped_file_whose_name_is_not_utf8_is_named_printably(tmp_path, capsys):
    """Printing the skipped file's name used to fail: "'utf-8' codec can't encode"."""
    Image.new("RGB", (8, 8), (200, 30, 30)).save(tmp_path / "good.png")
    (tmp_path / os.fsdecode(b"\xff.png")).write_bytes(b"not a picture")
    ds = load_dataset(tmp_path, 8)
    assert len(ds) == 1
    out = capsys.readouterr().out
    assert "Skipped 1 of 2 files" in out and "\\xff.png" in out and out.encode("utf-8")


# ---------------------------------------------------------------------------------------------
# as_training_data: what train() can eat
# ---------------------------------------------------------------------------------------------


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
