"""Small nets and pictures shared by the training, data and checkpoint tests, and the config
of the stand-in models of the sampler tests."""

from dataclasses import dataclass
from typing import Optional

import torch

from diffusion_helpers.schedule import NoiseSchedule
from diffusion_helpers.unet import UNet, UNetConfig

SCHEDULE = NoiseSchedule(num_steps=1000)
# Pinned to the CPU in fp32 so results are the same on a machine with a GPU.
FAST = dict(progress=False, precision="fp32", device="cpu")


@dataclass
class StandInConfig:
    """The ``config`` of a stand-in model: the fields of a U-Net's config the samplers read."""

    image_size: int
    image_channels: int = 3
    num_classes: Optional[int] = None


def tiny_config(**overrides):
    """The config of a 2-level U-Net for 16 px pictures (a few thousand parameters)."""
    cfg = dict(
        image_channels=3,
        base_channels=8,
        channel_mults=(1, 2),
        attention_resolutions=(8,),
        image_size=16,
        norm_groups=4,
    )
    return UNetConfig(**{**cfg, **overrides})


def tiny_model(seed=0, **overrides):
    """The U-Net of :func:`tiny_config`, its initial weights seeded."""
    return UNet(tiny_config(**overrides), seed=seed)


def ramp_picture():
    """A 16 px RGB picture with structure: a horizontal ramp in red, vertical in green."""
    ramp = torch.linspace(-1, 1, 16)
    return torch.stack([ramp.expand(16, 16), ramp[:, None].expand(16, 16), -ramp.expand(16, 16)])


def images(n=1, size=16, seed=0, channels=3):
    """Smooth pictures in [-1, 1]: a gradient plus a blob, plus a little seeded noise."""
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(-1, 1, size)
    base = torch.stack([ramp[None, :].expand(size, size), ramp[:, None].expand(size, size)])
    base = torch.cat([base, base[:1] * base[1:]])[:channels]
    noise = torch.rand(n, channels, size, size, generator=g)
    return (base[None].repeat(n, 1, 1, 1) * 0.8 + 0.2 * noise).clamp(-1, 1)


def flat(model):
    """All parameters of a model as one vector."""
    return torch.cat([p.detach().flatten() for p in model.parameters()])
