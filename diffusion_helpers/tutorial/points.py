"""Notebook 07's 2D world, made from the learner's picture.

A cloud of N points is a tensor [N, 2, 1, 1]: N "pictures" of one pixel whose two channels are
x and y in [-1, 1]. So ``add_noise``, ``train`` and ``sample`` run on points unchanged; the
models here carry a ``config`` of that shape (:class:`PointShape`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..checks.tensors import check_points, check_range, one_picture
from ..checks.values import number, whole_number
from ..checks.values import seed as check_seed
from ..pictures.data import match_channels
from ..schedule import NoiseSchedule, Timesteps
from ..unet import timestep_embedding

# A pixel is drawn with odds darkness^8: on the bundled face (a black outline on a teal
# background of darkness 0.48) the background gets 4% of the points, against 56% at power 1.
DARKNESS_POWER = 8.0
MIN_DARKNESS = 0.15  # a picture with nothing darker (grey 217 of 255) has no shapes to draw


class PointShape:
    """A point as the samplers and ``train`` see it: a 1x1 picture with two channels, no classes."""

    image_size: ClassVar[int] = 1
    image_channels: ClassVar[int] = 2
    num_classes: ClassVar[Optional[int]] = None


def points_from_picture(
    picture: torch.Tensor, n: int, seed: int = 0, power: float = DARKNESS_POWER
) -> torch.Tensor:
    """``n`` points [n, 2, 1, 1] in [-1, 1]^2 drawn where ``picture`` [1, C, H, W] (C = 1 or 3,
    in [-1, 1]) is dark: a pixel with odds ((1 - luma) / 2)^power, then a uniform place in it.
    The longer side spans [-1, 1], x points right and y up, so a scatter plot looks like the
    picture. A picture with no dark pixels is refused (``-picture`` draws where it is light)."""
    picture = one_picture(picture)
    check_range(picture, "picture")
    whole_number(n, "n (the number of points)")
    number(power, "power", 0.0, above=True)
    _, channels, height, width = picture.shape
    if channels not in (1, 3):
        raise ValueError(f"picture must have 1 (grey) or 3 (RGB) channels, got {channels}.")
    luma = match_channels(picture.detach().cpu().double(), 1)[0, 0]  # [H, W] in [-1, 1]
    darkness = ((1 - luma) / 2).clamp(0.0, 1.0)
    darkest = float(darkness.max())
    if darkest < MIN_DARKNESS:
        raise ValueError(
            f"the picture has no dark pixels (its darkest pixel is only {darkest:.0%} of the "
            f"way from white to black; at least {MIN_DARKNESS:.0%} is needed): points are "
            "drawn where a picture is dark. Use a picture with dark shapes on a light "
            "background, or points_from_picture(-picture, n) to draw them where it is light."
        )
    generator = torch.Generator().manual_seed(check_seed(seed))
    weights = (darkness / darkest) ** power  # / darkest: the same odds, no underflow
    pixel = torch.multinomial(weights.reshape(-1), n, replacement=True, generator=generator)
    row, col = pixel // width, pixel % width
    inside = torch.rand(n, 2, generator=generator, dtype=torch.float64)  # where in the pixel
    side = max(height, width)
    x = (2 * (col + inside[:, 0]) - width) / side  # column 0 on the left, at x = -width/side
    y = (height - 2 * (row + inside[:, 1])) / side  # row 0 at the top, at y = +height/side
    return torch.stack([x, y], dim=1).float()[:, :, None, None]


@dataclass
class PointNetConfig(PointShape):
    """The widths of a :class:`PointNet`: ``hidden`` units in each of ``depth`` residual blocks;
    t embedded in ``embed_dim`` sines and cosines, and each of x and y in ``position_dim`` of
    them (0: the raw coordinates) up to ``position_scale`` radians per unit. The sines let a
    small MLP draw thin lines (tiny-diffusion does the same)."""

    hidden: int = 128
    depth: int = 3
    embed_dim: int = 32
    position_dim: int = 32
    # On the face, 3,000 steps: energy distance 9.5e-4 at 10, 1.3e-3 at 25 or 50, 1.8e-3 raw.
    position_scale: float = 10.0

    def to_dict(self) -> dict:
        """Plain dict of numbers, as checkpoints store a model's config."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PointNetConfig:
        """Rebuild a config from :meth:`to_dict`."""
        return cls(**d)


class PointBlock(nn.Module):
    """h + Linear(SiLU(Linear(SiLU(h)) + emb)), as the U-Net's ResBlock adds the time embedding."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.inner, self.outer = nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return h + self.outer(F.silu(self.inner(F.silu(h)) + emb))


class PointNet(nn.Module):
    """eps_theta(x_t, t) for points: x and y embedded, ``depth`` residual blocks that add the
    embedding of t, Linear back to 2. The last layer starts at zero (eps = 0), as the U-Net's;
    ``seed`` seeds the weights without touching torch's global generator."""

    def __init__(
        self, config: Optional[PointNetConfig] = None, *, seed: Optional[int] = None
    ) -> None:
        super().__init__()
        self.config = cfg = config if config is not None else PointNetConfig()
        for name in ("hidden", "depth", "embed_dim"):
            whole_number(getattr(cfg, name), f"config.{name}")
        whole_number(cfg.position_dim, "config.position_dim", 0)
        number(cfg.position_scale, "config.position_scale", 0.0, above=True)
        for name in ("embed_dim", "position_dim"):
            if getattr(cfg, name) % 2:
                raise ValueError(
                    f"config.{name} must be even (sines and cosines), got {getattr(cfg, name)}."
                )
        with torch.random.fork_rng(devices=[], enabled=seed is not None):  # the caller's kept
            if seed is not None:
                torch.manual_seed(check_seed(seed))
            self.time = nn.Sequential(
                nn.Linear(cfg.embed_dim, cfg.hidden), nn.SiLU(), nn.Linear(cfg.hidden, cfg.hidden)
            )
            self.inp = nn.Linear(2 * cfg.position_dim if cfg.position_dim else 2, cfg.hidden)
            self.blocks = nn.ModuleList(PointBlock(cfg.hidden) for _ in range(cfg.depth))
            self.out = nn.Linear(cfg.hidden, 2)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """eps_theta(x_t, t): x [B, 2, 1, 1], t LongTensor [B] -> [B, 2, 1, 1]."""
        check_points(x, "x")
        cfg = self.config
        xy = x.reshape(-1, 2)
        if cfg.position_dim:
            xy = torch.cat([timestep_embedding(xy[:, i] * cfg.position_scale, cfg.position_dim)
                            for i in (0, 1)], dim=1).to(x.dtype)  # fmt: skip
        emb = self.time(timestep_embedding(t, cfg.embed_dim).to(x.dtype))
        h = self.inp(xy)
        for block in self.blocks:
            h = block(h, emb)
        return self.out(F.silu(h)).reshape(-1, 2, 1, 1)

    def num_parameters(self) -> int:
        """The number of trainable numbers in the net."""
        return sum(p.numel() for p in self.parameters())


class GaussianMixture:
    """K round Gaussians N(m_k, s^2 I) with weights pi_k, and their exact score. Noising keeps
    a mixture a mixture (eq. 4):

        q(x_t) = sum_k pi_k N(x_t; sqrt(abar_t) m_k, (abar_t s^2 + 1 - abar_t) I),

    so the score s(x, t) = grad log q(x_t) is exact, and so is the best noise prediction,
    eps*(x_t, t) = -sqrt(1 - abar_t) s(x_t, t) (Tweedie): ``mixture(x_t, t)``, which
    ``dh.sample`` can sample with. ``means`` [K, 2] (or a cloud), ``std`` s >= 0, ``weights``
    [K] any positive numbers (None: equal), ``schedule`` for calls without one.
    """

    config = PointShape()

    def __init__(
        self,
        means: torch.Tensor,
        std: float,
        weights: Optional[torch.Tensor] = None,
        schedule: Optional[NoiseSchedule] = None,
    ) -> None:
        m = torch.as_tensor(means).detach().cpu().double()
        m = m.reshape(m.shape[0], 2) if m.dim() == 4 and tuple(m.shape[1:]) == (2, 1, 1) else m
        if m.dim() != 2 or m.shape[1] != 2 or m.shape[0] == 0:
            raise ValueError(f"means must be K points [K, 2], got {list(m.shape)}.")
        self.means = m
        self.std = number(std, "std", 0.0)
        w = torch.ones(len(m)) if weights is None else torch.as_tensor(weights)
        w = w.detach().cpu().double().reshape(-1)
        if w.numel() != len(m) or not bool((w > 0).all()) or not bool(torch.isfinite(w).all()):
            raise ValueError(f"weights must be {len(m)} positive numbers, one per mean.")
        self.weights = w / w.sum()
        self.schedule = schedule

    def __repr__(self) -> str:
        return f"GaussianMixture(K={len(self.means)}, std={self.std:g})"

    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``n`` draws x_0 = m_k + s z (k ~ pi, z ~ N(0, I)) as a cloud [n, 2, 1, 1] float32."""
        whole_number(n, "n (the number of points)")
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return (self.means[k] + self.std * z).float()[:, :, None, None]

    def _terms(
        self, x: torch.Tensor, t: Timesteps, schedule: Optional[NoiseSchedule]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [B, 2], sqrt(abar) [B, 1], sigma_t^2 [B, 1] and log(pi_k N(x; sqrt(abar) m_k,
        sigma_t^2 I)) [B, K], in float64."""
        schedule = schedule or self.schedule
        if schedule is None:
            raise ValueError(
                "the mixture has no noise schedule: give one, or build it with "
                "GaussianMixture(..., schedule=schedule)."
            )
        check_points(x, "x")
        xy = x.double().reshape(-1, 2)
        abar = schedule.gather(schedule.alpha_bars, t, xy).reshape(-1, 1)
        var = abar * self.std**2 + (1 - abar)  # sigma_t^2 = abar s^2 + 1 - abar
        m = self.means.to(xy.device)
        # |x - sqrt(abar) m_k|^2 expanded, so no [B, K, 2] tensor is made for K training points
        dist2 = (xy**2).sum(1, keepdim=True) - 2 * abar.sqrt() * xy @ m.T + abar * (m**2).sum(1)
        log_parts = self.weights.to(xy.device).log() - dist2.clamp(min=0) / (2 * var)
        log_parts = log_parts - torch.log(2 * math.pi * var)  # the 2D Gaussian's normaliser
        return xy, abar.sqrt(), var, log_parts

    def log_density(
        self, x: torch.Tensor, t: Timesteps, schedule: Optional[NoiseSchedule] = None
    ) -> torch.Tensor:
        """log q(x_t) of the noised mixture at timestep t, for points x [B, 2, 1, 1]: [B]."""
        return torch.logsumexp(self._terms(x, t, schedule)[3], dim=1).to(x.dtype)

    def score(
        self, x: torch.Tensor, t: Timesteps, schedule: Optional[NoiseSchedule] = None
    ) -> torch.Tensor:
        """s(x, t) = sum_k r_k (sqrt(abar) m_k - x) / sigma_t^2, with r_k = p(k | x_t); like x."""
        xy, sqrt_abar, var, log_parts = self._terms(x, t, schedule)
        r = torch.softmax(log_parts, dim=1)
        centre = sqrt_abar * (r @ self.means.to(xy.device))  # sum_k r_k sqrt(abar) m_k
        return ((centre - xy) / var).to(x.dtype).reshape(x.shape)

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The exact eps*(x_t, t) = -sqrt(1 - abar_t) s(x_t, t) (Tweedie), [B, 2, 1, 1]."""
        score = self.score(x_t, t)
        return -self.schedule.gather(self.schedule.sqrt_one_minus_alpha_bars, t, x_t) * score


def ideal_denoiser(points: torch.Tensor, schedule: NoiseSchedule) -> GaussianMixture:
    """The optimum of the training loss for a finite training set ``points`` [N, 2, 1, 1]:
    eps*(x_t, t) = (x_t - sqrt(abar_t) x0_hat) / sqrt(1 - abar_t), with x0_hat the points
    weighted by softmax_i(-|x_t - sqrt(abar_t) x_i|^2 / (2 (1 - abar_t))). That is a mixture of
    width 0 on the points; its samples land on them (memorisation)."""
    check_points(points)
    return GaussianMixture(points, std=0.0, schedule=schedule)
