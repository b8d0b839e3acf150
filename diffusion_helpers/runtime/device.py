"""The device and its number formats: which device to use, and which precision trains fastest
on it (bf16 autocast, fp16 with a gradient scaler, or fp32)."""

from __future__ import annotations

import os
from typing import Literal, Optional, Union, get_args

import torch

from .environment import in_colab

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS = get_args(Precision)


def pick_device(device: Optional[Union[str, torch.device]] = None) -> torch.device:
    """Return ``device`` if given, else the fastest available: CUDA, then Apple MPS, then CPU."""
    if device is not None:
        try:
            chosen = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(
                f"device {device!r} is not a device name like 'cpu' or 'cuda'."
            ) from err
        if chosen.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' was asked for, but no CUDA GPU is available here.")
        return chosen
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_device(device: Optional[Union[str, torch.device]] = None) -> str:
    """One line naming the device, with a hint to switch to a GPU runtime when on CPU."""
    dev = pick_device(device)
    if dev.type == "cuda":
        return f"Using GPU: {torch.cuda.get_device_name(dev)}."
    if dev.type == "mps":
        return "Using the Apple GPU (MPS)."
    hint = (
        " In Colab, Runtime > Change runtime type > GPU makes training several times faster."
        if in_colab()
        else " A CUDA GPU (for example a Colab GPU runtime) makes training several times faster."
    )
    return f"Using the CPU ({os.cpu_count()} cores).{hint}"


def make_grad_scaler() -> object:
    """A CUDA gradient scaler for fp16 training (``torch.amp`` from torch 2.3, else the old name)."""
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda")
    return torch.cuda.amp.GradScaler()


def cpu_supports_bf16() -> bool:
    """True when oneDNN can run bfloat16 natively here (AVX-512 BF16 or AMX)."""
    cpu = getattr(torch, "cpu", None)
    checks = [
        getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    ]
    return torch.backends.mkldnn.is_available() and any(c is not None and c() for c in checks)


def pick_precision(precision: str, device: torch.device) -> str:
    """Resolve ``"auto"``: bf16 autocast on CUDA GPUs and CPUs that support it, fp16 with a
    gradient scaler on older GPUs, fp32 elsewhere. bf16 on a 2-core AVX-512 BF16 CPU trained the
    tiny net at 32 px 1.6x faster than fp32 (``bench/train_speed.py``)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}.")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision='fp16' needs a CUDA GPU; use 'bf16' or 'fp32' here.")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        # bf16 units arrived with compute capability 8 (Ampere); torch reports bf16 as
        # "supported" on older GPUs (Colab's T4) through slow emulation, so ask the hardware.
        return "bf16" if torch.cuda.get_device_capability(device)[0] >= 8 else "fp16"
    if device.type == "cpu" and cpu_supports_bf16():
        return "bf16"
    return "fp32"


class Autocast(torch.nn.Module):
    """The net run under ``torch.autocast`` in bf16 or fp16 (its output back in float32), or
    as it is in fp32: mixed precision decided once, outside the training loop. ``config`` is
    the net's."""

    def __init__(self, net: torch.nn.Module, precision: str) -> None:
        super().__init__()
        self.net, self.config = net, getattr(net, "config", None)
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        """The net's output for ``args``, in float32."""
        if self.dtype is None:
            return self.net(*args)
        with torch.autocast(args[0].device.type, dtype=self.dtype):
            return self.net(*args).float()
