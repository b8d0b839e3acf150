"""Small nets and pictures shared by the training, data and checkpoint tests, and the config
of the stand-in models of the sampler tests."""

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

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


# The template oracle of the guidance tests: K classes of SIZE px grey pictures, one template
# each. For label y it knows that the pictures of class y are all one template m_y ("no class"
# is mid-grey, m_null = 0), so its noise prediction is eq. 4 solved for the noise. Guided by w
# it predicts the noise of m_null + w (m_y - m_null) = w m_y, and a deterministic sampler lands
# there exactly (clipped to [-1, 1]).
K, SIZE = 4, 8


def templates():
    """K pictures [K, 1, 8, 8]: background -0.5, a +0.5 square in quadrant c for class c.
    All have the same norm, so a nearest-template classifier ties on mid-grey."""
    m = torch.full((K, 1, SIZE, SIZE), -0.5)
    for c in range(K):
        r, q = divmod(c, 2)
        m[c, :, 4 * r : 4 * r + 4, 4 * q : 4 * q + 4] = 0.5
    return m


class TemplateOracle(nn.Module):
    """eps(x_t, t, y) = (x_t - sqrt(abar_t) m_y) / sqrt(1 - abar_t), m_K (no class) = 0."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule
        self.register_buffer("means", torch.cat([templates(), torch.zeros(1, 1, SIZE, SIZE)]))
        self.config = StandInConfig(SIZE, image_channels=1, num_classes=K)

    def forward(self, x, t, labels):
        abar = self.schedule.gather(self.schedule.alpha_bars, t, x)
        return (x - abar.sqrt() * self.means[labels]) / (1 - abar).sqrt()


class NearestTemplate(nn.Module):
    """A stand-in for evaluate.DigitClassifier: logits -||x - m_c||^2, features = pixels.
    The templates are a (frozen) parameter: evaluate finds the device from the parameters."""

    def __init__(self):
        super().__init__()
        self.means = nn.Parameter(templates(), requires_grad=False)

    def features(self, x):
        return x.flatten(1)

    def forward(self, x):
        return -(torch.cdist(x.flatten(1), self.means.flatten(1)) ** 2)


def smooth_picture(size=48, seed=0):
    """A smooth random RGB picture in [-1, 1]: a 6x6 grid of random colours, bilinearly
    enlarged (no two places alike, so a shifted or reshuffled copy is far from it)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 6, 6, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(coarse, size=size, mode="bilinear", align_corners=True)


def shuffled_blocks(picture, block=16, seed=0):
    """The picture cut into block x block tiles, put back in a random order with no tile in its
    own place: every patch inside a tile is still in the picture, but nothing is where it was."""
    _, c, h, w = picture.shape
    n = h // block
    tiles = (
        picture.reshape(c, n, block, n, block)
        .permute(1, 3, 0, 2, 4)
        .reshape(n * n, c, block, block)
    )
    order = torch.roll(torch.randperm(n * n, generator=torch.Generator().manual_seed(seed)), 1)
    moved = tiles[order].reshape(n, n, c, block, block).permute(2, 0, 3, 1, 4)
    return moved.reshape(1, c, h, w)
