"""CUDA graphs: the U-Net's hundreds of small GPU kernels launched as one.

A small U-Net on a big GPU is launch-bound: the CPU takes longer to tell the GPU what to do
than the GPU takes to do it. Issue 14 measured it on an H100 (torch 2.11), the small preset at
64 px, batch 32: 680-700 images/s eager (about 20 steps/s, a few percent of the card); 2,775
images/s under ``torch.compile(mode="reduce-overhead")``, which records the forward and
backward passes as CUDA graphs and replays them with one launch each, after 46 s of compiling;
``torch.compile`` without CUDA graphs: 712. The gain is the graphs, not the compiler.

- Training (:class:`TrainGraphs`): ``torch.compile(mode="reduce-overhead")``. It costs about
  a minute of compiling, so the first steps run eagerly and are timed; the net is compiled
  only if the rest of the run is long enough to pay that back (:func:`worth_compiling`), then
  the compiled steps are timed too and the eager net comes back if they are not faster.
- Sampling (:func:`sampling_net`): the forward pass captured directly with
  ``torch.cuda.CUDAGraph`` (milliseconds, nothing to compile) and replayed at every step; the
  first two replays are checked against the eager net's output for the same inputs.

Each is off on a CPU (there are no CUDA graphs there) and wherever it is unsupported, and any
failure falls back to the eager net with one line saying why: a run never stops because a
speed-up did not work.
"""

from __future__ import annotations

import importlib.util
import time
from typing import Callable, Literal, Optional

import torch

CudaGraphs = Literal["auto", "on", "off"]
MODES = ("auto", "on", "off")

# Issue 14's H100 figures (small preset, 64 px, batch 32; torch 2.11). Estimates for the
# decision only: the steps after compiling are timed and the faster net is kept.
COMPILE_SECONDS = 46.0  # the first compiled forward and backward pass
GRAPH_SPEEDUP = 3.9  # 2,775 / 700 images/s
# Graphs remove launch time, nothing else: at most the eager step time minus the graphed one
# (1/20 - 1/87 s). A step much slower than that is the GPU's own work, which graphs keep.
MAX_SAVING_SECONDS = 0.038
PROBE_STEPS = 20  # eager steps timed before deciding (their median: cuDNN's warm-up is ignored)
CHECK_STEPS = 20  # compiled steps timed before keeping them (the first ones record the graphs)
MIN_SAMPLING_CALLS = 20  # a capture costs about 5 forward passes; fewer calls are not worth it


def check_mode(mode: str) -> None:
    """Raise ``ValueError`` unless ``mode`` is ``"auto"``, ``"on"`` or ``"off"``."""
    if mode not in MODES:
        raise ValueError(f"cuda_graphs must be 'auto', 'on' or 'off', got {mode!r}.")


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
        raise ValueError(f"cuda_graphs='on', but {reason}. Use 'auto' or 'off'.")
    return reason


def eager_seconds_left(
    step_seconds: float, steps_left: Optional[int], seconds_left: float
) -> float:
    """Seconds of eager training left: the time budget left, or the steps left at this speed."""
    return seconds_left if steps_left is None else min(seconds_left, steps_left * step_seconds)


def worth_compiling(
    step_seconds: float,
    steps_left: Optional[int],
    seconds_left: float,
    compile_seconds: float = COMPILE_SECONDS,
) -> bool:
    """True when compiling pays back: the eager time still to run, times the fraction of each
    step the graphs save, exceeds the compile time.

    With a step budget, the compiled run then finishes sooner; with a time budget, it does more
    steps in the same time (the compile time is spent from the budget): both come to
    ``time_left * saving / step_seconds > compile_seconds``.
    """
    saving = min(step_seconds * (1 - 1 / GRAPH_SPEEDUP), MAX_SAVING_SECONDS)
    left = eager_seconds_left(step_seconds, steps_left, seconds_left)
    return left * saving / step_seconds > compile_seconds


def compile_net(net: torch.nn.Module) -> Callable[..., torch.Tensor]:
    """The net under ``torch.compile`` with CUDA graphs; fixed shapes (the batch never changes)."""
    return torch.compile(net, mode="reduce-overhead", dynamic=False)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class TrainGraphs:
    """Runs each training step with the eager net or the compiled one, and decides which.

    ``run(left, step_fn, *args)`` calls ``step_fn(net, *args)`` (one forward, backward and
    optimiser step with that net) and returns what it returns. States: ``probe`` (eager,
    timed) -> ``compile`` (the first compiled step: compiles) -> ``check`` (compiled, timed) ->
    ``on``; or ``off`` at any point, with :attr:`status` saying why. ``mode="on"`` compiles at
    the first step and keeps the compiled net even when it measures slower.

    A compiled step that fails (compiling, recording the graphs, a recompile) turns the graphs
    off and is done again eagerly, with ``rng`` (the generator of the step's random draws)
    rewound, so it draws the same t and noise. ``passthrough``: exceptions of the step itself,
    raised as they are rather than taken for a compiler failure.
    """

    def __init__(
        self,
        net: torch.nn.Module,
        mode: CudaGraphs,
        device: torch.device,
        processes: int = 1,
        write: Callable[[str], None] = print,
        clock: Callable[[], float] = time.perf_counter,
        passthrough: tuple[type[BaseException], ...] = (),
        rng: Optional[torch.Generator] = None,
    ) -> None:
        reason = check_request(mode, device, processes)
        self.eager, self.compiled, self.device, self.mode = net, None, device, mode
        self.write, self.clock, self.passthrough, self.rng = write, clock, passthrough, rng
        self.state = {"off": "off", "on": "compile"}.get(mode, "probe") if reason is None else "off"
        undecided = f"off: the run ended within the {PROBE_STEPS} eager steps that decide"
        self.status = f"off: {reason}" if reason else ("off: asked" if mode == "off" else undecided)
        self.times: dict[str, list[float]] = {"probe": [], "check": []}
        self.compile_seconds: Optional[float] = None

    def run(self, left: tuple[Optional[int], float], step_fn: Callable, *args: object) -> object:
        """``step_fn(net, *args)``: one training step with the net chosen (see the class);
        ``left``: the budget left, (steps or None, seconds)."""
        if self.state == "off":
            return step_fn(self.eager, *args)
        timed = self.state in ("probe", "compile", "check")
        start = self.clock()
        if self.state == "probe":
            out = step_fn(self.eager, *args)
            _synchronize(self.device)
        else:
            rewind = self.rng.get_state() if self.rng is not None else None
            try:
                if self.compiled is None:
                    self.compiled = compile_net(self.eager)
                _mark_step()
                out = step_fn(self.compiled, *args)  # the first call compiles; the next record
                if timed:  # a failure the GPU reports late is still caught here
                    _synchronize(self.device)
            except Exception as err:  # noqa: BLE001 - any compiler failure: train on eagerly
                if isinstance(err, self.passthrough):  # the step's own errors (a diverged loss)
                    raise
                what = "compiling" if self.state == "compile" else "the compiled net"
                line = (str(err).strip().splitlines() or [""])[0][:200]
                self._drop(f"off: {what} failed ({type(err).__name__}: {line})")
                self.write(f"CUDA graphs {self.status}; training goes on without them.")
                if rewind is not None:
                    self.rng.set_state(rewind)
                return step_fn(self.eager, *args)  # the step again: it zeroes the gradients first
        if timed:
            self._timed(self.clock() - start, left)
        return out

    def _timed(self, seconds: float, left: tuple[Optional[int], float]) -> None:
        """Record a timed step; move on to the next state when there are enough."""
        if self.state == "compile":
            self.compile_seconds, self.state = seconds, "check"
            self.status = f"on: compiled in {seconds:.0f} s"
            self.write(f"Compiled in {seconds:.0f} s.")
            return
        self.times[self.state].append(seconds)
        probe, check = _median(self.times["probe"]), _median(self.times["check"])
        if self.state == "probe" and len(self.times["probe"]) >= PROBE_STEPS:
            eager_left = eager_seconds_left(probe, *left)
            if worth_compiling(probe, *left):
                self.state = "compile"
                self.write(
                    f"Compiling the U-Net into CUDA graphs (about {COMPILE_SECONDS:.0f} s, paid "
                    f"back by the {eager_left:.0f} s of training left)..."
                )
            else:
                self.state = "off"
                self.status = (
                    f"off: compiling would save less than it costs ({eager_left:.0f} s of "
                    f"training left at {probe * 1000:.0f} ms a step)"
                )
        elif self.state == "check" and len(self.times["check"]) >= CHECK_STEPS:
            self.state = "on"
            speed = f"{probe / check:.1f}x the eager steps/s" if probe else "eager not timed"
            self.status = f"on: compiled in {self.compile_seconds:.0f} s, {speed}"
            if probe and check >= probe and self.mode == "auto":
                self._drop(f"off: compiled steps were not faster ({speed})")
            self.write(f"CUDA graphs {self.status}.")

    def _drop(self, status: str) -> None:
        """Back to the eager net for good, freeing what the compiled one held."""
        self.state, self.status, self.compiled = "off", status, None
        reset = getattr(torch._dynamo, "reset", None)
        if reset is not None:
            reset()  # the compiled code and its graphs' memory pool
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def _mark_step() -> None:
    """Tell torch a new training step begins: the graphs' outputs of the last may be reused."""
    torch.compiler.cudagraph_mark_step_begin()


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2] if values else 0.0


def sampling_net(
    model: Callable[..., torch.Tensor],
    device: torch.device,
    calls: int,
    mode: CudaGraphs = "auto",
    write: Callable[[str], None] = print,
) -> Callable[..., torch.Tensor]:
    """``model``, or a :class:`GraphedForward` of it when CUDA graphs are on for a sampling run
    of ``calls`` forward passes on ``device`` ("auto": on a CUDA GPU from MIN_SAMPLING_CALLS)."""
    reason = _refuse_on(mode, unavailable_reason(device, compile=False))
    if mode == "off" or reason is not None or (mode == "auto" and calls < MIN_SAMPLING_CALLS):
        return model
    if getattr(model, "records_as_cuda_graph", True) is False:  # e.g. reads the CPU per call
        return model
    return GraphedForward(model, write)


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
