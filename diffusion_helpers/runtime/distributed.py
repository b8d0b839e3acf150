"""Training on several processes at once (``torchrun``): the same :func:`..training.train`, one
copy per GPU (or CPU process), kept in step by DistributedDataParallel (DDP).

    torchrun --nproc_per_node=2 -m diffusion_helpers train --data photos/ --out unet.pt

:func:`join` reads torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ...),
starts the process group (NCCL on CUDA, gloo on the CPU) and ends it with the run. So that N
processes train exactly like one: ``batch_size`` is the global batch; every process draws the
whole batch's random numbers from the same generator and keeps rows ``rank::world_size``; DDP
averages the gradients (the mean of N half-batch means is the full-batch mean); dropout is
reseeded per process and step (:func:`step_seed`). Only process 0 writes checkpoints and
prints; whether to stop (the clock, Ctrl-C, SIGTERM, a non-finite loss) is decided together.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pickle
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Callable, Optional, TypeVar

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

T = TypeVar("T")
LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
GROUPS_STARTED = itertools.count()  # groups join() started in this process (all count alike)
SEED_PRIME = 1_000_003  # a prime > any rank or step we meet, so (seed, rank, step) seeds differ


@dataclass(frozen=True)
class Launch:
    """Who this process is in a ``torchrun`` launch."""

    rank: int
    world_size: int
    local_rank: int


def launch_from_env(environ: Optional[Mapping[str, str]] = None) -> Optional[Launch]:
    """The :class:`Launch` that ``torchrun`` describes in ``environ`` (default ``os.environ``),
    or None for a single process (no ``WORLD_SIZE``, or ``WORLD_SIZE=1``).

    Raises ``ValueError`` when ``WORLD_SIZE`` > 1 but the other variables are missing or wrong.
    """
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env:
        return None
    missing = [name for name in LAUNCH_VARIABLES if not env.get(name)]
    try:
        world = int(env["WORLD_SIZE"])
        if world == 1:
            return None
        rank, local = int(env.get("RANK", "-1")), int(env.get("LOCAL_RANK", "-1"))
    except ValueError as err:
        raise ValueError(f"torchrun's environment variables must be integers: {err}.") from err
    if missing or world < 1 or not 0 <= rank < world or local < 0:
        raise ValueError(
            f"WORLD_SIZE={world} says this is one of several processes, but "
            + (f"{', '.join(missing)} not set" if missing else f"RANK={rank}, LOCAL_RANK={local}")
            + ": start it with `torchrun --nproc_per_node=N ...`, or unset WORLD_SIZE."
        )
    return Launch(rank, world, local)


def is_main_process(environ: Optional[Mapping[str, str]] = None) -> bool:
    """False in torchrun's processes other than rank 0: for code around :func:`.train.train`
    that prints or writes files (a command line's summary, an export)."""
    env = os.environ if environ is None else environ
    return launch_from_env(env) is None or env["RANK"] == "0"


def step_seed(seed: int, rank: int, step: int) -> int:
    """The seed of torch's global generator (dropout) on process ``rank`` at ``step``."""
    return ((seed * SEED_PRIME + rank) * SEED_PRIME + step) % 2**63


def process_device(device: torch.device, local_rank: int) -> torch.device:
    """Process ``local_rank``'s device: ``cuda:LOCAL_RANK`` on GPUs, the CPU otherwise."""
    if device.type == "cuda":
        if device.index is not None and device.index != local_rank:
            raise ValueError(
                f"device={str(device)!r} under torchrun: each process uses cuda:LOCAL_RANK "
                f"(cuda:{local_rank} here); pass device='cuda' and let torchrun choose."
            )
        return torch.device("cuda", local_rank)
    if device.type != "cpu":
        raise ValueError(
            f"training on several processes runs on CUDA GPUs or the CPU, not {device.type}: "
            "pass device='cpu', or start one process."
        )
    return device


class DistributedUNet(DistributedDataParallel):
    """DDP around a U-Net that still answers ``.config`` like the net it wraps."""

    @property
    def config(self) -> object:  # noqa: D102
        return self.module.config


@dataclass
class Team:
    """The processes training together (one, or a torchrun group), from one process's view.

    Every method is the identity (or free) for a single process, so :func:`.train.train`
    reads the same either way.
    """

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """True on process 0, the one that writes files and prints."""
        return self.rank == 0

    @property
    def part(self) -> tuple[int, int]:
        """(rank, world_size): this process keeps rows rank::world_size of each batch."""
        return self.rank, self.world_size

    def batch_size(self, given: Optional[int], default: int) -> int:
        """The global batch: ``given`` (must divide by the number of processes), or ``default``
        rounded up to a multiple of it."""
        n = self.world_size
        if given is None:
            return -(-default // n) * n
        if given % n:
            raise ValueError(
                f"batch_size={given} is the global batch, split over {n} processes: it must "
                f"divide evenly; use {given - given % n or n} or {given - given % n + n}."
            )
        return given

    def rows(self, x: torch.Tensor) -> torch.Tensor:
        """This process's rows rank::world_size of a whole-batch tensor [B, ...]."""
        return x if self.world_size == 1 else x[self.rank :: self.world_size]

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` in DDP (which copies process 0's weights to all), or itself alone."""
        if self.world_size == 1:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedUNet(model, device_ids=ids)

    def seed_dropout(self, seed: int, step: int) -> None:
        """Reseed torch's global generator from (seed, rank, step) on several processes (one
        process keeps its single seed, set at the start)."""
        if self.world_size > 1:
            torch.manual_seed(step_seed(seed, self.rank, step))

    def agree(self, elapsed: float, noted: list[str]) -> tuple[float, Optional[str]]:
        """Process 0's ``elapsed`` seconds and the stop any process ``noted`` ("SIGTERM" before
        "SIGINT", else None), the same on every process: one all-reduce of 3 numbers."""
        if self.world_size == 1:
            return elapsed, "SIGTERM" if "SIGTERM" in noted else "SIGINT" if noted else None
        votes = [elapsed if self.is_main else 0.0]
        votes += [float(name in noted) for name in ("SIGINT", "SIGTERM")]
        total = torch.tensor(votes, dtype=torch.float64, device=self.device)
        dist.all_reduce(total)  # sum: process 0's clock, and how many want to stop
        clock, sigint, sigterm = total.tolist()
        return clock, "SIGTERM" if sigterm else "SIGINT" if sigint else None

    def gather(self, t: torch.Tensor, per_image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The whole batch's t [B] and per-image losses [B], in the order one process has them,
        from every process's rows; t stays on its device, the losses on theirs."""
        if self.world_size == 1:
            return t, per_image
        mine = torch.stack([t.to(self.device, torch.float64), per_image.double()], dim=1)
        parts = [torch.empty_like(mine) for _ in range(self.world_size)]
        dist.all_gather(parts, mine)
        # process r holds global rows r, r + world, ...: interleave them back
        whole = torch.stack(parts, dim=1).reshape(-1, 2)
        return whole[:, 0].long().to(t.device), whole[:, 1].to(per_image.dtype)

    def on_main(self, work: Callable[[], T]) -> T:
        """Run ``work`` on process 0 only and give every process its result, or raise its error
        everywhere (a refused checkpoint stops all processes, not one)."""
        if self.world_size == 1:
            return work()
        outcome: list[object] = [None, None]
        if self.is_main:
            try:
                outcome = [work(), None]
            except Exception as err:  # sent to every process and raised there
                outcome = [None, portable(err)]
        dist.broadcast_object_list(outcome, src=0, device=self.device)
        if outcome[1] is not None:
            raise outcome[1]
        return outcome[0]

    def barrier(self) -> None:
        """Wait until every process gets here (after process 0's final save)."""
        if self.world_size > 1:
            dist.barrier(device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def print(self, *args: object) -> None:
        """``print`` on process 0 only."""
        if self.is_main:
            print(*args)


def portable(err: Exception) -> Exception:
    """``err`` if it survives pickling (to be sent to the other processes), else a
    RuntimeError with its message."""
    try:
        pickle.loads(pickle.dumps(err))
    except Exception:
        return RuntimeError(f"{type(err).__name__}: {err}")
    return err


@contextlib.contextmanager
def join(device: torch.device) -> Iterator[Team]:
    """The :class:`Team` this process trains in, on its device. Under ``torchrun`` (or inside
    a process group the caller started) it is the group; the group is started here, and
    destroyed on the way out, only if it was not running already."""
    launch = launch_from_env()
    running = dist.is_available() and dist.is_initialized()
    if running and dist.get_world_size() > 1:
        local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
        launch = Launch(dist.get_rank(), dist.get_world_size(), local)
    if launch is None:
        yield Team(device)
        return
    device = process_device(device, launch.local_rank)
    started = not running
    if started:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        # torchrun's key-value store outlives a group: a fresh prefix per group keeps a second
        # train() in the same processes from reading the first group's stale addresses (hang).
        store, rank, world_size = next(dist.rendezvous("env://"))
        store = dist.PrefixStore(f"diffusion_helpers/group{next(GROUPS_STARTED)}", store)
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, store=store, rank=rank, world_size=world_size)
    try:
        yield Team(device, launch.rank, launch.world_size)
    finally:
        if started:
            dist.destroy_process_group()
