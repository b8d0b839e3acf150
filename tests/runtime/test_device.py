"""Where the code runs: quick mode and Colab (runtime/environment.py), the device and its
precision (runtime/device.py)."""

import sys

import pytest
import torch

from diffusion_helpers.runtime.device import (
    cpu_supports_bf16,
    describe_device,
    pick_device,
    pick_precision,
)
from diffusion_helpers.runtime.environment import in_colab, quick_mode

CPU = torch.device("cpu")


@pytest.mark.parametrize("value, quick", [("1", True), ("yes", True), ("0", False), ("", False)])
def test_quick_mode_reads_the_environment(monkeypatch, value, quick):
    monkeypatch.setenv("DIFFUSION_QUICK", value)
    assert quick_mode() is quick


def test_colab_is_detected_by_its_release_tag(monkeypatch):
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert not in_colab()
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20261101")
    assert in_colab()


def test_pick_device_names_bad_devices():
    assert pick_device("cpu") == CPU
    with pytest.raises(ValueError, match="not a device name"):
        pick_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            pick_device("cuda")
        assert "CPU" in describe_device("cpu") and "GPU" in describe_device("cpu")


def test_precision_choices():
    assert pick_precision("auto", CPU) == ("bf16" if cpu_supports_bf16() else "fp32")
    assert pick_precision("fp32", CPU) == "fp32"
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        pick_precision("fp16", CPU)
    with pytest.raises(ValueError, match="precision must be one of"):
        pick_precision("double", CPU)
