"""Shared test fixtures."""

import pytest
import torch
import torch.nn.functional as F


@pytest.fixture(scope="module")
def one_thread():
    """Run a module on one intra-op thread, then restore the previous count. The nets and
    images in the U-Net and training tests are tiny: a second thread only adds waiting, and on
    a shared, busy machine it made steps 6x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def digits():
    """sklearn's 1,797 digits at 16 px in [-1, 1] (pixel values 0..16 -> -1..1), split once
    with a fixed seed into 1,400 training and 397 held-out images."""
    load_digits = pytest.importorskip("sklearn.datasets").load_digits
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32)[:, None] / 8.0 - 1.0  # [N, 1, 8, 8]
    x = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)
    y = torch.tensor(data.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, test = order[:1400], order[1400:]
    return {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}
