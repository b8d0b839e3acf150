"""The noise-prediction network eps_theta(x_t, t) of DDPM: a small U-Net (Ho et al. 2020, app. B).

The layout follows the paper's PixelCNN++-style U-Net, which diffusers' ``UNet2DModel`` also
copies: a sinusoidal embedding of t fed through an MLP; residual blocks (GroupNorm, SiLU, 3x3
conv) with the time embedding added in; a downsampling path whose activations are kept as skip
connections and concatenated back on the upsampling path; self-attention only at the feature-map
resolutions asked for. The last convolution starts at zero, so an untrained net predicts eps = 0.

With ``num_classes`` the net is class-conditional: a learned embedding of the label is added to
the time embedding, with one extra "no class" entry (index ``num_classes``) that training
uses for a fraction of the images so that one net gives both eps(x_t, t, y) and eps(x_t, t),
the two terms of classifier-free guidance (Ho & Salimans 2022).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from .checks.values import class_indices, number, whole_number

# Bounds of a config (UNetConfig.check): far beyond any preset, well below what exhausts a
# machine, so a config read from a file cannot ask for 400 GB.
MAX_SIDE = 4096
MAX_WIDTH = 4096
MAX_CLASSES = 100_000
MAX_PARAMETERS = 1_000_000_000  # 4 GB of float32 weights; the "base" preset has 35.5 M

# Named presets; sizes from UNet.num_parameters() and UNet.flops() with 3 channels.
PRESETS: dict[str, dict] = {
    # 32-64-64, attention at 8 px: 1.1 M parameters, 0.50 GFLOP per forward pass at 32 px.
    "tiny": dict(
        base_channels=32, channel_mults=(1, 2, 2), attention_resolutions=(8,), image_size=32
    ),
    # 64-128-256-256, attention at 16 px: 17.0 M parameters, 12.2 GFLOP at 64 px.
    "small": dict(
        base_channels=64, channel_mults=(1, 2, 4, 4), attention_resolutions=(16,), image_size=64
    ),
    # DDPM's CIFAR-10 net (Ho et al. app. B): 128-256-256-256, two blocks per level, attention
    # at 16 px, dropout 0.1.
    "base": dict(
        base_channels=128,
        channel_mults=(1, 2, 2, 2),
        attention_resolutions=(16,),
        image_size=32,
        num_res_blocks=2,
        dropout=0.1,
        norm_groups=32,
    ),
}


@dataclass
class UNetConfig:
    """Everything that defines the network's shape (stored in checkpoints as a plain dict).

    Attributes:
        image_channels: 1 (grey) or 3 (RGB).
        base_channels: width of the first level; level i has ``base_channels * channel_mults[i]``.
        channel_mults: one multiplier per resolution level; each level after the first halves
            the side, so the input side must be divisible by 2^(levels-1).
        attention_resolutions: feature-map sides (in pixels, for an input of ``image_size``,
            after the patch stem) where self-attention is added, as in DDPM (16 for 32 px
            CIFAR-10). The choice is turned into levels once, so the same net also runs on
            other sizes.
        image_size: the side the net is meant for (used to place attention and by ``flops``).
        patch_size: the patch stem (Hoogeboom et al. 2023, "simple diffusion"): each p x p
            patch of the picture becomes one position with p^2 C channels on the way in
            (``pixel_unshuffle``) and back on the way out (``pixel_shuffle``), so the U-Net
            works at image_size / p, p^2 times cheaper. What it trades: the first and last
            convolutions see patches, not pixels, so the finest detail is the job of a
            position's p^2 C output channels, which must not outnumber ``base_channels``
            (checked). 1: no stem.
        num_res_blocks: residual blocks per level on the way down (one more on the way up).
        dropout: dropout rate inside the residual blocks (DDPM used 0.1 on CIFAR-10).
        norm_groups: GroupNorm groups (must divide every width).
        num_classes: None for an unconditional net; else the number of classes, and the net
            takes labels 0..num_classes-1 plus ``num_classes`` for "no class".
        position_octaves: the first layer also sees where each pixel is: sin and cos of
            pi 2^j x and pi 2^j y for j < position_octaves, x and y in [-1, 1] across the
            picture (Fourier features, Tancik et al. 2020; :func:`position_features`). A
            convolution looks alike at every position, so without them the net can tell where
            it is only from the picture's border. 0: none, as in DDPM.
    """

    image_channels: int = 3
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 2)
    attention_resolutions: tuple[int, ...] = (8,)
    image_size: int = 32
    num_res_blocks: int = 1
    dropout: float = 0.0
    norm_groups: int = 8
    num_classes: Optional[int] = None
    patch_size: int = 1
    position_octaves: int = 0

    @property
    def inner_size(self) -> int:
        """The side the U-Net itself works at: image_size / patch_size."""
        return self.image_size // self.patch_size

    def to_dict(self) -> dict:
        """Plain dict of lists/numbers (safe for ``torch.load(weights_only=True)``)."""
        d = asdict(self)
        d["channel_mults"] = list(self.channel_mults)
        d["attention_resolutions"] = list(self.attention_resolutions)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> UNetConfig:
        """Rebuild a config from :meth:`to_dict`; unknown keys raise ``ValueError``."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown U-Net config keys {unknown}; known: {sorted(names)}.")
        d = dict(d)
        for key in ("channel_mults", "attention_resolutions"):
            if key in d:
                d[key] = tuple(int(v) for v in d[key])
        return cls(**d)

    def attention_levels(self) -> set[int]:
        """Levels (0 = the stem's resolution) whose side is in attention_resolutions."""
        sides = [self.inner_size // 2**i for i in range(len(self.channel_mults))]
        for res in self.attention_resolutions:
            if res not in sides:
                raise ValueError(
                    f"attention_resolutions contains {res}, but the feature maps of a "
                    f"{self.image_size} px input (patch stem {self.patch_size}) have sides {sides}: "
                    "pick from those."
                )
        return {i for i, side in enumerate(sides) if side in self.attention_resolutions}

    def check(self) -> None:
        """Raise ``ValueError`` naming the first field that cannot build a network, or one so
        large that building it would take more memory than any machine here has (a config
        read from a file is checked the same way, before anything is allocated)."""
        if type(self.image_channels) is not int or self.image_channels not in (1, 3):
            raise ValueError(f"image_channels must be 1 or 3, got {self.image_channels!r}.")
        whole_number(self.image_size, "image_size", 1, MAX_SIDE)
        whole_number(self.base_channels, "base_channels", 1, MAX_WIDTH)
        whole_number(self.num_res_blocks, "num_res_blocks", 0, 8)
        whole_number(self.norm_groups, "norm_groups", 1, MAX_WIDTH)
        if (
            not isinstance(self.channel_mults, (tuple, list))
            or not 1 <= len(self.channel_mults) <= 8
        ):
            raise ValueError(f"channel_mults must hold 1 to 8 levels, got {self.channel_mults}.")
        for m in self.channel_mults:
            whole_number(m, "each of channel_mults", 1, MAX_WIDTH // self.base_channels)
        for m in self.channel_mults:
            if (self.base_channels * m) % self.norm_groups:
                raise ValueError(
                    f"width {self.base_channels * m} is not divisible by norm_groups="
                    f"{self.norm_groups}; choose base_channels as a multiple of norm_groups."
                )
        whole_number(self.patch_size, "patch_size", 1, MAX_SIDE)
        whole_number(self.position_octaves, "position_octaves", 0, 16)
        packed = self.image_channels * self.patch_size**2
        if self.patch_size > 1 and packed > self.base_channels:
            # The last layer maps base_channels features to the p^2 C values of a patch: with
            # fewer features than values it cannot even pass the noise through, and the loss
            # stalls (measured: patch 4 on 3 channels with 32 features, loss 0.55 after 300
            # steps and samples of pure noise, where patch 2 learned).
            raise ValueError(
                f"patch_size={self.patch_size} packs {packed} values into each position "
                f"({self.image_channels} channels x {self.patch_size}^2), more than the "
                f"{self.base_channels} base channels can carry: use a smaller patch_size or "
                f"base_channels >= {packed}."
            )
        step = self.patch_size * 2 ** (len(self.channel_mults) - 1)
        if self.image_size % step:
            near = sides_near(self.image_size, step)
            raise ValueError(
                f"image_size {self.image_size} is not divisible by {step}: the U-Net halves it "
                f"{len(self.channel_mults) - 1} times after a patch stem of {self.patch_size}. "
                f"Try {near}."
            )
        if self.num_classes is not None:
            whole_number(self.num_classes, "num_classes", 1, MAX_CLASSES,
                         " (or None for an unconditional net)")  # fmt: skip
        if not 0.0 <= number(self.dropout, "dropout") < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}.")
        self.attention_levels()
        with torch.device("meta"):  # the net's size, counted without allocating it
            skeleton = nn.Module()
            UNet._build(skeleton, self)
        count = sum(p.numel() for p in skeleton.parameters())
        if count > MAX_PARAMETERS:
            raise ValueError(
                f"this U-Net would have {count / 1e6:,.0f} M parameters ({4 * count / 1e9:.0f} GB), "
                f"more than the {MAX_PARAMETERS / 1e6:,.0f} M this package builds: use fewer "
                "base_channels or levels."
            )


def sides_near(size: int, step: int, smallest: int = 1) -> str:
    """The multiples of ``step`` on either side of ``size`` (from ``smallest``), for a message:
    "28 or 32", or "4" when none lies below."""
    below, above = size // step * step, (size // step + 1) * step
    return f"{below} or {above}" if below >= max(smallest, step) else f"{above}"


def tracing() -> bool:
    """True while ``torch.compile`` traces the net or a CUDA graph records it: a check that
    reads tensor values would cut the graph there (:mod:`.runtime.graphs`), so it is left to the
    callers, which check labels where they are made."""
    compiler = getattr(torch, "compiler", None)
    compiling = getattr(compiler, "is_compiling", None) or torch._dynamo.is_compiling  # < 2.3
    if compiling():
        return True
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of the timesteps (Transformer positional encoding, DDPM app. B).

    emb[:, i] = sin(t * w_i), emb[:, dim/2 + i] = cos(t * w_i), w_i = max_period^(-2i/dim).
    Returns a float tensor [B, dim].
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def position_features(height: int, width: int, octaves: int, like: torch.Tensor) -> torch.Tensor:
    """Fourier features of each pixel's place (Tancik et al. 2020), [1, 4 octaves, H, W]:
    sin(pi 2^j x), sin(pi 2^j y), cos(pi 2^j x), cos(pi 2^j y) for j < octaves, with x and y
    going from -1 to 1 across the picture; in the dtype and device of ``like``."""
    y, x = (torch.linspace(-1.0, 1.0, n, device=like.device) for n in (height, width))
    grid = torch.stack(torch.meshgrid(x, y, indexing="xy"))  # [2, H, W]: x, y
    angles = math.pi * 2.0 ** torch.arange(octaves, device=like.device)[:, None, None, None] * grid
    return (
        torch.cat([angles.sin(), angles.cos()], dim=1).reshape(1, -1, height, width).to(like.dtype)
    )


class ResBlock(nn.Module):
    """h = conv(SiLU(GN(x))); h += Linear(emb); h = conv(dropout(SiLU(GN(h)))); return skip(x) + h."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # noqa: D102
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]  # the time embedding, one shift per channel
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class Attention(nn.Module):
    """Single-head self-attention over the H*W positions, with a residual connection."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        B, C, H, W = x.shape
        h = self.norm(x).flatten(2).transpose(1, 2)  # [B, HW, C]
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        weights = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(C), dim=-1)  # [B, HW, HW]
        h = weights @ v  # each position: a weighted mean of all values, softmax(q k^T / sqrt(C)) v
        return x + self.out(h).transpose(1, 2).reshape(B, C, H, W)


class UNet(nn.Module):
    """eps_theta(x_t, t): predicts the noise in x_t (DDPM eq. 11-12, the training target of Alg. 1).

    Build it from a :class:`UNetConfig`, a preset name (:meth:`preset`), or keyword arguments
    (``UNet(base_channels=32)``). ``forward(x [B, C, H, W], t)`` returns [B, C, H, W];
    a conditional net (``num_classes``) also takes ``labels`` [B].

    ``seed`` makes the initial weights reproducible (they are drawn from a generator seeded
    with it, leaving torch's global random state untouched); without it they come from torch's
    global generator, as for any ``nn.Module``.
    """

    def __init__(
        self,
        config: Union[UNetConfig, None] = None,
        *,
        seed: Optional[int] = None,
        **overrides: object,
    ) -> None:
        super().__init__()
        cfg = config if config is not None else UNetConfig()
        if overrides:
            cfg = UNetConfig.from_dict({**cfg.to_dict(), **overrides})
        cfg.check()
        self.config = cfg
        if seed is None:
            self._build(cfg)
        else:
            with torch.random.fork_rng(devices=[]):  # the caller's random state is kept
                torch.manual_seed(seed)
                self._build(cfg)

    def _build(self, cfg: UNetConfig) -> None:
        widths = [cfg.base_channels * m for m in cfg.channel_mults]
        emb_dim = 4 * cfg.base_channels
        attn_levels = cfg.attention_levels()
        g, p = cfg.norm_groups, cfg.dropout

        self.time_mlp = nn.Sequential(
            nn.Linear(cfg.base_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        # One learned vector per class plus the "no class" one, added to the time embedding.
        self.class_emb = (
            nn.Embedding(cfg.num_classes + 1, emb_dim) if cfg.num_classes is not None else None
        )
        patch_channels = cfg.image_channels * cfg.patch_size**2  # the stem's p x p patches
        positions = 4 * cfg.position_octaves  # sin, cos of x and y per octave
        self.conv_in = nn.Conv2d(patch_channels + positions, widths[0], 3, padding=1)

        # Down path: every block's output is kept as a skip (plus conv_in's and each downsample's).
        self.down = nn.ModuleList()
        skip_widths, ch = [widths[0]], widths[0]
        for level, width in enumerate(widths):
            for _ in range(cfg.num_res_blocks):
                attn = Attention(width, g) if level in attn_levels else nn.Identity()
                self.down.append(nn.ModuleList([ResBlock(ch, width, emb_dim, p, g), attn]))
                ch = width
                skip_widths.append(ch)
            if level < len(widths) - 1:
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))  # halve the side
                skip_widths.append(ch)

        deepest = len(widths) - 1
        self.mid1 = ResBlock(ch, ch, emb_dim, p, g)
        self.mid_attn = Attention(ch, g) if deepest in attn_levels else nn.Identity()
        self.mid2 = ResBlock(ch, ch, emb_dim, p, g)

        # Up path: one more block per level than on the way down, each eats one skip.
        self.up = nn.ModuleList()
        for level in reversed(range(len(widths))):
            for _ in range(cfg.num_res_blocks + 1):
                block = ResBlock(ch + skip_widths.pop(), widths[level], emb_dim, p, g)
                attn = Attention(widths[level], g) if level in attn_levels else nn.Identity()
                self.up.append(nn.ModuleList([block, attn]))
                ch = widths[level]
            if level > 0:
                self.up.append(
                    nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(ch, ch, 3, padding=1))
                )

        self.norm_out = nn.GroupNorm(g, ch)
        self.conv_out = nn.Conv2d(ch, patch_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # start by predicting eps = 0 (DDPM's zero init)
        nn.init.zeros_(self.conv_out.bias)

    @classmethod
    def preset(
        cls,
        name: str,
        image_channels: int = 3,
        *,
        seed: Optional[int] = None,
        **overrides: object,
    ) -> UNet:
        """A named size (``overrides`` change single config fields). With 3 channels:

        - ``tiny``: widths 32-64-64, attention at 8 px, 1.1 M parameters, 0.50 GFLOP per
          forward pass at 32 px: the CPU demo, trains on one 32 px image in minutes.
        - ``small``: widths 64-128-256-256, attention at 16 px, 17.0 M parameters, 12.2 GFLOP
          at 64 px: 64 px on a GPU.
        - ``base``: DDPM's CIFAR-10 net, widths 128-256-256-256 with two blocks per level,
          attention at 16 px, dropout 0.1: 35.5 M parameters, 12.4 GFLOP at 32 px.
        """
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
        fields = {**PRESETS[name], **overrides}
        size = overrides.get("image_size")
        if size is not None and "attention_resolutions" not in overrides:
            # A preset puts attention at a depth, not at a pixel count: keep the same levels.
            base = PRESETS[name]["image_size"]
            depth = range(len(fields["channel_mults"]))
            levels = [i for i in depth if base // 2**i in PRESETS[name]["attention_resolutions"]]
            inner = int(size) // int(fields.get("patch_size", 1))  # the stem's resolution
            fields["attention_resolutions"] = tuple(inner // 2**i for i in levels)
        return cls(UNetConfig(image_channels=image_channels, **fields), seed=seed)

    def valid_sizes(self, lo: int = 16, hi: int = 256) -> list[int]:
        """Square input sides in [lo, hi] that the stem and the down/up path can halve and
        restore exactly."""
        step = self.config.patch_size * 2 ** (len(self.config.channel_mults) - 1)
        return [s for s in range(lo, hi + 1) if s % step == 0]

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless x is [B, image_channels, S, S] with a valid side S."""
        cfg = self.config
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            raise ValueError(f"x must be a tensor [B, C, H, W], got {getattr(x, 'shape', x)}.")
        B, C, H, W = x.shape
        if C != cfg.image_channels:
            raise ValueError(f"the net takes {cfg.image_channels}-channel images, got C = {C}.")
        step = cfg.patch_size * 2 ** (len(cfg.channel_mults) - 1)
        if H != W or H % step:
            sizes = ", ".join(str(s) for s in self.valid_sizes())
            raise ValueError(
                f"image size {H}x{W} does not fit this U-Net: it needs square images with a "
                f"side divisible by {step} (patch stem x 2^(levels-1)). Valid sides from 16 to "
                f"256: {sizes}."
            )

    def check_labels(self, labels: Optional[torch.Tensor], batch: int) -> Optional[torch.Tensor]:
        """``labels`` as this net takes them: None for an unconditional net; for a conditional
        one, class indices [batch] in 0..num_classes (num_classes = "no class"), checked by
        :func:`.checks.values.class_indices` (left to the callers while tracing)."""
        n = self.config.num_classes
        if n is None:
            if labels is not None:
                raise ValueError(
                    "labels were given to an unconditional U-Net; build it with num_classes=... "
                    "to condition on a class."
                )
            return None
        if labels is None:
            raise ValueError(
                f"this U-Net is conditional (num_classes={n}): pass labels (0..{n - 1}, or {n} "
                "for no class)."
            )
        return labels if tracing() else class_indices(labels, batch, n, null_class=True)

    def forward(
        self,
        x: torch.Tensor,
        t: Union[torch.Tensor, int],
        labels: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Predict the noise eps in x_t. x: [B, C, H, W]; t: int or LongTensor [B] (0-based);
        labels: LongTensor [B] for a conditional net (``num_classes`` = no class), else None."""
        self.check_input(x)
        labels = self.check_labels(labels, x.shape[0])
        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(x.shape[0])
        emb = self.time_mlp(timestep_embedding(t, self.config.base_channels).to(x.dtype))
        if self.class_emb is not None:
            emb = emb + self.class_emb(labels.to(x.device)).to(emb.dtype)
        p = self.config.patch_size
        h = F.pixel_unshuffle(x, p) if p > 1 else x  # [B, p^2 C, H/p, W/p]
        if self.config.position_octaves:  # where each pixel is
            where = position_features(*h.shape[2:], self.config.position_octaves, h)
            h = torch.cat([h, where.expand(h.shape[0], -1, -1, -1)], dim=1)
        h = self.conv_in(h)
        skips = [h]
        for layer in self.down:
            h = layer(h) if isinstance(layer, nn.Conv2d) else layer[1](layer[0](h, emb))
            skips.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for layer in self.up:
            if isinstance(layer, nn.Sequential):
                h = layer(h)  # upsample: nearest x2, then a 3x3 conv
            else:
                h = layer[1](layer[0](torch.cat([h, skips.pop()], dim=1), emb))
        out = self.conv_out(F.silu(self.norm_out(h)))
        return F.pixel_shuffle(out, p) if p > 1 else out

    def num_parameters(self) -> int:
        """The number of trainable numbers in the net."""
        return sum(p.numel() for p in self.parameters())

    def flops(self, image_size: Union[int, None] = None, batch_size: int = 1) -> int:
        """FLOPs of one forward pass (a multiply-add counts 2) at ``image_size`` (default the
        config's), counted by ``torch.utils.flop_counter.FlopCounterMode``."""
        from torch.utils.flop_counter import FlopCounterMode

        size = image_size or self.config.image_size
        p = next(self.parameters())
        x = torch.zeros(batch_size, self.config.image_channels, size, size, device=p.device)
        t = torch.zeros(batch_size, dtype=torch.long, device=p.device)
        labels = None if self.config.num_classes is None else t.clone()
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            self(x, t, labels)
        return int(counter.get_total_flops())
