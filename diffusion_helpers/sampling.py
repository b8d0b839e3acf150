"""``dh.sample``: the reverse process (:func:`.reverse.reverse_process`, Algorithm 2) from
pure noise, x_T ~ N(0, I), with what a run needs around it, decided once: CPU threads, the
memory it will need checked first, CUDA graphs when asked for; and :func:`load_for_sampling`,
which reads a checkpoint as the noise predictor it holds (:mod:`.prediction`).
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

import torch
from tqdm.auto import tqdm

from .checks.values import whole_number
from .guidance import Labels, resolve_labels
from .prediction import noise_predictor, prediction
from .reverse import (
    Sampler,
    SampleResult,
    capture_frames,
    make_sampler,
    model_device,
    reverse_process,
    seeded,
    with_final_frame,
)
from .runtime.device import pick_device
from .runtime.graphs import CudaGraphs, sampling_net
from .runtime.memory import check_sampling_memory, out_of_memory
from .runtime.threads import cpu_threads, pick_threads
from .schedule import NoiseSchedule
from .storage.checkpoint import CheckpointError, PathLike, load_checkpoint, stored_prediction


def sample(
    model: Callable[..., torch.Tensor],
    schedule: NoiseSchedule,
    n: int = 4,
    sampler: Optional[Sampler] = None,
    *,
    labels: Optional[Labels] = None,
    seed: Optional[int] = None,
    generator: Optional[torch.Generator] = None,
    every: Optional[int] = None,
    progress: bool = True,
    image_size: Optional[int] = None,
    channels: Optional[int] = None,
    cuda_graphs: CudaGraphs = "off",
    **options: Any,
) -> SampleResult:
    """Draw ``n`` images by running the reverse process from x_T ~ N(0, I).

    Args:
        model: eps_theta, called as ``model(x_t [n, C, H, W], t LongTensor [n])``, or
            ``model(x_t, t, labels LongTensor [n])`` when ``model.config.num_classes`` is set;
            it runs on its own device (that of its first parameter, else the CPU), in eval
            mode, under ``torch.no_grad`` (its train/eval mode is restored afterwards).
        schedule: the noise schedule the model was trained with.
        n: how many images.
        sampler, options: a :class:`Sampler`, and/or its fields as keywords
            (``method="dpm_solver", eta=1``); default DDPM, Algorithm 2.
        labels: for a conditional model, the class of the images: an int (all n images) or a
            LongTensor [n] in 0..num_classes-1, steered by the sampler's ``guidance_scale``.
            None draws unconditionally (the "no class" label ``num_classes``). An error for an
            unconditional model.
        seed: seeds a CPU ``torch.Generator`` that draws x_T and every z, so the same seed gives
            the same images on CPU and GPU. Give ``seed`` or ``generator``, not both.
        every: capture a :class:`Frame` every ``every`` steps (the first step, T-1, always
            included) and after the last step. Each frame holds 2 n C H W floats on the CPU.
        progress: show a ``tqdm`` progress bar.
        image_size, channels: the image shape; default from ``model.config`` (``image_size``,
            ``image_channels``) when the model has one.
        cuda_graphs: ``"on"`` replays the net from a CUDA graph on a GPU (:mod:`.runtime.graphs`).
    Returns:
        A :class:`SampleResult` with ``.images`` [n, C, H, W] in [-1, 1] on the CPU and
        ``.frames`` (``frames[-1].x_t`` equals ``.images``).
    Raises:
        ValueError: before any work, on a bad argument or when the n images would not fit in
            memory (:func:`.runtime.memory.check_sampling_memory`, which names an n that fits);
            after the loop, when the model produced NaN or infinite values.
    """
    if not callable(model):
        raise ValueError(
            f"model must be the noise-prediction net, called as model(x_t, t), got "
            f"{type(model).__name__}: load one with load_for_sampling(path), or train one."
        )
    sampler = make_sampler(sampler, options)
    whole_number(n, "n (the number of images)")
    generator = seeded(seed, generator)
    timesteps = sampler.timesteps(schedule)
    shape = (n, *_image_shape(model, image_size, channels))
    _, null, _ = resolve_labels(model, labels, sampler.guidance_scale, n)  # errors before work
    device = model_device(model)
    check_sampling_memory(model, shape[1:], n, device, guided=null is not None)
    net = sampling_net(model, device, cuda_graphs, tqdm.write)
    callback, frames = capture_frames(every, schedule, sampler.clip)
    x = _draw(shape, generator, device)  # x_T ~ N(0, I)
    with cpu_threads(pick_threads(None, device)):  # chosen once
        try:
            result = reverse_process(net, schedule, x, timesteps, sampler, generator=generator,
                                     labels=labels, callback=callback, progress=progress)  # fmt: skip
        except (RuntimeError, MemoryError) as err:
            raise out_of_memory(err, "sampling") or err from err
    return with_final_frame(result, frames, every)


def _image_shape(model: Any, image_size: Optional[int], channels: Optional[int]) -> tuple:
    """(C, H, W) from the arguments, falling back on ``model.config`` when it has the fields."""
    config = getattr(model, "config", None)
    if image_size is None:
        image_size = getattr(config, "image_size", None)
    if channels is None:
        channels = getattr(config, "image_channels", None)
        if channels is None:  # a given 0 is refused below, not replaced
            channels = getattr(config, "channels", None)
    for name, value in (("image_size", image_size), ("channels", channels)):
        if value is None:
            raise ValueError(f"{name} is not known: pass {name}=... (the model has no config).")
        whole_number(value, name)
    return (channels, image_size, image_size)


def _draw(shape: tuple, generator: Optional[torch.Generator], device: torch.device) -> torch.Tensor:
    """x_T ~ N(0, I), drawn on the generator's device (the CPU for a seed), then moved."""
    where = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=where).to(device)


def load_for_sampling(
    path: PathLike, device: Optional[Union[str, torch.device]] = None
) -> tuple[torch.nn.Module, NoiseSchedule, dict]:
    """What a sampler needs from a checkpoint: the noise predictor (the EMA weights, in eval
    mode, on ``device``, default the fastest; read as eps whatever the net was trained to
    predict), the noise schedule it was trained with, and the whole checkpoint dict."""
    net, state = load_checkpoint(path)
    config = state.get("schedule_config")
    if not isinstance(config, dict) or not config:
        raise CheckpointError(f"{path} does not say which noise schedule it was trained with.")
    try:
        schedule = NoiseSchedule(**config)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"the schedule config in {path} is not valid: {err}") from err
    net = net.to(pick_device(device)).eval()
    return noise_predictor(net, prediction(stored_prediction(state)), schedule), schedule, state
