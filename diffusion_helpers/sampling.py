"""Sampling: run the learned reverse process from pure noise to an image, and measure the result.

All samplers share one loop and one calling convention (as in k-diffusion): start from
x_T ~ N(0, I), and at each visited timestep ask the model for eps_theta(x_t, t), then take one
step back in time.

- ``method="ddpm"``: all T steps of DDPM Algorithm 2, through :func:`.reverse.reverse_step`.
- ``method="ddim"``: ``steps`` evenly spaced timesteps (:func:`ddim_timesteps`), through
  :func:`.reverse.ddim_step` (Song et al. 2021, eq. 12). With ``eta = 0`` it is deterministic:
  the image depends only on x_T.
- ``method="dpm_solver"``: DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2) on timesteps
  evenly spaced in log-SNR (:func:`logsnr_timesteps`), through
  :func:`.reverse.dpm_solver_2m_step`. With ``eta = 0`` (default) a second-order solver of the
  same ODE as DDIM with eta = 0, which it solves in 10-20 steps; with ``eta = 1`` the SDE
  variant (SDE-DPM-Solver++(2M), diffusers' ``"sde-dpmsolver++"``), which adds fresh noise as
  DDPM does. On the shipped memorised model (8 images, PSNR against its picture, seed 0):
  DDPM-1000 38.1 dB; the ODE, however finely solved, about 24 dB (DDIM-1000 with eta = 0 as
  well); SDE-DPM-Solver++ 39.0 dB in 20 steps and 35.7 dB in 10: the noise corrects the
  model's errors, and the second order takes it there in few steps.

A conditional model (``model.config.num_classes``) can be steered to a class with
classifier-free guidance (Ho & Salimans 2022): ``labels=...``, ``guidance_scale=...``.

:func:`reverse_process` is the loop itself, starting from any x at any timestep: :mod:`.editing`
uses it for SDEdit and RePaint. :func:`psnr` says how close the samples came to a reference
image (the learner's picture).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Optional

import torch
from tqdm.auto import tqdm

from .env import cpu_threads, pick_threads
from .forward import check_image, draw_noise
from .graphs import CudaGraphs, sampling_net
from .guidance import (
    DEFAULT_GUIDANCE,  # noqa: F401  (sample's default w, named here too)
    Labels,
    check_labels,
    guided_noise,
    resolve_labels,
)
from .reverse import (
    CLIP_X0,
    VARIANCES,
    ddim_step,
    dpm_solver_2m_step,
    predict_x0,
    reverse_step,
)
from .schedule import NoiseSchedule
from .timesteps import (  # noqa: F401  (re-exported: sampling.ddim_timesteps etc. stay valid)
    DEFAULT_DDIM_STEPS,
    DEFAULT_DPM_SOLVER_STEPS,
    DEFAULT_STEPS,
    METHODS,
    Method,
    ddim_timesteps,
    logsnr_timesteps,
    method_timesteps,
)


@dataclass
class Frame:
    """One captured moment of the reverse process (on the CPU).

    ``x_t`` is the input to step ``t``; ``x0_pred`` is the model's estimate of x_0 at that step
    (eq. 15, clipped to [-1, 1] when the sampler clips). The final frame of a run holds the
    finished images: its ``t`` is the step that produced them (t = 0 for DDPM, the last visited
    timestep for DDIM and DPM-Solver) and both ``x_t`` and ``x0_pred`` are the final images.
    """

    t: int
    x_t: torch.Tensor  # [n, C, H, W]
    x0_pred: torch.Tensor  # [n, C, H, W]


@dataclass
class SampleResult:
    """What :func:`sample` returns.

    Attributes:
        images: the final images [n, C, H, W] on the CPU, clamped to the data range [-1, 1].
        frames: the captured :class:`Frame` list (empty unless ``every`` was given).
        method: ``"ddpm"``, ``"ddim"`` or ``"dpm_solver"``.
        timesteps: the timesteps visited, in order (starting at T-1 for :func:`sample`).
    """

    images: torch.Tensor
    frames: list[Frame] = field(default_factory=list)
    method: str = "ddpm"
    timesteps: list[int] = field(default_factory=list)


def sample(
    model: Callable[..., torch.Tensor],
    schedule: NoiseSchedule,
    n: int = 4,
    image_size: Optional[int] = None,
    channels: Optional[int] = None,
    method: Method = "ddpm",
    steps: Optional[int] = None,
    eta: float = 0.0,
    variance: Literal["posterior", "beta"] = "posterior",
    clip: bool = CLIP_X0,
    seed: Optional[int] = None,
    generator: Optional[torch.Generator] = None,
    every: Optional[int] = None,
    progress: bool = True,
    labels: Optional[Labels] = None,
    guidance_scale: Optional[float] = None,
    cuda_graphs: CudaGraphs = "auto",
) -> SampleResult:
    """Draw ``n`` images by running the reverse process from x_T ~ N(0, I).

    ``method="ddpm"`` is DDPM Algorithm 2 (all T steps, :func:`.reverse.reverse_step`);
    ``method="ddim"`` takes ``steps`` DDIM steps (Song et al. 2021, eq. 12; default 50);
    ``method="dpm_solver"`` takes ``steps`` DPM-Solver++(2M) steps (Lu et al. 2022; default 20),
    the SDE variant with ``eta=1``.

    Args:
        model: eps_theta, called as ``model(x_t [n, C, H, W], t LongTensor [n])``, or
            ``model(x_t, t, labels LongTensor [n])`` when ``model.config.num_classes`` is set;
            it runs on its own device (that of its first parameter, else the CPU), in eval
            mode, under ``torch.no_grad`` (its train/eval mode is restored afterwards).
        schedule: the noise schedule the model was trained with.
        n: how many images.
        image_size, channels: the image shape; default from ``model.config`` (``image_size``,
            ``image_channels``) when the model has one.
        steps: DDIM / DPM-Solver steps (1..T; default 50 and 20). DDPM always takes all T;
            another number is an error.
        eta: fresh noise for ``method="ddim"`` (0 = deterministic, 1 = DDPM-like) and
            ``"dpm_solver"`` (in [0, 1]: 0 solves the ODE, 1 the SDE); DDPM has its own. The
            noise lets later steps correct earlier errors: for the tiny net trained 450 steps on
            one 32 px picture, DDIM-50 gave 19 dB PSNR with eta = 0 and 35 dB with eta = 1.
        variance: sigma_t^2 of Algorithm 2, ``"posterior"`` (beta_tilde) or ``"beta"``; only
            for ``method="ddpm"``.
        clip: clip the predicted x_0 to [-1, 1] at every step; the default is
            :data:`.reverse.CLIP_X0` (why: see there), the same as for a hand-run step.
            False is the plain Algorithm 2 / eq. 12.
        seed: seeds a CPU ``torch.Generator`` that draws x_T and every z, so the same seed gives
            the same images on CPU and GPU. Give ``seed`` or ``generator``, not both.
        every: capture a :class:`Frame` every ``every`` steps (the first step, T-1, always
            included) and after the last step. Each frame holds 2 n C H W floats on the CPU.
        progress: show a ``tqdm`` progress bar.
        labels: for a conditional model, the class of the images: an int (all n images) or a
            LongTensor [n] in 0..num_classes-1. None draws unconditionally (the "no class"
            label ``num_classes``). An error for an unconditional model.
        guidance_scale: classifier-free guidance weight w (see :func:`guided_noise`): 1 is
            plain conditional sampling, 0 unconditional, > 1 stronger class features; default
            :data:`DEFAULT_GUIDANCE` when ``labels`` are given. Needs ``labels``.
        cuda_graphs: on a GPU, replay the net's forward pass from a CUDA graph (``"auto"``:
            from 20 steps; ``"on"``, ``"off"``); see :func:`.graphs.sampling_net`.
    Returns:
        A :class:`SampleResult` with ``.images`` [n, C, H, W] in [-1, 1] on the CPU and
        ``.frames`` (``frames[-1].x_t`` equals ``.images``).
    """
    check_sample_args(method, n, eta, variance, every, seed, generator)
    timesteps = method_timesteps(method, schedule, steps)
    shape = (n, *_image_shape(model, image_size, channels))
    check_labels(model, labels, guidance_scale, n)  # before x_T is drawn: errors come first
    if seed is not None:
        generator = torch.Generator(device="cpu").manual_seed(seed)
    x = _draw(shape, generator, model_device(model))  # x_T ~ N(0, I)
    return reverse_process(
        model,
        schedule,
        x,
        timesteps,
        method=method,
        eta=eta,
        variance=variance,
        clip=clip,
        generator=generator,
        labels=labels,
        guidance_scale=guidance_scale,
        every=every,
        progress=progress,
        cuda_graphs=cuda_graphs,
    )


def reverse_process(
    model: Callable[..., torch.Tensor],
    schedule: NoiseSchedule,
    x: torch.Tensor,
    timesteps: list[int],
    *,
    method: Method = "ddpm",
    eta: float = 0.0,
    variance: str = "posterior",
    clip: bool = CLIP_X0,
    generator: Optional[torch.Generator] = None,
    labels: Optional[Labels] = None,
    guidance_scale: Optional[float] = None,
    every: Optional[int] = None,
    progress: bool = True,
    after_step: Optional[Callable[[torch.Tensor, int], torch.Tensor]] = None,
    cuda_graphs: CudaGraphs = "auto",
) -> SampleResult:
    """Run the reverse process on ``x`` = x_{timesteps[0]} along ``timesteps`` (ending at -1).

    A falling pair (t, t_prev) is one reverse step of ``method``, the model called at t. A
    rising pair (t, t_next), which only RePaint's schedule has, goes forward in time by
    q(x_{t_next} | x_t) (:func:`forward_jump`). :func:`sample` starts from x_T ~ N(0, I) at
    T-1; :func:`.editing.edit` from a noised picture at an earlier t.

    Args:
        x: the images at timesteps[0] [n, C, H, W], on the model's device.
        timesteps: the visited timesteps, the last one -1 (the clean images).
        after_step: called as ``after_step(x, t_prev)`` after every step; what it returns
            replaces x (RePaint pastes the known region of the picture there).
        The rest as for :func:`sample`.
    Returns:
        A :class:`SampleResult`; ``timesteps`` is ``timesteps[:-1]``.
    """
    check_image(x, "x")
    cond, null, w = resolve_labels(model, labels, guidance_scale, x.shape[0], x.device)
    step = _make_step(method, schedule, eta, variance, clip, generator)
    frames: list[Frame] = []
    pairs = list(zip(timesteps[:-1], timesteps[1:]))
    net = sampling_net(model, x.device, sum(b < a for a, b in pairs), cuda_graphs, tqdm.write)
    was_training = getattr(model, "training", None)
    if was_training is not None:
        model.eval()
    try:
        with torch.no_grad(), cpu_threads(pick_threads(None, x.device)):
            for i, (t, t_next) in enumerate(tqdm(pairs, desc="sampling", disable=not progress)):
                if t_next > t:  # RePaint: back up in time by the forward process
                    x = forward_jump(x, t, t_next, schedule, generator)
                    continue
                t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
                eps = guided_noise(net, x, t_batch, cond, null, w)  # eps_theta(x_t, t)
                if every is not None and i % every == 0:
                    x0_pred = predict_x0(x, t, eps, schedule)  # eq. 15
                    x0_pred = x0_pred.clamp(-1.0, 1.0) if clip else x0_pred
                    frames.append(Frame(t, x.float().cpu(), x0_pred.float().cpu()))
                x = step(x, t, t_next, eps)  # x_{t_prev}
                if after_step is not None:
                    x = after_step(x, t_next)
    finally:
        if was_training:
            model.train()
    images = x.clamp(-1.0, 1.0).float().cpu()
    frames.append(Frame(timesteps[-2], images, images))
    return SampleResult(images, frames if every is not None else [], method, timesteps[:-1])


def forward_jump(
    x: torch.Tensor,
    t: int,
    t_next: int,
    schedule: NoiseSchedule,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Sample q(x_{t_next} | x_t) for t_next > t (eq. 4 between two noisy steps): the chain of
    eq. 2 from t to t_next in one draw,

        x_{t_next} = sqrt(abar_{t_next} / abar_t) x_t + sqrt(1 - abar_{t_next} / abar_t) eps,

    with abar_{-1} = 1 (from the clean image it is eq. 4 itself). x: [n, C, H, W].
    """
    ratio = float(schedule.alpha_bars[t_next] / schedule.alpha_bars_prev[t + 1])
    return math.sqrt(ratio) * x + math.sqrt(1 - ratio) * draw_noise(x, generator=generator)


def _make_step(
    method: str,
    schedule: NoiseSchedule,
    eta: float,
    variance: str,
    clip: bool,
    generator: Optional[torch.Generator],
) -> Callable[[torch.Tensor, int, int, torch.Tensor], torch.Tensor]:
    """One reverse step with the options fixed: ``step(x_t, t, t_prev, eps) -> x_{t_prev}``."""
    if method == "ddpm":  # Algorithm 2, line 4 (t_prev is t - 1); z drawn from `generator`
        return lambda x, t, t_prev, eps: reverse_step(
            x, t, eps, schedule, generator=generator, variance=variance, clip=clip
        )
    if method == "ddim":  # Song et al. eq. 12; z drawn only when eta > 0
        return lambda x, t, t_prev, eps: ddim_step(
            x, t, t_prev, eps, schedule, eta=eta, generator=generator, clip=clip
        )
    # DPM-Solver++(2M) needs the data prediction of the step that led to x_t. It is kept by
    # the timestep that step landed on, so after a RePaint jump (a new start) the step is first
    # order again.
    landed: dict[int, tuple[int, torch.Tensor]] = {}

    def dpm_step(x: torch.Tensor, t: int, t_prev: int, eps: torch.Tensor) -> torch.Tensor:
        previous = landed.pop(t, None)
        landed.clear()
        x_prev, x0_hat = dpm_solver_2m_step(
            x, t, t_prev, eps, schedule, previous, clip=clip, eta=eta, generator=generator
        )
        landed[t_prev] = (t, x0_hat)
        return x_prev

    return dpm_step


def psnr(images: torch.Tensor, reference: torch.Tensor, mirror: bool = False) -> torch.Tensor:
    """Peak signal-to-noise ratio of each image against a reference, in dB: 10 log10(1 / MSE).

    Both are mapped from [-1, 1] to [0, 1] by (x + 1) / 2 and clamped to [0, 1] first, so the
    peak is 1. Identical images give ``inf`` (MSE = 0). Roughly: 20 dB is a recognisable copy,
    30 dB hard to tell apart by eye.

    Args:
        images: [n, C, H, W] in [-1, 1].
        reference: [C, H, W], [1, C, H, W] or [n, C, H, W] in [-1, 1].
        mirror: compare against the nearer of the reference and its left-right mirror
            (a model trained with horizontal flips may draw either).
    Returns:
        A float64 tensor [n] on the CPU.
    """
    check_image(images, "images")
    if isinstance(reference, torch.Tensor) and reference.dim() == 3:
        reference = reference.unsqueeze(0)
    check_image(reference, "reference")
    if reference.shape[1:] != images.shape[1:] or reference.shape[0] not in (1, images.shape[0]):
        raise ValueError(
            f"reference has shape {list(reference.shape)} but images have {list(images.shape)}: "
            "give one reference image [C, H, W] of the same size, or one per image."
        )
    x = ((images.detach().double().cpu() + 1) / 2).clamp(0, 1)
    ref = ((reference.detach().double().cpu() + 1) / 2).clamp(0, 1)
    mse = ((x - ref) ** 2).mean(dim=(1, 2, 3))
    if mirror:
        mse = torch.minimum(mse, ((x - ref.flip(-1)) ** 2).mean(dim=(1, 2, 3)))
    return 10 * torch.log10(1.0 / mse)


def check_sample_args(
    method: str,
    n: int,
    eta: float,
    variance: str,
    every: Optional[int],
    seed: Optional[int],
    generator: Optional[torch.Generator],
) -> None:
    """Raise ``ValueError`` naming the first bad argument of :func:`sample` (also used by
    :mod:`.editing`), before anything runs."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}.")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n (the number of images) must be an integer >= 1, got {n!r}.")
    if not isinstance(eta, (int, float)) or not math.isfinite(eta) or eta < 0:
        raise ValueError(f"eta must be a number >= 0 (0 is deterministic DDIM), got {eta!r}.")
    if method == "ddpm" and eta != 0:
        raise ValueError(
            f"eta={eta} only applies to method='ddim' or 'dpm_solver'; DDPM's noise is `variance`."
        )
    if method == "dpm_solver" and eta > 1:
        raise ValueError(
            f"eta={eta} with method='dpm_solver': it must be in [0, 1] (0 solves the ODE, "
            "1 the SDE)."
        )
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {', '.join(VARIANCES)}; got {variance!r}.")
    if method != "ddpm" and variance != "posterior":
        raise ValueError(
            f"variance only applies to method='ddpm'; method={method!r} does not use it."
        )
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
        raise ValueError(
            f"every must be None or an integer >= 1 (steps between frames), got {every!r}."
        )
    if seed is not None and generator is not None:
        raise ValueError("give seed or generator, not both: the seed would replace the generator.")


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
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
    return (channels, image_size, image_size)


def model_device(model: Any) -> torch.device:
    """The device of the model's first parameter or buffer; the CPU for a plain function."""
    for tensors in (getattr(model, "parameters", None), getattr(model, "buffers", None)):
        if tensors is not None:
            first = next(iter(tensors()), None)
            if first is not None:
                return first.device
    return torch.device("cpu")


def _draw(shape: tuple, generator: Optional[torch.Generator], device: torch.device) -> torch.Tensor:
    """x_T ~ N(0, I), drawn on the generator's device (the CPU for a seed), then moved."""
    where = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=where).to(device)
