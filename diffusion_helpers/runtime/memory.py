"""Memory: what a call will need, estimated before it allocates anything, so that a batch too
large for the machine is one line with a size that fits, not a frozen machine or a crash.

The estimate: the pictures themselves, plus the net's activations per picture, measured once per
model (:func:`activation_bytes`), times the number of pictures. It is compared with what is
free now (:func:`free_memory`): Linux's MemAvailable for the CPU, the driver's count for a GPU;
elsewhere (macOS, Windows, Apple's GPU) nothing is known and nothing is checked.
"""

from __future__ import annotations

import copy
import weakref
from typing import Any, Optional

import torch

# Copies of the pictures a reverse step keeps at once: x_t, eps, the predicted x_0, the fresh
# noise z and x_{t-1} (and the CPU copy of the result).
IMAGE_COPIES = 6
# Training keeps every activation for the backward pass and makes a gradient for each: about 3
# times the forward pass's outputs, a cautious rule of thumb. Measured on the tiny net at 64 px
# on a CPU (peak resident memory, batch 16 against batch 1): a training step took 36 MB per
# picture where this says 90, and inference 8 MB where the hooks' sum says 30: the estimates
# refuse only calls well beyond what fits.
BACKWARD_FACTOR = 3
# Beside the weights themselves, training holds a gradient and Adam's two moments per weight.
OPTIMIZER_COPIES = 3

_MEASURED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {shape: bytes}


def activation_bytes(model: Any, shape: tuple[int, int, int], device: torch.device) -> int:
    """Bytes the net's layers output for one picture of ``shape`` (C, H, W): the sum of the
    outputs of every submodule, collected by forward hooks during one forward pass at a batch
    of 1, measured once per model and shape. Containers count their last layer's output again,
    and the functional steps between modules (attention weights, concatenated skips) are not
    modules: a rough upper bound on what inference keeps at once. 0 for a plain function (no
    modules to hook).

    The pass runs on a copy of the model without its hooks (in eval mode, without gradients,
    torch's random state put back after), so the model itself sees no extra call: its hooks,
    counters and train/eval mode stay as they were. A model that cannot be copied is measured
    itself."""
    if not isinstance(model, torch.nn.Module):
        return 0
    known = _MEASURED.setdefault(model, {})
    if shape not in known:
        net = _hookless_copy(model)
        total = [0]

        def add(module: torch.nn.Module, inputs: Any, output: Any) -> None:
            outputs = output if isinstance(output, (tuple, list)) else (output,)
            total[0] += sum(o.numel() * o.element_size() for o in outputs if torch.is_tensor(o))

        hooks = [m.register_forward_hook(add) for m in net.modules() if m is not net]
        was_training = net.training
        cuda = [device] if device.type == "cuda" else []
        try:
            net.eval()
            with torch.no_grad(), torch.random.fork_rng(devices=cuda):
                net(*example_inputs(net, shape, device))
        finally:
            net.train(was_training)
            for hook in hooks:
                hook.remove()
        known[shape] = total[0]
    return known[shape]


def _hookless_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy of ``model`` without the caller's forward hooks (a deep copy keeps them,
    and they would see the measuring pass), or the model itself when it cannot be copied."""
    try:
        net = copy.deepcopy(model)
    except (TypeError, RuntimeError, AttributeError, copy.Error):  # a lock, a file, ...
        return model
    for module in net.modules():  # torch has no public call that removes hooks without handles
        module._forward_hooks.clear()
        module._forward_pre_hooks.clear()
    return net


def example_inputs(model: Any, shape: tuple[int, int, int], device: torch.device) -> tuple:
    """One picture of zeros, t = 0 and, for a conditional net, the "no class" label: the
    arguments of eps_theta(x_t, t[, labels]) at a batch of 1."""
    x = torch.zeros(1, *shape, device=device)
    t = torch.zeros(1, dtype=torch.long, device=device)
    classes = getattr(getattr(model, "config", None), "num_classes", None)
    return (x, t) if classes is None else (x, t, torch.full_like(t, classes))


def free_memory(device: torch.device) -> Optional[int]:
    """Bytes a new allocation can take now: on a GPU the driver's free memory plus what torch
    holds cached but unused; on a Linux CPU ``MemAvailable`` from /proc/meminfo; else None."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # given in kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_fits(
    what: str, count_name: str, count: int, per_item: int, fixed: int, device: torch.device
) -> None:
    """``ValueError`` (one line: the estimate, what is free, a ``count_name`` that fits) when
    ``fixed + count * per_item`` bytes are more than :func:`free_memory` says is free."""
    free = free_memory(device)
    need = fixed + count * per_item
    if free is None or need <= free:
        return
    fit = (free - fixed) // max(per_item, 1)
    advice = (
        f"use {count_name}={fit} or less"
        if fit >= 1
        else f"even {count_name}=1 does not fit: free some memory, or use a smaller net or size"
    )
    raise ValueError(
        f"{what} with {count_name}={count} needs about {gigabytes(need)} of memory "
        f"({gigabytes(per_item)} per picture), but {gigabytes(free)} is free on the "
        f"{device.type.upper()}: {advice}."
    )


def check_sampling_memory(
    model: Any, shape: tuple[int, int, int], n: int, device: torch.device, guided: bool
) -> None:
    """Refuse, before any work, sampling ``n`` pictures of ``shape`` (C, H, W) with ``model``
    (on ``device``) when it cannot fit: per picture its copies (:data:`IMAGE_COPIES`) and the
    net's activations, twice with classifier-free guidance (one pass of 2n pictures)."""
    picture = shape[0] * shape[1] * shape[2] * 4  # float32
    per_image = (IMAGE_COPIES * picture + activation_bytes(model, shape, device)) * (
        2 if guided else 1
    )
    check_fits("sampling", "n", n, per_image, 0, device)


def check_training_memory(model: torch.nn.Module, batch_size: int, device: torch.device) -> None:
    """Refuse, before any work, training ``model`` (on ``device``) with batches of
    ``batch_size`` when it cannot fit: per picture :data:`BACKWARD_FACTOR` times the net's
    activations, and once the gradients and Adam's moments (:data:`OPTIMIZER_COPIES` times the
    weights). The shape comes from ``model.config`` (``image_channels``, ``image_size``)."""
    config = model.config
    shape = (config.image_channels, config.image_size, config.image_size)
    picture = shape[0] * shape[1] * shape[2] * 4
    per_image = BACKWARD_FACTOR * activation_bytes(model, shape, device) + IMAGE_COPIES * picture
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    check_fits("training", "batch_size", batch_size, per_image, OPTIMIZER_COPIES * weights, device)


def gigabytes(n_bytes: float) -> str:
    """A size for a message: "12.3 GB", or "45 MB" under a gigabyte."""
    return f"{n_bytes / 1e9:.1f} GB" if n_bytes >= 1e9 else f"{n_bytes / 1e6:.0f} MB"
