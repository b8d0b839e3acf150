"""Memory: what a call will need, estimated from the shapes before anything is allocated, so
that a batch too large for the machine is one line with a size that fits, not a frozen machine
or a crash.

The estimate (:func:`activation_bytes`) walks the U-Net's layers as :class:`..unet.UNet` builds
them and adds up what each keeps per picture, the attention matrices (side^4) included; nothing
runs. What is free (:func:`free_memory`) is the least of what the machine has available
(Linux's MemAvailable; the driver's count on a GPU), what the container may still use (its
cgroup's ``memory.max``) and what the process may still map (``ulimit -v``). An allocation
that fails anyway is one line too (:func:`out_of_memory`).
"""

from __future__ import annotations

try:
    import resource
except ImportError:  # Windows: no ulimit
    resource = None
from pathlib import Path
from typing import Any, Optional

import torch

# Copies of the pictures a reverse step keeps at once: x_t, eps, the predicted x_0, the fresh
# noise z and x_{t-1} (and the CPU copy of the result).
IMAGE_COPIES = 6
# Training keeps every activation for the backward pass and makes a gradient for each: about 3
# times the forward pass's outputs, a cautious rule of thumb.
BACKWARD_FACTOR = 3
# Beside the weights themselves, training holds a gradient and Adam's two moments per weight.
OPTIMIZER_COPIES = 3


def activation_bytes(model: Any, shape: tuple[int, int, int]) -> int:
    """Bytes (float32) the U-Net's layers output for one picture of ``shape`` (C, H, W): per
    residual block its norms, activations and convolutions, (3 c_in + 6 c_out) side^2; per
    attention layer 6 C side^2 and its two side^2 x side^2 weight matrices; the skips, the
    concatenations, the up- and downsampling. An upper bound on what inference keeps at once;
    0 for a model without a U-Net config."""
    cfg = getattr(model, "config", None)
    if cfg is None or not hasattr(cfg, "channel_mults"):
        return 0
    channels, height, _ = shape
    side = height // cfg.patch_size
    widths = [cfg.base_channels * m for m in cfg.channel_mults]
    attention = cfg.attention_levels()

    def block(c_in: int, c_out: int, s: int) -> int:
        return (3 * c_in + 6 * c_out) * s * s

    def attend(c: int, s: int) -> int:
        return 6 * c * s * s + 2 * (s * s) ** 2

    floats, ch, s, skips = 2 * channels * height * height + widths[0] * side**2, widths[0], side, []
    skips.append(ch)
    for level, width in enumerate(widths):
        for _ in range(cfg.num_res_blocks):
            floats += block(ch, width, s) + (attend(width, s) if level in attention else 0)
            ch = width
            skips.append(ch)
        if level < len(widths) - 1:
            s //= 2
            floats += ch * s * s
            skips.append(ch)
    deep = len(widths) - 1
    floats += 2 * block(ch, ch, s) + (attend(ch, s) if deep in attention else 0)
    for level in reversed(range(len(widths))):
        for _ in range(cfg.num_res_blocks + 1):
            c_in = ch + skips.pop()
            floats += c_in * s * s + block(c_in, widths[level], s)
            floats += attend(widths[level], s) if level in attention else 0
            ch = widths[level]
        if level > 0:
            s *= 2
            floats += 2 * ch * s * s
    return 4 * (floats + 2 * ch * s * s)


def free_memory(device: torch.device) -> Optional[int]:
    """Bytes a new allocation can take now, or None where nothing is known (macOS, Windows,
    Apple's GPU): on a GPU the driver's free memory plus what torch holds cached but unused; on
    a Linux CPU the least of MemAvailable, the cgroup's limit less its use, and ``ulimit -v``
    less the process's mapped size."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if device.type != "cpu":
        return None
    known = [
        n
        for n in (_meminfo("/proc/meminfo", "MemAvailable:"), _cgroup_room(), _address_room())
        if n is not None
    ]
    return min(known) if known else None


def _meminfo(path: str, key: str) -> Optional[int]:
    """A ``key: N kB`` line of a /proc file, in bytes."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _read_int(path: str) -> Optional[int]:
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None  # "max" (no limit), or no such file


def _cgroup_room() -> Optional[int]:
    """What this container may still use: cgroup v2 ``memory.max - memory.current`` (v1's
    ``limit_in_bytes - usage_in_bytes``); None without a limit."""
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                          "/sys/fs/cgroup/memory/memory.usage_in_bytes")):  # fmt: skip
        top, used = _read_int(limit), _read_int(usage)
        if top is not None and used is not None and top < 2**60:
            return max(0, top - used)
    return None


def _address_room() -> Optional[int]:
    """What ``ulimit -v`` (RLIMIT_AS) still lets the process map; None without a limit."""
    if resource is None:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    mapped = _meminfo("/proc/self/status", "VmSize:")
    return max(0, soft - mapped) if mapped is not None else None


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
    when it cannot fit: per picture its copies (:data:`IMAGE_COPIES`) and the net's
    activations, twice with classifier-free guidance (one pass of 2n pictures)."""
    picture = shape[0] * shape[1] * shape[2] * 4  # float32
    per_image = (IMAGE_COPIES * picture + activation_bytes(model, shape)) * (2 if guided else 1)
    check_fits("sampling", "n", n, per_image, 0, device)


def check_training_memory(model: torch.nn.Module, batch_size: int, device: torch.device) -> None:
    """Refuse, before any work, training ``model`` with batches of ``batch_size`` when it cannot
    fit: per picture :data:`BACKWARD_FACTOR` times the net's activations, and once the weights
    with their gradients and Adam's moments (:data:`OPTIMIZER_COPIES`)."""
    cfg = model.config
    shape = (cfg.image_channels, cfg.image_size, cfg.image_size)
    picture = shape[0] * shape[1] * shape[2] * 4
    per_image = BACKWARD_FACTOR * activation_bytes(model, shape) + IMAGE_COPIES * picture
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    check_fits("training", "batch_size", batch_size, per_image, (1 + OPTIMIZER_COPIES) * weights,
               device)  # fmt: skip


def out_of_memory(err: BaseException, what: str) -> Optional[ValueError]:
    """One line for an allocation that failed in ``what`` ("training", "sampling") despite the
    estimate, or None when ``err`` is not one."""
    text = str(err)
    oom = isinstance(err, (MemoryError, getattr(torch, "OutOfMemoryError", MemoryError)))
    if not oom and not any(s in text for s in ("can't allocate memory", "out of memory")):
        return None
    return ValueError(
        f"{what} ran out of memory ({text.splitlines()[0][:120] if text else type(err).__name__}): "
        "use a smaller batch, fewer pictures, or a smaller size."
    )


def gigabytes(n_bytes: float) -> str:
    """A size for a message: "12.3 GB", or "45 MB" under a gigabyte."""
    return f"{n_bytes / 1e9:.1f} GB" if n_bytes >= 1e9 else f"{n_bytes / 1e6:.0f} MB"
