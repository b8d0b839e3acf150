"""Draw the bundled sample images (deterministic: same pixels on every run).

    python tools/make_samples.py           # rewrites images/scene.png, face.png, pattern.png

Each picture is drawn with flat colours at 4x the final size and shrunk with LANCZOS, which
gives smooth (antialiased) edges. Shapes are big and colours strong so that the pictures still
read at 32x32 and 64x64, the sizes the tutorial trains on. None is left-right symmetric, so a
mirrored sample (a data augmentation, or a bug) can be told apart from the original.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 256  # final side in pixels
SCALE = 4  # supersampling factor for antialiased edges
IMAGES_DIR = Path(__file__).resolve().parent.parent / "images"


def _canvas(color: tuple[int, int, int]) -> tuple[Image.Image, ImageDraw.ImageDraw, int]:
    """A supersampled RGB canvas, its drawing context, and its unit (1 final pixel)."""
    img = Image.new("RGB", (SIZE * SCALE, SIZE * SCALE), color)
    return img, ImageDraw.Draw(img), SCALE


def _finish(img: Image.Image) -> Image.Image:
    """Shrink the supersampled canvas to SIZE x SIZE with LANCZOS (antialiasing)."""
    return img.resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def draw_scene() -> Image.Image:
    """The default: a sunset with a big sun upper left, a dark hill and a red house at right."""
    img, draw, u = _canvas((255, 185, 70))  # the horizon colour shows below the bands
    # Sky: 8 flat bands from deep blue (top) to orange (horizon): strong colour, compresses well.
    bands = [
        (30, 40, 120),
        (50, 60, 150),
        (80, 80, 170),
        (130, 90, 170),
        (190, 100, 150),
        (235, 120, 110),
        (250, 150, 80),
        (255, 185, 70),
    ]
    band_h = 176 // len(bands)
    for i, color in enumerate(bands):
        draw.rectangle([0, i * band_h * u, SIZE * u, (i + 1) * band_h * u], fill=color)
    draw.ellipse([28 * u, 40 * u, 124 * u, 136 * u], fill=(255, 225, 60))  # the sun, left
    draw.ellipse([-60 * u, 150 * u, 330 * u, 420 * u], fill=(40, 120, 60))  # far hill
    draw.ellipse([110 * u, 165 * u, 420 * u, 380 * u], fill=(20, 70, 40))  # near hill, right
    # A red house with a dark roof on the right hill.
    draw.rectangle([170 * u, 150 * u, 222 * u, 196 * u], fill=(200, 30, 40))
    draw.polygon([(162 * u, 152 * u), (196 * u, 118 * u), (230 * u, 152 * u)], fill=(60, 30, 30))
    draw.rectangle([188 * u, 170 * u, 204 * u, 196 * u], fill=(250, 230, 120))  # lit door
    return _finish(img)


def draw_face() -> Image.Image:
    """An emoji-like face on teal: one eye winks and a red bow sits on the upper right."""
    img, draw, u = _canvas((40, 170, 170))
    draw.ellipse([28 * u, 28 * u, 228 * u, 228 * u], fill=(30, 30, 30))  # outline
    draw.ellipse([36 * u, 36 * u, 220 * u, 220 * u], fill=(255, 205, 40))  # face
    draw.ellipse([78 * u, 80 * u, 108 * u, 122 * u], fill=(30, 30, 30))  # open left eye
    draw.rounded_rectangle([146 * u, 98 * u, 182 * u, 108 * u], radius=5 * u, fill=(30, 30, 30))
    draw.arc([72 * u, 100 * u, 184 * u, 190 * u], 20, 160, fill=(30, 30, 30), width=9 * u)  # smile
    draw.ellipse([56 * u, 138 * u, 84 * u, 158 * u], fill=(245, 120, 100))  # left cheek
    # The bow: two triangles tip to tip and a knot, top right.
    draw.polygon([(200 * u, 40 * u), (168 * u, 18 * u), (168 * u, 62 * u)], fill=(220, 20, 60))
    draw.polygon([(200 * u, 40 * u), (232 * u, 18 * u), (232 * u, 62 * u)], fill=(220, 20, 60))
    draw.ellipse([190 * u, 30 * u, 210 * u, 50 * u], fill=(150, 0, 40))
    return _finish(img)


def draw_pattern() -> Image.Image:
    """A colourful geometric pattern: 4x4 tiles, each a square with a disc or a triangle."""
    img, draw, u = _canvas((250, 250, 245))
    colors = [
        (230, 57, 70),
        (244, 162, 97),
        (233, 196, 106),
        (42, 157, 143),
        (38, 70, 83),
        (69, 123, 157),
        (168, 218, 220),
        (131, 56, 236),
    ]
    tile = SIZE // 4
    for row in range(4):
        for col in range(4):
            x0, y0 = col * tile * u, row * tile * u
            x1, y1 = x0 + tile * u, y0 + tile * u
            back = colors[(row * 3 + col) % len(colors)]
            front = colors[(row * 3 + col + 4) % len(colors)]
            draw.rectangle([x0, y0, x1, y1], fill=back)
            m = 10 * u
            if (row + col) % 2 == 0:
                draw.ellipse([x0 + m, y0 + m, x1 - m, y1 - m], fill=front)
            else:  # a right triangle pointing to the right: breaks the mirror symmetry
                tip = (x1 - m, (y0 + y1) // 2)
                draw.polygon([(x0 + m, y0 + m), tip, (x0 + m, y1 - m)], fill=front)
    return _finish(img)


SAMPLES = {"scene": draw_scene, "face": draw_face, "pattern": draw_pattern}


def main() -> None:
    """Draw every sample and save it as an optimised PNG next to this script."""
    for name, draw_fn in SAMPLES.items():
        path = IMAGES_DIR / f"{name}.png"
        draw_fn().save(path, optimize=True)
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
