"""Training on several processes (distributed.py): torchrun's environment, the batch split,
and two CPU processes (gloo) against one."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from tiny import FAST, SCHEDULE, flat, images, tiny_model

from diffusion_helpers.runtime.distributed import (
    Launch,
    Team,
    is_main_process,
    launch_from_env,
    process_device,
    step_seed,
)
from diffusion_helpers.runtime.interrupts import StopRequests
from diffusion_helpers.storage.checkpoint import read_checkpoint
from diffusion_helpers.train import training_loss
from diffusion_helpers.training import train

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py

TORCHRUN = dict(
    RANK="1", WORLD_SIZE="2", LOCAL_RANK="1", MASTER_ADDR="127.0.0.1", MASTER_PORT="29500"
)


def test_torchrun_environment_is_read():
    assert launch_from_env({}) is None  # a plain `python script.py`
    assert launch_from_env({**TORCHRUN, "WORLD_SIZE": "1", "RANK": "0"}) is None  # one process
    assert launch_from_env(TORCHRUN) == Launch(rank=1, world_size=2, local_rank=1)
    assert not is_main_process(TORCHRUN) and is_main_process({**TORCHRUN, "RANK": "0"})
    assert is_main_process({})


@pytest.mark.parametrize(
    "change, words",
    [
        (dict(MASTER_ADDR=""), "MASTER_ADDR not set"),
        (dict(RANK="2"), "RANK=2"),
        (dict(LOCAL_RANK="one"), "must be integers"),
    ],
)
def test_a_broken_torchrun_environment_is_refused(change, words):
    with pytest.raises(ValueError, match=words):
        launch_from_env({**TORCHRUN, **change})


def test_batch_size_is_global_and_must_split_evenly():
    team = Team(torch.device("cpu"), rank=1, world_size=2)
    assert team.batch_size(8, default=16) == 8
    assert team.batch_size(None, default=15) == 16  # the default is rounded up to split evenly
    with pytest.raises(ValueError, match=r"batch_size=7 .* 2 processes.* 6 or 8"):
        team.batch_size(7, default=16)
    assert torch.equal(team.rows(torch.arange(6)), torch.tensor([1, 3, 5]))


def test_each_process_gets_its_own_device():
    assert process_device(torch.device("cuda"), 1) == torch.device("cuda", 1)
    assert process_device(torch.device("cpu"), 1) == torch.device("cpu")
    with pytest.raises(ValueError, match="cuda:LOCAL_RANK"):
        process_device(torch.device("cuda", 0), 1)
    with pytest.raises(ValueError, match="CUDA GPUs or the CPU"):
        process_device(torch.device("mps"), 0)


def test_dropout_seeds_differ_by_rank_and_step():
    seeds = {step_seed(s, r, k) for s in (0, 1) for r in (0, 1) for k in range(1000)}
    assert len(seeds) == 4000


class Spy(torch.nn.Module):
    """Records x_t, t and labels it is fed; predicts 0.5 x_t."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.5))
        self.seen = []
        self.config = type("Config", (), {"num_classes": 10})()

    def forward(self, x, t, labels):
        self.seen.append((x, t, labels))
        return self.scale * x


def test_halves_of_a_batch_are_the_rows_of_the_whole():
    """Process r of 2, given rows r::2 of the images, feeds the net exactly rows r::2 of what
    one process feeds it (t, eps, dropped labels drawn for the whole batch): 2 processes
    together see the draws of 1."""
    x0, labels = images(6), torch.arange(6)
    whole = Spy()
    _, t, per_image = training_loss(
        whole, x0, SCHEDULE, torch.Generator().manual_seed(2), labels, cond_drop=0.5
    )
    for rank in (0, 1):
        half = Spy()
        _, t_r, loss_r = training_loss(
            half, x0[rank::2], SCHEDULE, torch.Generator().manual_seed(2),
            labels[rank::2], cond_drop=0.5, part=(rank, 2),
        )  # fmt: skip
        for seen_half, seen_whole in zip(half.seen[0], whole.seen[0]):
            assert torch.equal(seen_half, seen_whole[rank::2])
        assert torch.equal(t_r, t[rank::2]) and torch.equal(loss_r, per_image[rank::2])
    assert 0 < int((whole.seen[0][2] == 10).sum()) < 6  # some labels dropped, some kept


def test_signals_are_noted_not_raised_on_several_processes():
    """Under torchrun a Ctrl-C must not leave one process halfway through a collective: it is
    noted, and the next step's all-reduce stops every process together."""
    before = signal.getsignal(signal.SIGINT)
    with StopRequests(second_raises=False) as stops:  # as TrainingRun sets it for 2 processes
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
    assert stops.noted == ["SIGINT", "SIGTERM", "SIGINT"]
    assert signal.getsignal(signal.SIGINT) is before


# ------------------------------------------------------------------ two processes (torchrun)

N = 4  # steps before the interruption; the runs go to 2 * N
LABELS = [0, 1, 1]
# conditional, flipped, clipped, with EMA: every draw and every extra of train() takes part
RUN = dict(batch_size=4, seed=7, lr=2e-3, flip=True, ema_decay=0.9, cond_drop=0.5, **FAST)

WORKER = """
import os, signal, sys
import torch
sys.path.insert(0, {tests!r})
from tiny import SCHEDULE, flat, images, tiny_model
from diffusion_helpers.storage.checkpoint import read_checkpoint
from diffusion_helpers.training import TrainingError, train

out, rank, N, RUN = {out!r}, int(os.environ["RANK"]), {n}, {run!r}
data, labels, ckpt = images(3), {labels!r}, os.path.join({out!r}, "ckpt.pt")

def run(name, model=None, **extra):
    model = model or tiny_model(num_classes=2)
    try:
        r = train(model, data, SCHEDULE, labels=labels, **{{**RUN, **extra}})
        keep = dict(losses=r.losses, raw=flat(r.raw_model), ema=flat(r.model), steps=r.steps,
                    interrupted=r.interrupted, t=r.timesteps, per_image=r.sample_losses)
        if "checkpoint" in extra:  # as it was when train() returned, on every process
            keep["saved"] = read_checkpoint(ckpt)
    except TrainingError as err:
        keep = dict(error=str(err))
    torch.save(keep, os.path.join(out, f"{{name}}-{{rank}}.pt"))

def ctrl_c_on_rank_1(step, loss):
    if rank == 1 and step == N:
        os.kill(os.getpid(), signal.SIGINT)  # this process only: the other must stop too

run("straight", steps=2 * N)
run("interrupted", steps=2 * N, checkpoint=ckpt, callback=ctrl_c_on_rank_1)
run("resumed", steps=2 * N, checkpoint=ckpt)
nan_net = tiny_model(num_classes=2)
def blow_up_rank_1(step, loss):
    if rank == 1 and step == 2:
        nan_net.forward = lambda x, t, y: x * float("nan")
run("nan", model=nan_net, steps=2 * N, callback=blow_up_rank_1)
run("budget", minutes=0.01)
"""


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """Run WORKER under torchrun on 2 CPU processes (gloo, 1 thread each); return a function
    ``(scenario) -> [rank 0's record, rank 1's record]`` and the output folder."""
    out = tmp_path_factory.mktemp("ddp")
    script = out / "worker.py"
    tests = str(Path(__file__).parents[1])  # tests/, where tiny.py is
    script.write_text(
        textwrap.dedent(WORKER).format(tests=tests, out=str(out), n=N, run=RUN, labels=LABELS)
    )
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(script)],
        capture_output=True, text=True, timeout=300, cwd=out,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return (lambda name: [torch.load(out / f"{name}-{r}.pt") for r in (0, 1)]), out


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["straight", "interrupted", "resumed", "budget"])
def test_both_processes_end_with_identical_weights(two_processes, scenario):
    """DDP keeps the copies in step: same raw weights, same EMA, same losses, same step count
    on both processes (exactly: they apply the same averaged gradient)."""
    a, b = two_processes[0](scenario)
    assert torch.equal(a["raw"], b["raw"]) and torch.equal(a["ema"], b["ema"])
    assert a["losses"] == b["losses"] and a["steps"] == b["steps"] >= 1


@pytest.mark.slow
def test_two_processes_train_like_one_at_the_same_global_batch(two_processes):
    """Process r trains on rows r::2 of the batch one process would draw (same images, flips,
    t, noise, dropped labels), and DDP's mean of the two half-batch gradients is the
    full-batch gradient. So the runs differ only by float32 rounding (half-batch convolutions
    and the two-part gradient sum add in another order, about 1e-7 relative per step).
    Tolerances, with the largest differences measured on this CPU (AMD EPYC, AVX-512):
    t exactly (the same draws, gathered back in the same order); losses and per-image losses
    1e-5 relative (measured 6e-8 absolute on losses near 1); weights 1e-4 absolute (measured
    3e-6: Adam's eps of 1e-8 damps the rounding of near-zero gradients; a wrong row or a
    missing gradient average moves weights by about lr = 2e-3 per step)."""
    two = two_processes[0]("straight")[0]
    one = train(tiny_model(num_classes=2), images(3), SCHEDULE, labels=LABELS, steps=2 * N, **RUN)
    assert torch.equal(two["t"], one.timesteps)
    assert two["losses"] == pytest.approx(one.losses, rel=1e-5)
    torch.testing.assert_close(two["per_image"], one.sample_losses, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(two["raw"], flat(one.raw_model), rtol=0, atol=1e-4)


@pytest.mark.slow
def test_ctrl_c_on_one_process_stops_both_and_resume_is_exact(two_processes):
    """A Ctrl-C that reaches only process 1 at step N stops both processes after step N (the
    stop is agreed at the next step), process 0 saves the checkpoint, and a run resumed from
    it on two processes ends exactly where the uninterrupted run ends."""
    record, out = two_processes
    for r in record("interrupted"):
        assert r["interrupted"] == "SIGINT" and r["steps"] == N
        assert r["saved"]["step"] == N  # written by process 0 before either returned
    # the format of one process: the U-Net's own names, not DDP's "module." prefixes
    assert set(r["saved"]["model"]) == set(tiny_model(num_classes=2).state_dict())
    assert read_checkpoint(out / "ckpt.pt")["step"] == 2 * N  # the resumed run's
    assert not (out / "ckpt.pt.lock").exists()
    straight, resumed = record("straight")[0], record("resumed")[0]
    assert resumed["losses"] == straight["losses"]
    assert torch.equal(resumed["raw"], straight["raw"])
    assert torch.equal(resumed["ema"], straight["ema"])


@pytest.mark.slow
def test_a_non_finite_loss_on_one_process_stops_both(two_processes):
    """Process 1's net blows up after step 2: the gathered loss is NaN on both processes, so
    both raise TrainingError at step 3 and neither waits for the other in a collective."""
    for r in two_processes[0]("nan"):
        assert "the loss became nan at step 3" in r["error"]
