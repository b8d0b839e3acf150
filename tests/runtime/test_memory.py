"""Memory estimates (runtime/memory.py): a call too large for the machine is refused up front,
with a size that fits; the measurement leaves the model as it was."""

import pytest
import torch
from tiny import SCHEDULE, tiny_model

from diffusion_helpers.runtime import memory
from diffusion_helpers.runtime.memory import (
    activation_bytes,
    check_sampling_memory,
    check_training_memory,
    free_memory,
)
from diffusion_helpers.sampling import sample

CPU = torch.device("cpu")
GB = 10**9


class Counting(torch.nn.Module):
    """A conv net that counts its calls (the sampler's bookkeeping must not see ours)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.calls = 0

    def forward(self, x, t):
        self.calls += 1
        return self.conv(x)


def test_activations_are_estimated_from_the_shapes_without_running_the_model():
    """The estimate walks the config: the model is never called (nothing is allocated), and
    the attention matrices make it grow faster than the pixels."""
    net, rng = tiny_model(), torch.get_rng_state()
    calls = []
    handle = net.register_forward_hook(lambda *a: calls.append(1))
    small, large = activation_bytes(net, (3, 16, 16)), activation_bytes(net, (3, 64, 64))
    handle.remove()
    assert calls == [] and torch.equal(torch.get_rng_state(), rng)
    assert small > 3 * 16 * 16 * 4 and large > 16 * small  # side^4 attention beats side^2
    assert activation_bytes(Counting(), (3, 8, 8)) == 0  # no U-Net config: nothing to walk
    assert activation_bytes(lambda x, t: x, (3, 8, 8)) == 0


def test_the_free_memory_honours_ulimit_and_the_container(monkeypatch):
    """The least of what the machine, the container (cgroup memory.max) and ``ulimit -v``
    leave is what is free."""
    monkeypatch.setattr(memory, "_meminfo", lambda path, key: 20 * GB if "meminfo" in path
                        else 3 * GB)  # fmt: skip
    monkeypatch.setattr(memory, "_read_int", lambda path: None)
    monkeypatch.setattr(memory.resource, "getrlimit", lambda which: (4 * GB, 4 * GB))
    assert free_memory(CPU) == 1 * GB  # ulimit -v 4 GB, 3 GB mapped already
    values = {"/sys/fs/cgroup/memory.max": 2 * GB, "/sys/fs/cgroup/memory.current": int(1.5 * GB)}
    monkeypatch.setattr(memory, "_read_int", values.get)
    assert free_memory(CPU) == GB // 2  # the container's limit is tighter still
    inf = memory.resource.RLIM_INFINITY
    monkeypatch.setattr(memory.resource, "getrlimit", lambda which: (inf, inf))
    monkeypatch.setattr(memory, "_read_int", lambda path: None)
    assert free_memory(CPU) == 20 * GB


def test_free_memory_is_known_on_a_linux_cpu():
    free = free_memory(CPU)
    assert free is None or free > 0
    assert free_memory(torch.device("meta")) is None  # neither CPU nor CUDA: not known


def test_sampling_too_many_pictures_is_one_line_with_an_n_that_fits(monkeypatch):
    model = tiny_model()  # 16 px
    monkeypatch.setattr(memory, "free_memory", lambda device: 2 * GB)
    per_image = 6 * 3 * 16 * 16 * 4 + activation_bytes(model, (3, 16, 16))
    with pytest.raises(ValueError) as info:
        sample(model, SCHEDULE, n=10**7, method="ddim", steps=2, progress=False)
    message = str(info.value)
    assert len(message.splitlines()) == 1 and "sampling with n=10000000 needs about" in message
    assert f"2.0 GB is free on the CPU: use n={2 * GB // per_image} or less" in message
    monkeypatch.setattr(memory, "free_memory", lambda device: 5 * per_image)
    check_sampling_memory(model, (3, 16, 16), 4, CPU, guided=False)  # 4 of the 5 that fit
    with pytest.raises(ValueError, match="use n=2 or less"):  # guidance: a pass of 2n pictures
        check_sampling_memory(model, (3, 16, 16), 4, CPU, guided=True)


def test_unknown_free_memory_checks_nothing(monkeypatch):
    monkeypatch.setattr(memory, "free_memory", lambda device: None)
    check_sampling_memory(tiny_model(), (3, 16, 16), 10**9, CPU, guided=True)


def test_a_training_batch_too_large_is_one_line_with_a_batch_that_fits(monkeypatch):
    model = tiny_model()
    monkeypatch.setattr(memory, "free_memory", lambda device: 1 * GB)
    check_training_memory(model, 16, CPU)
    with pytest.raises(ValueError) as info:
        check_training_memory(model, 10**6, CPU)
    message = str(info.value)
    assert "training with batch_size=1000000 needs about" in message
    assert "1.0 GB is free on the CPU: use batch_size=" in message
    fit = int(message.split("batch_size=")[-1].split(" ")[0])
    check_training_memory(model, fit, CPU)  # what it names does fit
    with pytest.raises(ValueError, match=f"use batch_size={fit} or less"):
        check_training_memory(model, fit + 1, CPU)
    monkeypatch.setattr(memory, "free_memory", lambda device: 1000)
    with pytest.raises(ValueError, match="even batch_size=1 does not fit"):
        check_training_memory(model, 1, CPU)
