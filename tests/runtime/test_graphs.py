"""CUDA graphs (graphs.py): refused where there are none, off unless asked for, and every way
they can fail falls back to the eager net without changing the math.

This machine has no GPU, so the GPU itself is stood in for: ``unavailable_reason`` is told
"available", and the compiler is torch.compile's ``eager`` backend (dynamo traces the real
U-Net, then runs the same operations) or a fake that fails. The speed is measured by
bench/gpu_speed.py on a GPU, never here.
"""

import pytest
import torch
from tiny import FAST, SCHEDULE, flat, images, tiny_model

from diffusion_helpers.runtime import graphs
from diffusion_helpers.runtime.graphs import (
    GraphedForward,
    check_request,
    sampling_net,
    unavailable_reason,
)
from diffusion_helpers.sampling import sample
from diffusion_helpers.training import TrainingError, train

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py
CPU = torch.device("cpu")


class Counted:
    """A compiled net that counts its calls and can be told to fail at call ``fail_at``."""

    def __init__(self, net, compiled, fail_at=None):
        self.config, self.compiled, self.calls, self.fail_at = net.config, compiled, 0, fail_at

    def __call__(self, *args):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("CUDA graph recording failed: out of memory\nlong traceback")
        return self.compiled(*args)


@pytest.fixture
def pretend_gpu(monkeypatch):
    """CUDA graphs 'available' on this CPU; compiling is dynamo and AOTAutograd (which compile
    the forward and backward passes as separate graphs) with the eager backend in place of
    Triton. Returns the list of compiled nets made, to count their calls."""
    made = []

    def compile_net(net):
        made.append(Counted(net, torch.compile(net, backend="aot_eager", dynamic=False)))
        return made[-1]

    monkeypatch.setattr(graphs, "unavailable_reason", lambda device, compile=True: None)
    monkeypatch.setattr(graphs, "compile_net", compile_net)
    return made


def written(monkeypatch):
    """The lines tqdm.write prints (as bar.write or tqdm.write), collected in a list."""
    lines = []
    monkeypatch.setattr("tqdm.auto.tqdm.write", lambda *a, **k: lines.append(str(a[-1])))
    return lines


def test_cpu_runs_eagerly_and_says_why():
    assert "CUDA GPU" in unavailable_reason(CPU)
    result = train(tiny_model(), images(), SCHEDULE, steps=2, seed=0, **FAST)
    assert result.cuda_graphs.startswith("off: CUDA graphs need a CUDA GPU")
    model = tiny_model()
    assert sampling_net(model, CPU) is model


def test_asking_for_graphs_where_there_are_none_is_refused_before_any_work(tmp_path):
    model = tiny_model()
    before = flat(model).clone()
    with pytest.raises(ValueError, match="cuda_graphs='on', but CUDA graphs need a CUDA GPU"):
        train(model, images(), SCHEDULE, steps=2, cuda_graphs="on", checkpoint=tmp_path / "c.pt",
              **FAST)  # fmt: skip
    assert torch.equal(flat(model), before) and list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="cuda_graphs='on'"):
        sample(
            tiny_model(), SCHEDULE, n=1, method="ddim", steps=2, cuda_graphs="on", progress=False
        )
    with pytest.raises(ValueError, match="cuda_graphs must be one of"):
        train(tiny_model(), images(), SCHEDULE, steps=2, cuda_graphs="yes", **FAST)
    with pytest.raises(ValueError, match="cuda_graphs must be 'off' or 'on'"):
        sample(
            tiny_model(), SCHEDULE, n=1, method="ddim", steps=2, cuda_graphs=True, progress=False
        )


def test_a_gpu_without_the_compiler_says_what_is_missing(monkeypatch):
    gpu = torch.device("cuda")
    monkeypatch.setattr(graphs.importlib.util, "find_spec", lambda name: None)
    assert "needs Triton" in unavailable_reason(gpu)
    assert unavailable_reason(gpu, compile=False) is None  # sampling records graphs itself
    monkeypatch.setattr(torch.version, "hip", "6.0")  # ROCm: compiled graphs learn slower
    assert "ROCm" in unavailable_reason(gpu)
    assert unavailable_reason(gpu, compile=False) is None
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch._dynamo, "is_dynamo_supported", lambda: False)
    assert "torch.compile does not run here" in unavailable_reason(gpu)
    monkeypatch.delattr(torch, "compile")
    assert "no torch.compile" in unavailable_reason(gpu)


def test_torchrun_trains_eagerly(pretend_gpu):
    assert "torchrun" in check_request("off", CPU, processes=2)
    with pytest.raises(ValueError, match="torchrun"):
        check_request("on", CPU, processes=2)


@pytest.mark.parametrize("num_classes", [None, 10])
def test_the_unet_traces_as_one_graph(num_classes):
    """A break in dynamo's trace would cut the CUDA graph in two, with eager work between (the
    label range check did, until it stood aside while tracing)."""
    model = tiny_model(num_classes=num_classes)
    x, t = images(4), torch.tensor([0, 10, 500, 999])
    labels = () if num_classes is None else (torch.tensor([0, 3, 9, 10]),)
    explained = torch._dynamo.explain(model)(x, t, *labels)
    assert explained.graph_break_count == 0, explained.break_reasons
    if num_classes:  # outside a trace the check still speaks
        with pytest.raises(ValueError, match="labels must lie in"):
            model(x, t, torch.tensor([0, 3, 9, 11]))


def test_the_compiled_net_changes_nothing(pretend_gpu, monkeypatch):
    """Off by default; "on" compiles before the first step: the same losses and weights as
    eager, in fp32 (the eager backend runs the very same operations, so 1e-6 is rounding)."""
    made = pretend_gpu
    runs = {mode: train(tiny_model(), images(2), SCHEDULE, steps=7, seed=3, cuda_graphs=mode,
                        **FAST) for mode in ("off", "on")}  # fmt: skip
    assert train(tiny_model(), images(2), SCHEDULE, steps=1, **FAST).cuda_graphs == "off: asked"
    assert runs["off"].cuda_graphs == "off: asked"
    assert runs["on"].cuda_graphs.startswith("on: compiled in")
    torch.testing.assert_close(runs["on"].losses, runs["off"].losses, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(flat(runs["on"].raw_model), flat(runs["off"].raw_model))
    assert len(made) == 1 and made[0].calls == 7


def test_a_conditional_net_compiles_too(pretend_gpu):
    labels = torch.tensor([0, 1])
    result = train(
        tiny_model(num_classes=2), images(2), SCHEDULE, labels=labels, steps=3, seed=0,
        cuda_graphs="on", **FAST,
    )  # fmt: skip
    assert result.cuda_graphs.startswith("on: compiled in")
    assert result.steps == 3


def test_a_failing_compiler_falls_back_and_training_goes_on(pretend_gpu, monkeypatch):
    def broken(net):
        def run(*args):
            raise RuntimeError("Triton found no C compiler\nlong traceback text")

        return run

    monkeypatch.setattr(graphs, "compile_net", broken)
    lines = written(monkeypatch)
    result = train(tiny_model(), images(), SCHEDULE, steps=4, seed=0, cuda_graphs="on", **FAST)
    status = result.cuda_graphs
    assert status == "off: compiling failed (RuntimeError: Triton found no C compiler)"
    assert any("training goes on without them" in line for line in lines)
    # the failed step was redone with the same draws: the run is the all-eager run
    eager = train(tiny_model(), images(), SCHEDULE, steps=4, seed=0, cuda_graphs="off", **FAST)
    assert result.losses == eager.losses
    assert torch.equal(flat(result.raw_model), flat(eager.raw_model))


def test_a_compiled_net_failing_later_falls_back_too(pretend_gpu, monkeypatch):
    """Recording the graphs happens at the second compiled call, not the first: a failure
    there (or at any later step) also turns the graphs off and redoes the step eagerly."""
    made = []

    def fails_at_third_call(net):
        made.append(Counted(net, torch.compile(net, backend="aot_eager"), fail_at=3))
        return made[-1]

    monkeypatch.setattr(graphs, "compile_net", fails_at_third_call)
    lines = written(monkeypatch)
    result = train(tiny_model(), images(2), SCHEDULE, steps=6, seed=1, cuda_graphs="on", **FAST)
    assert result.cuda_graphs == (
        "off: the compiled net failed (RuntimeError: CUDA graph recording failed: out of memory)"
    )
    assert made[0].calls == 3 and len(lines) >= 2
    eager = train(tiny_model(), images(2), SCHEDULE, steps=6, seed=1, cuda_graphs="off", **FAST)
    torch.testing.assert_close(result.losses, eager.losses, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(flat(result.raw_model), flat(eager.raw_model))


def test_a_diverged_loss_is_not_taken_for_a_compiler_failure(pretend_gpu, monkeypatch):
    monkeypatch.setattr(graphs, "compile_net", lambda net: lambda *a: net(*a) * float("nan"))
    with pytest.raises(TrainingError, match="training diverged"):
        train(tiny_model(), images(), SCHEDULE, steps=3, seed=0, cuda_graphs="on", **FAST)


def lively_model():
    """The tiny net with a random last layer: a fresh U-Net outputs exactly 0 (its last
    convolution starts at zero), which would hide a wrong replay."""
    model = tiny_model()
    with torch.no_grad():
        model.conv_out.weight.copy_(
            torch.randn(model.conv_out.weight.shape, generator=torch.Generator().manual_seed(1))
        )
    return model


class Recorder(torch.nn.Module):
    """Wraps a net; counts its calls (to see which ran, the graph or the eager net)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, 0
        self.config = model.config

    def forward(self, *args):
        self.calls += 1
        return self.model(*args)


@pytest.mark.parametrize(
    "capture, message",
    [
        (lambda model, args: 1 / 0, "recording failed (ZeroDivisionError"),
        (lambda model, args: lambda *a: torch.full_like(a[0], 5.0), "the replay differs"),
    ],
)
def test_sampling_falls_back_when_a_graph_fails(monkeypatch, capture, message):
    """Same seed, same images as eager sampling, one line saying why, every call eager."""
    model = lively_model()
    expected = sample(model, SCHEDULE, n=2, method="ddim", steps=25, seed=0, progress=False)
    monkeypatch.setattr(graphs, "unavailable_reason", lambda device, compile=True: None)
    monkeypatch.setattr(graphs, "capture_forward", capture)
    lines = written(monkeypatch)
    net = Recorder(model)
    got = sample(net, SCHEDULE, n=2, method="ddim", steps=25, seed=0, progress=False,
                 cuda_graphs="on")  # fmt: skip
    torch.testing.assert_close(got.images, expected.images, rtol=0, atol=0)
    assert net.calls == 25
    assert len(lines) == 1 and message in lines[0] and "sampling eagerly" in lines[0]


def test_sampling_replays_the_graph_from_the_second_step(monkeypatch):
    """A capture that works: the graph stands in for every step, the first two also run the
    eager net (the checks); images as eager."""
    model = lively_model()
    expected = sample(model, SCHEDULE, n=2, method="ddim", steps=25, seed=0, progress=False)
    replays = []

    def capture(net, args):
        return lambda *a: replays.append(1) or model(*a)

    monkeypatch.setattr(graphs, "unavailable_reason", lambda device, compile=True: None)
    monkeypatch.setattr(graphs, "capture_forward", capture)
    net = Recorder(model)
    got = sample(net, SCHEDULE, n=2, method="ddim", steps=25, seed=0, progress=False,
                 cuda_graphs="on")  # fmt: skip
    torch.testing.assert_close(got.images, expected.images, rtol=0, atol=0)
    assert net.calls == 2 and len(replays) == 25
    assert sampling_net(model, torch.device("cuda")) is model  # off unless asked for
    graphed = GraphedForward(model, write=lambda line: None)
    graphed.shapes, graphed.replay = [(torch.Size([9]), torch.float32)], lambda *a: None
    assert graphed(images(1), torch.tensor([5])).shape == (1, 3, 16, 16)  # another shape: eager


def test_a_replay_right_only_for_the_recorded_input_is_caught(monkeypatch):
    """A graph that froze its output (values computed outside the graph at recording) matches
    eager at the first step and not at the second: the second check catches it."""
    model = lively_model()
    expected = sample(model, SCHEDULE, n=2, method="ddim", steps=25, seed=0, progress=False)

    def frozen(net, args):
        out = net(*args)
        return lambda *a: out.clone()

    monkeypatch.setattr(graphs, "unavailable_reason", lambda device, compile=True: None)
    monkeypatch.setattr(graphs, "capture_forward", frozen)
    lines = written(monkeypatch)
    got = sample(model, SCHEDULE, n=2, method="ddim", steps=25, seed=0, progress=False,
                 cuda_graphs="on")  # fmt: skip
    torch.testing.assert_close(got.images, expected.images, rtol=0, atol=0)
    assert len(lines) == 1 and "the replay differs" in lines[0]
