"""CUDA graphs: the U-Net's hundreds of small GPU kernels launched as one.

A small U-Net on a big GPU is launch-bound: the CPU takes longer to tell the GPU what to do
than the GPU takes to do it. On one H100 (small preset, 64 px, batch 32) CUDA graphs trained
about 4x faster after about 46 s of compiling (README). Off by default: that figure is one
H100's, and a Colab T4 is not measured. ``"on"`` asks for them:

- Training (:func:`compile_net`): ``torch.compile(mode="reduce-overhead")``, decided once
  before the loop; a compiled step that fails is done again eagerly, and training goes on.
- Sampling (:func:`sampling_net`): the forward pass captured with ``torch.cuda.CUDAGraph`` and
  replayed at every step; the first two replays are checked against the eager net.

Each is refused on a CPU (there are no CUDA graphs there) and wherever it is unsupported.
"""

from __future__ import annotations

import importlib.util
from typing import Callable, Literal, Optional

import torch

CudaGraphs = Literal["off", "on"]
MODES = ("off", "on")


def check_mode(mode: str) -> None:
    """Raise ``ValueError`` unless ``mode`` is ``"on"`` or ``"off"``."""
    if mode not in MODES:
        raise ValueError(f"cuda_graphs must be 'off' or 'on', got {mode!r}.")


def unavailable_reason(device: torch.device, compile: bool = True) -> Optional[str]:
    """Why CUDA graphs cannot run here, or None when they can. ``compile``: also needs
    ``torch.compile`` with its Triton GPU compiler (training does; sampling does not)."""
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA GPU; this run is on the {device.type.upper()}"
    if not compile:
        return None
    if getattr(torch.version, "hip", None):  # pytorch/pytorch#187715: training learns slower
        return "torch.compile's CUDA graphs slow learning down under ROCm (pytorch#187715)"
    if not hasattr(torch, "compile"):
        return "this torch has no torch.compile (it came with torch 2.0)"
    if not hasattr(torch.compiler, "cudagraph_mark_step_begin"):  # arrived with torch 2.3
        return "CUDA graphs in training need torch 2.3 or newer"
    supported = getattr(torch._dynamo, "is_dynamo_supported", lambda: True)
    try:  # False, or an error, e.g. for a Python newer than this torch's compiler
        ok, why = supported(), "not supported on this Python or platform"
    except RuntimeError as err:
        ok, why = False, str(err)
    if not ok:
        return f"torch.compile does not run here ({why})"
    if importlib.util.find_spec("triton") is None:
        return "torch.compile needs Triton for the GPU (pip install triton)"
    return None


def check_request(mode: str, device: torch.device, processes: int = 1) -> Optional[str]:
    """Why training cannot use CUDA graphs here, or None. Raises ``ValueError`` for an unknown
    mode, or for ``"on"`` where they cannot be used (called before any work is done)."""
    reason = unavailable_reason(device)
    if reason is None and processes > 1:
        reason = "under torchrun the nets run eagerly (DDP with CUDA graphs is not measured)"
    return _refuse_on(mode, reason)


def _refuse_on(mode: str, reason: Optional[str]) -> Optional[str]:
    """``reason``, after checking ``mode`` and refusing ``"on"`` when there is a reason."""
    check_mode(mode)
    if mode == "on" and reason is not None:
        raise ValueError(f"cuda_graphs='on', but {reason}. Use 'off'.")
    return reason


def compile_net(net: torch.nn.Module) -> Callable[..., torch.Tensor]:
    """The net under ``torch.compile`` with CUDA graphs; fixed shapes (the batch never changes)."""
    return torch.compile(net, mode="reduce-overhead", dynamic=False)


def mark_step(status: str) -> None:
    """Tell torch a new training step begins (the graphs' outputs of the last may be reused),
    when the compiled net runs (``status`` starts with "on")."""
    if status.startswith("on"):
        torch.compiler.cudagraph_mark_step_begin()


def sampling_net(
    model: Callable[..., torch.Tensor],
    device: torch.device,
    mode: CudaGraphs = "off",
    write: Callable[[str], None] = print,
) -> Callable[..., torch.Tensor]:
    """``model``, or a :class:`GraphedForward` of it when CUDA graphs are ``"on"`` for sampling
    on ``device`` (refused where there are none)."""
    _refuse_on(mode, unavailable_reason(device, compile=False))
    return GraphedForward(model, write) if mode == "on" else model


class GraphedForward:
    """``model(x, t[, labels])`` replayed from a CUDA graph recorded at the first call.

    The graph reads its inputs from fixed tensors and writes a fixed output, so each call
    copies its inputs in, replays, and returns a copy of the output. The first CHECKED_REPLAYS
    replays (different t) are compared with the eager model's output. Calls of another shape
    run the eager model. If recording fails or a replay differs, every call runs the eager
    model and one line says why.
    """

    CHECKED_REPLAYS = 2

    def __init__(self, model: Callable[..., torch.Tensor], write: Callable[[str], None]) -> None:
        self.model, self.write = model, write
        self.replay: Optional[Callable[..., torch.Tensor]] = None
        self.shapes: Optional[list] = None
        self.failed, self.checked = False, 0

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        shapes = [(a.shape, a.dtype) for a in args]
        if self.failed or (self.shapes is not None and shapes != self.shapes):
            return self.model(*args)
        if self.checked >= self.CHECKED_REPLAYS:
            return self.replay(*args)
        try:
            if self.replay is None:
                self.replay, self.shapes = capture_forward(self.model, args), shapes
            got = self.replay(*args)
        except Exception as err:  # noqa: BLE001 - any capture failure: sample eagerly
            why = f"recording failed ({type(err).__name__}: {err})"
            return self._give_up(why, self.model(*args))
        expected = self.model(*args)
        if not torch.allclose(got.float(), expected.float(), rtol=1e-3, atol=1e-3):
            diff = float((got.float() - expected.float()).abs().max())
            return self._give_up(f"the replay differs from the eager net by {diff:.2g}", expected)
        self.checked += 1
        return got

    def _give_up(self, why: str, eager: torch.Tensor) -> torch.Tensor:
        """Eager from now on; say why once; return ``eager``, the eager net's output."""
        self.failed, self.replay = True, None
        self.write(f"CUDA graphs off for sampling: {why.splitlines()[0][:200]}; sampling eagerly.")
        return eager


def capture_forward(
    model: Callable[..., torch.Tensor], args: tuple[torch.Tensor, ...]
) -> Callable[..., torch.Tensor]:
    """Record ``model(*args)`` as a CUDA graph (without gradients); return a function
    that copies new inputs of the same shapes into the graph's inputs, replays it and returns a
    copy of its output. The pattern of torch's CUDA graphs notes (warm up on a side stream)."""
    static = [a.clone() for a in args]
    device = static[0].device
    with torch.no_grad(), torch.cuda.device(device):
        side = torch.cuda.Stream(device=device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(3):  # cuDNN chooses its algorithms and the allocator settles
                model(*static)
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = model(*static)

    def replay(*new: torch.Tensor) -> torch.Tensor:
        for slot, value in zip(static, new):
            slot.copy_(value)
        graph.replay()
        return out.clone()

    return replay
