"""A 2D world made from the learner's picture, for notebook 07 (the score, the reverse SDE and
the probability-flow ODE).

A cloud of N points in the plane is a tensor [N, 2, 1, 1]: N "pictures" of 1x1 pixel with two
channels, x and y, in [-1, 1]. So the package's own machinery runs on points unchanged:
``add_noise`` noises them (eq. 4), ``train`` fits a noise predictor to them (Algorithm 1),
``sample`` and ``reverse_process`` run every sampler on them. The models here carry a
``config`` with ``image_size = 1``, ``image_channels = 2`` and no classes, which is what
``sample`` and ``train`` read.

- :func:`points_from_picture`: points drawn where the picture is dark.
- :class:`PointNet`: a small MLP eps_theta(x_t, t), trained by ``dh.train`` as the U-Net is.
- :class:`GaussianMixture`: data whose noised densities q(x_t) are known exactly, so the score
  s(x, t) = grad log q(x_t) and the optimal noise prediction
  eps*(x_t, t) = -sqrt(1 - abar_t) s(x_t, t) (Tweedie's formula) are exact too.
- :func:`ideal_denoiser`: the exact optimum of the training loss for a finite training set:
  a mixture of Gaussians of width 0 centred on the training points. Sampling with it gives
  back the training points (memorisation).
- :func:`energy_distance`: how far apart two clouds are.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..checks.tensors import check_range, one_picture
from ..checks.values import number, whole_number
from ..checks.values import seed as check_seed
from ..figures.points import check_points
from ..pictures.data import match_channels
from ..schedule import NoiseSchedule, Timesteps
from ..unet import timestep_embedding

# Darkness d = (1 - luma) / 2 is 0 for white and 1 for black; a pixel is drawn with probability
# proportional to d^DARKNESS_POWER. The power keeps a mid-tone background from drowning the
# dark shapes: on the bundled face at 64 px (a black outline on a teal background, d = 0.48,
# that covers half the picture) the background got 56% of the points at power 1, 30% at 4,
# 12% at 6 and 4% at 8, where the cloud shows the outline, eyes and mouth cleanly.
DARKNESS_POWER = 8.0
# A picture whose darkest pixel is lighter than this (d < 0.15, grey 217 of 255) has no dark
# shapes to draw points on: it is refused rather than turned into a cloud of JPEG noise.
MIN_DARKNESS = 0.15


class PointShape:
    """How the samplers and ``train`` see a point: a picture of 1x1 pixel with two channels
    (x, y), without classes (the fields of a U-Net config that they read)."""

    image_size: ClassVar[int] = 1
    image_channels: ClassVar[int] = 2
    num_classes: ClassVar[Optional[int]] = None


def points_from_picture(
    picture: torch.Tensor, n: int, seed: int = 0, power: float = DARKNESS_POWER
) -> torch.Tensor:
    """``n`` points drawn where ``picture`` is dark, as a cloud [n, 2, 1, 1] in [-1, 1]^2.

    Each point picks a pixel with probability proportional to its darkness (1 - luma) / 2
    raised to ``power``, then a uniform place inside that pixel. The picture's longer side
    spans [-1, 1]; x points right and y up, so a scatter plot of the cloud looks like the
    picture. The same ``seed`` gives the same points.

    Args:
        picture: one picture [1, C, H, W] (or [C, H, W]) in [-1, 1], C = 1 or 3, as
            ``dh.load_image`` returns it.
        n: how many points.
        power: how strongly dark pixels are preferred (1: in proportion to darkness).
    Raises:
        ValueError: the picture is not one picture in [-1, 1] with 1 or 3 channels, or it has
            no dark pixels (then ``points_from_picture(-picture, n)`` draws where it is light).
    """
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
    """The shape of a :class:`PointNet` (and, from :class:`PointShape`, that of a point).

    Attributes:
        hidden: the width of every layer.
        depth: residual blocks.
        embed_dim: the size of the sinusoidal embedding of t (:func:`.unet.timestep_embedding`).
        position_dim: the size of the same sinusoidal embedding given to each of x and y, or 0
            for the raw coordinates. Sines of many frequencies let a small MLP draw thin
            lines, which it cannot do well from x and y alone (tiny-diffusion does the same).
        position_scale: the highest of those frequencies, in radians per unit of the plane.
    """

    hidden: int = 128
    depth: int = 3
    embed_dim: int = 32
    # Measured on 5,000 points of the bundled face, 3,000 steps of batch 256 (energy distance of
    # 2,000 samples to held-out points; two fresh draws of the face: 0 +- 6e-4): raw x, y
    # 1.8e-3; scale 10: 9.5e-4; 25: 1.3e-3; 50: 1.3e-3.
    position_dim: int = 32
    position_scale: float = 10.0

    def to_dict(self) -> dict:
        """Plain dict of numbers, as checkpoints store a model's config."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PointNetConfig:
        """Rebuild a config from :meth:`to_dict` (a checkpoint's ``model_config``)."""
        return cls(**d)


class PointBlock(nn.Module):
    """h + Linear(SiLU(Linear(SiLU(h)) + emb)): a residual MLP block with the time embedding
    added in the middle, as in the U-Net's ResBlock."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.inner, self.outer = nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return h + self.outer(F.silu(self.inner(F.silu(h)) + emb))


class PointNet(nn.Module):
    """eps_theta(x_t, t) for points: a small MLP on (x, y) with t embedded as in the U-Net.

    x and y each through the sinusoidal embedding (``position_dim`` of them), then Linear to
    ``hidden``; the sinusoidal embedding of t through a 2-layer MLP; ``depth`` residual blocks
    that add it in; Linear back to 2. The last layer starts at zero, as the U-Net's does, so an
    untrained net predicts eps = 0. ``seed`` seeds the initial weights (torch's global
    generator is left alone), as ``UNet(seed=)`` does.
    """

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
        if seed is None:
            self._build(cfg)
        else:
            with torch.random.fork_rng(devices=[]):  # the caller's random state is kept
                torch.manual_seed(check_seed(seed))
                self._build(cfg)

    def _build(self, cfg: PointNetConfig) -> None:
        self.time = nn.Sequential(
            nn.Linear(cfg.embed_dim, cfg.hidden), nn.SiLU(), nn.Linear(cfg.hidden, cfg.hidden)
        )
        self.inp = nn.Linear(2 * cfg.position_dim if cfg.position_dim else 2, cfg.hidden)
        self.blocks = nn.ModuleList(PointBlock(cfg.hidden) for _ in range(cfg.depth))
        self.out = nn.Linear(cfg.hidden, 2)
        nn.init.zeros_(self.out.weight)  # start by predicting eps = 0, as the U-Net does
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
    """K round Gaussians in the plane, N(m_k, s^2 I) with weights pi_k, and their exact score.

    Noising keeps a mixture a mixture: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps gives

        q(x_t) = sum_k pi_k N(x_t; sqrt(abar_t) m_k, (abar_t s^2 + 1 - abar_t) I),

    so the score s(x, t) = grad log q(x_t) is known in closed form, and with it the noise
    prediction that training can at best learn, eps*(x_t, t) = -sqrt(1 - abar_t) s(x_t, t)
    (Tweedie's formula). Called as ``mixture(x_t, t)`` it returns that eps, and it has a
    ``config``, so ``dh.sample(mixture, schedule, ...)`` samples with the exact score. With
    s = 0 the mixture is a finite set of points (:func:`ideal_denoiser`).

    Args:
        means: m_k [K, 2] (or a cloud [K, 2, 1, 1]).
        std: s, the standard deviation of every component (0 allowed).
        weights: pi_k [K], any positive numbers (normalised); None: all equal.
        schedule: the noise schedule for ``mixture(x_t, t)`` and the default of ``score``
            and ``log_density``.
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
        """x [B, 2] and, for the noised mixture at t: sqrt(abar) [B, 1], the variance
        sigma_t^2 [B, 1] and log(pi_k N(x; sqrt(abar) m_k, sigma_t^2 I)) [B, K], float64."""
        schedule = schedule or self.schedule
        if schedule is None:
            raise ValueError("no noise schedule: give one, or build the mixture with schedule=...")
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
        _, _, _, log_parts = self._terms(x, t, schedule)
        return torch.logsumexp(log_parts, dim=1).to(x.dtype)

    def score(
        self, x: torch.Tensor, t: Timesteps, schedule: Optional[NoiseSchedule] = None
    ) -> torch.Tensor:
        """s(x, t) = grad log q(x_t) = sum_k r_k (sqrt(abar) m_k - x) / sigma_t^2, with r_k the
        posterior probability of component k; [B, 2, 1, 1] like x."""
        xy, sqrt_abar, var, log_parts = self._terms(x, t, schedule)
        r = torch.softmax(log_parts, dim=1)  # r_k = p(k | x_t)
        centre = sqrt_abar * (r @ self.means.to(xy.device))  # sum_k r_k sqrt(abar) m_k
        return ((centre - xy) / var).to(x.dtype).reshape(x.shape)

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The exact eps*(x_t, t) = -sqrt(1 - abar_t) s(x_t, t) (Tweedie), [B, 2, 1, 1]."""
        schedule = self.schedule
        if schedule is None:
            raise ValueError(
                "the mixture has no noise schedule: build it with "
                "GaussianMixture(..., schedule=schedule) to call it as a model."
            )
        sqrt_1m_abar = schedule.gather(schedule.sqrt_one_minus_alpha_bars, t, x_t)
        return -sqrt_1m_abar * self.score(x_t, t)


def ideal_denoiser(points: torch.Tensor, schedule: NoiseSchedule) -> GaussianMixture:
    """The best possible noise predictor for a finite training set ``points`` [N, 2, 1, 1].

    Training minimises E ||eps - eps_theta(x_t, t)||^2 over x_0 drawn from the N points; the
    minimum is eps*(x_t, t) = (x_t - sqrt(abar_t) x0_hat) / sqrt(1 - abar_t) with

        x0_hat = sum_i w_i x_i,  w = softmax_i(-|x_t - sqrt(abar_t) x_i|^2 / (2 (1 - abar_t))),

    the training points weighted by how likely each is to have been noised into x_t. That is
    the exact noise prediction of a :class:`GaussianMixture` of width 0 centred on the points,
    which is what this returns (call it as ``denoiser(x_t, t)``, or sample with it). Its
    samples land on the training points: a net that reached the optimum would only copy.
    """
    check_points(points)
    return GaussianMixture(points, std=0.0, schedule=schedule)
