"""Editing a picture with a trained model: SDEdit and RePaint inpainting.

Both run the reverse process of :mod:`.reverse` (:func:`.reverse.reverse_process`, the same
loop, methods and guidance) from a picture instead of from pure noise:

- :func:`edit` (SDEdit, Meng et al. 2022): noise the picture part of the way with eq. 4, then
  denoise it. Little noise keeps the picture; much noise keeps only its rough layout and
  colours, and the model redraws the rest as it would draw it.
- :func:`inpaint` (RePaint, Lugmayr et al. 2022): fill the masked part of a picture. After every
  reverse step the kept part is replaced by the picture noised to that step, so the model only
  ever fills in; resampling (going back a few steps and redoing them) lets the filled part
  agree with the kept part.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import torch

from .checks.tensors import check_mask, check_range
from .checks.values import number, whole_number
from .forward import add_noise, draw_noise
from .guidance import Labels, resolve_labels
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
from .schedule import NoiseSchedule

# RePaint's resampling, off by default: each `jump`-long stretch of steps runs `resample` times
# in all, at `resample` times the cost (Lugmayr et al. used 10 and 10 on 250 steps). Measured on
# the shipped memorised model, 4 images, PSNR of the filled part (bench/sample_speed.py
# --inpaint; one shared CPU thread): with DDPM-1000 it gained nothing (centre quarter: 44.7 dB
# off, 44.3 at resample 2 / jump 10, 45.0 at 4 / 10, for 1.8x and 3.3x the time; right half:
# 43.9 off, 43.9 at 2 / 10); with DDIM-50 (right half, --fill right --method ddim) it helped,
# 35.4 dB off, 40.4 at resample 4 / jump 5 (3.8x the time). So: turn it on for few-step methods.
DEFAULT_RESAMPLE = 1
DEFAULT_JUMP = 10  # RePaint's jump length; used when resample > 1


def edit(
    model: Callable[..., torch.Tensor],
    schedule: NoiseSchedule,
    image: torch.Tensor,
    strength: float,
    sampler: Optional[Sampler] = None,
    *,
    labels: Optional[Labels] = None,
    seed: Optional[int] = None,
    every: Optional[int] = None,
    progress: bool = True,
    **options: Any,
) -> SampleResult:
    """SDEdit (Meng et al. 2022): noise ``image`` to t0 = round(strength T) - 1 by eq. 4,

        x_t0 = sqrt(abar_t0) image + sqrt(1 - abar_t0) eps,

    then run the reverse process from t0 to a clean image (DDPM: t0, t0-1, ..., 0; DDIM:
    steps from t0 to 0 evenly spaced in t; DPM-Solver: evenly in log-SNR).

    Args:
        model, schedule, labels, every, progress: as for :func:`.runtime.reverse.sample`.
        image: the pictures [n, C, H, W] in [-1, 1].
        strength: how much noise, in [0, 1]. 0 returns ``image`` unchanged; 1 starts from
            x_{T-1}, almost pure noise (at T = 1000, sqrt(abar) = 0.006 of the
            picture is left), so it is plain sampling.
        sampler, options: a :class:`.reverse.Sampler` and/or its fields as keywords. Without
            ``steps``, DDIM and DPM-Solver take as many steps per timestep as in a whole run
            (:meth:`.reverse.Sampler.timesteps`).
        seed: seeds the CPU generator that draws the noise of eq. 4 and of the reverse steps.
    Returns:
        A :class:`.reverse.SampleResult`: ``.images`` [n, C, H, W] in [-1, 1] on the CPU;
        ``.timesteps`` starts at t0 (empty for strength 0).
    """
    sampler = make_sampler(sampler, options)
    check_range(image, "image")
    number(strength, "strength", 0.0, 1.0, hint=" 0 keeps the picture, 1 starts from pure noise.")
    resolve_labels(model, labels, sampler.guidance_scale, image.shape[0])
    generator = seeded(seed)
    t0 = round(strength * schedule.num_steps) - 1
    if t0 == -1:  # no noise: nothing to denoise
        return SampleResult(image.detach().float().cpu().clone(), [], sampler, [])
    timesteps = sampler.timesteps(schedule, start=t0)  # t0, ..., 0, -1
    picture = image.detach().to(model_device(model), torch.float32)
    x, _ = add_noise(picture, t0, schedule, generator=generator)  # eq. 4
    callback, frames = capture_frames(every, schedule, sampler.clip)
    result = reverse_process(model, schedule, x, timesteps, sampler, generator=generator,
                             labels=labels, callback=callback, progress=progress)  # fmt: skip
    return with_final_frame(result, frames, every)


def inpaint(
    model: Callable[..., torch.Tensor],
    schedule: NoiseSchedule,
    image: torch.Tensor,
    mask: torch.Tensor,
    sampler: Optional[Sampler] = None,
    *,
    resample: int = DEFAULT_RESAMPLE,
    jump: int = DEFAULT_JUMP,
    labels: Optional[Labels] = None,
    seed: Optional[int] = None,
    every: Optional[int] = None,
    progress: bool = True,
    **options: Any,
) -> SampleResult:
    """RePaint (Lugmayr et al. 2022): fill the part of ``image`` where ``mask`` is 0.

    Starting from x_T ~ N(0, I), after every reverse step t -> t_prev the kept part is replaced
    by the picture noised to t_prev (eq. 4 with fresh noise; the picture itself at the end):

        x_{t_prev} = mask * q(x_{t_prev} | image) + (1 - mask) * x_{t_prev}.

    Resampling (RePaint sec. 4.2): every ``jump`` steps, go back ``jump`` steps by the forward
    process (:func:`.reverse.forward_jump`, the closed form of the chain q(x_{t+j} | x_t)) and
    redo them, so that each stretch of ``jump`` steps runs ``resample`` times in all.
    ``resample=1`` (the default) turns it off. It costs about ``resample`` times a plain run;
    see :data:`DEFAULT_RESAMPLE` for what it gained where.

    Args:
        image: the pictures [n, C, H, W] in [-1, 1].
        mask: 1 = keep, 0 = fill; [1 or n, 1 or C, H, W] (bool, or 0/1 numbers).
        resample, jump: integers >= 1 (defaults :data:`DEFAULT_RESAMPLE`, off, and
            :data:`DEFAULT_JUMP`); with resampling, ``jump`` is at most the number of steps.
        sampler, options, labels, every, progress: as for :func:`.runtime.reverse.sample`.
        seed: seeds the CPU generator that draws x_T, the noise of the kept part and of the
            reverse steps.
    Returns:
        A :class:`.reverse.SampleResult`: ``.images`` [n, C, H, W] on the CPU, equal to
        ``image`` where ``mask`` is 1; ``.timesteps`` includes the rises of resampling.
    """
    sampler = make_sampler(sampler, options)
    check_range(image, "image")
    keep = check_mask(mask, image)
    if bool(keep.all()):
        raise ValueError("mask is all ones: nothing to fill. Mark the part to fill with 0.")
    if not bool(keep.any()):
        raise ValueError(
            "mask is all zeros: everything is to be filled. That is sampling: use sample()."
        )
    resolve_labels(model, labels, sampler.guidance_scale, image.shape[0])
    base = sampler.timesteps(schedule)
    whole_number(resample, "resample")
    whole_number(jump, "jump")
    if resample > 1 and jump > len(base) - 1:
        raise ValueError(
            f"jump={jump} is longer than the run ({len(base) - 1} steps): resampling would "
            "never happen. Use a shorter jump, or resample=1."
        )
    generator = seeded(seed)
    device = model_device(model)
    picture = image.detach().to(device, torch.float32)
    keep = keep.to(device)

    def paste_known(x: torch.Tensor, t_prev: int) -> torch.Tensor:
        """The kept part of x_{t_prev} is the picture noised to t_prev (eq. 4)."""
        known = picture if t_prev == -1 else add_noise(picture, t_prev, schedule,
                                                       generator=generator)[0]  # fmt: skip
        return torch.where(keep, known, x)

    x = draw_noise(picture, generator=generator)  # x_T ~ N(0, I) everywhere
    timesteps = repaint_timesteps(base, resample, jump)
    callback, frames = capture_frames(every, schedule, sampler.clip)
    result = reverse_process(model, schedule, x, timesteps, sampler, generator=generator,
                             labels=labels, callback=callback, progress=progress,
                             after_step=paste_known)  # fmt: skip
    return with_final_frame(result, frames, every)


def repaint_timesteps(timesteps: list[int], resample: int, jump: int) -> list[int]:
    """RePaint's schedule (Lugmayr et al. 2022, sec. 4.2 and their ``get_schedule_jump``):
    walk down ``timesteps`` (ending at -1); each time ``jump`` more steps are done, go back
    up to where they started and redo them, ``resample - 1`` more times. No jump starts from
    the clean image (-1) or rises above ``timesteps[0]``.

    Example: ``repaint_timesteps([4, 3, 2, 1, 0, -1], 2, 2)`` is
    ``[4, 3, 2, 4, 3, 2, 1, 0, 2, 1, 0, -1]``.
    """
    out = [timesteps[0]]
    for i in range(1, len(timesteps)):
        out.append(timesteps[i])
        if i % jump == 0 and timesteps[i] != -1:
            for _ in range(resample - 1):
                out.extend(timesteps[i - jump : i + 1])  # up to timesteps[i - jump], then down
    return out
