"""Draw two photograph-like pictures procedurally (deterministic: same pixels on every run).

    python tools/make_photos.py              # writes images/landscape.png and images/pebbles.png
    python tools/make_photos.py --out /tmp   # somewhere else

The bundled samples (``tools/make_samples.py``) are flat-colour drawings. Photographs differ:
texture everywhere, soft gradients, no two patches alike. These two stand in for a learner's
photo where a licence must be clear (they are made here from seeded noise, so they are ours;
CC0 like the samples), for example in ``bench/vary_quality.py``:

- ``landscape``: a sky with clouds over two mountain ridges and a grassy slope, each textured
  with fractal value noise;
- ``pebbles``: a beach of rounded stones (a Voronoi pattern) in greys and browns, shaded.

Both are 128x128 RGB (grain does not compress: at 256 px each would be over 100 KB; the tutorial
trains at 32-64 px).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 128
# Per-pixel grain (std in 0-255 levels), like a photo's sensor noise; it sets the file size.
GRAIN = 3.0
IMAGES_DIR = Path(__file__).resolve().parent.parent / "images"


def value_noise(rng: np.random.Generator, size: int, octaves: int = 5) -> np.ndarray:
    """Fractal value noise in [0, 1], [size, size]: octave k is a (2^(k+1) + 1)^2 grid of
    uniform values, bilinearly enlarged, weighted 1/2^k."""
    total, weight = np.zeros((size, size)), 0.0
    for k in range(octaves):
        cells = 2 ** (k + 1)
        grid = rng.random((cells + 1, cells + 1))
        pos = np.linspace(0, cells, size)
        i = np.minimum(pos.astype(int), cells - 1)
        f = pos - i
        rows = grid[i] * (1 - f)[:, None] + grid[i + 1] * f[:, None]  # [size, cells+1]
        layer = rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]
        total += layer / 2**k
        weight += 1 / 2**k
    return total / weight


def ridge(rng: np.random.Generator, size: int, base: float, height: float) -> np.ndarray:
    """A mountain ridge line: for each column the row where the mountain starts."""
    line = value_noise(rng, size, octaves=6)[size // 2]
    return (base - height * (line - line.min()) / (np.ptp(line) + 1e-9)) * size


def draw_landscape() -> Image.Image:
    """Sky with clouds, a far blue ridge, a near dark ridge, a green slope; all textured."""
    rng = np.random.default_rng(2024)
    rows = np.arange(SIZE)[:, None] / SIZE
    sky = (
        np.array([70, 120, 200]) * (1 - rows[..., None])
        + np.array([190, 215, 240]) * rows[..., None]
    )
    clouds = np.clip((value_noise(rng, SIZE) - 0.5) * 3, 0, 1)[..., None]
    image = sky * (1 - clouds) + 245 * clouds
    y = np.arange(SIZE)[:, None]
    layers = [
        (ridge(rng, SIZE, 0.55, 0.3), np.array([90, 105, 140]), 25),  # far ridge, bluish
        (ridge(rng, SIZE, 0.75, 0.25), np.array([45, 70, 60]), 30),  # near ridge, dark green
        (ridge(rng, SIZE, 0.95, 0.15), np.array([95, 140, 55]), 40),  # grass slope
    ]
    for top, colour, grain in layers:
        texture = (value_noise(rng, SIZE, octaves=7) - 0.5)[..., None] * grain
        inside = (y >= top[None, :])[..., None]
        image = np.where(inside, colour + texture, image)
    image = image + rng.normal(0, GRAIN, image.shape)
    return Image.fromarray(np.clip(image, 0, 255).round().astype(np.uint8))


def draw_pebbles() -> Image.Image:
    """Rounded stones: each pixel belongs to its nearest of 40 random centres (Voronoi); the
    stone's colour is shaded darker towards its edge, with grain, and dark gaps between."""
    rng = np.random.default_rng(7)
    count = 24
    centres = rng.random((count, 2)) * SIZE
    colours = np.array([[150, 140, 125], [110, 100, 90], [175, 165, 150], [125, 110, 85],
                        [90, 90, 95]])[rng.integers(0, 5, count)]  # fmt: skip
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    # Distances on a torus, so the texture tiles without seams.
    dy = np.abs(yy[..., None] - centres[:, 0])
    dx = np.abs(xx[..., None] - centres[:, 1])
    d = np.sqrt(np.minimum(dy, SIZE - dy) ** 2 + np.minimum(dx, SIZE - dx) ** 2)
    order = np.sort(d, axis=-1)
    nearest = np.argmin(d, axis=-1)
    edge = order[..., 1] - order[..., 0]  # 0 on the border between two stones
    shade = np.clip(edge / 12.0, 0, 1) ** 0.5  # darker towards the edges
    grain = (value_noise(rng, SIZE, octaves=6) - 0.5) * 40
    image = colours[nearest] * (0.35 + 0.65 * shade[..., None]) + grain[..., None]
    image = image + rng.normal(0, GRAIN, image.shape)
    return Image.fromarray(np.clip(image, 0, 255).round().astype(np.uint8))


PHOTOS = {"landscape": draw_landscape, "pebbles": draw_pebbles}


def main() -> None:
    """Write every picture of PHOTOS as a PNG into --out (default images/)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=IMAGES_DIR)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, draw in PHOTOS.items():
        path = args.out / f"{name}.png"
        draw().save(path, optimize=True)
        print(f"{path} ({path.stat().st_size / 1000:.0f} KB)")


if __name__ == "__main__":
    main()
