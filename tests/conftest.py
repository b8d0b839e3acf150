"""Shared test fixtures."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Run a module on one intra-op thread, then restore the previous count. The nets and
    images in the U-Net and training tests are tiny: a second thread only adds waiting, and on
    a shared, busy machine it made steps 6x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
