"""Pictures of a model trained on many pictures: samples by class, a class picker, and each
sample beside its nearest training image."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal, Optional

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure

from ..checks.tensors import check_image
from ..guidance import DEFAULT_GUIDANCE
from ..metrics.classifier import one_label_each
from ..metrics.copying import nearest_neighbours
from ..pictures.images import to_numpy, to_pil
from ..reverse import Sampler
from ..sampling import sample
from ..schedule import NoiseSchedule
from ..timesteps import DEFAULT_STEPS
from .animation import image_grid, imshow_pixels
from .plots import show_images
from .widgets import WIDGET_WIDTH_PX, fitted_size, grid_columns, show_png

# The class picker's samplers: on the digits DPM-Solver++ in 20 steps and DDIM in 50 scored
# as DDPM in 1000 did; 8 guided 16 px digits take about 0.8 s and 2.1 s on one CPU core.
PICKER_SAMPLERS = ("dpm_solver", "ddim")
PICKER_MAX_GUIDANCE = 10.0
PICKER_DISPLAY_SIZE = 96  # screen pixels of one picture at most (16 px digits: 6x)
PAIRS_PER_ROW = 8  # plot_nearest_neighbours: 8 pairs fill 800 px at 100 px per image


def plot_class_rows(
    images: torch.Tensor,
    labels: torch.Tensor,
    class_names: Optional[Sequence[str]] = None,
    max_per_row: int = 10,
    size: float = 0.8,
) -> Figure:
    """One row per class present in ``labels`` [n] (in class order), up to ``max_per_row`` of
    its ``images`` [n, C, H, W] each, the class name at the left of the row; ``size`` inches
    per picture. Drawn as one picture (one ``imshow``), so a 10 x 10 grid draws in a blink."""
    check_image(images, "images")
    labels = one_label_each(labels, len(images))
    classes = sorted(set(labels.tolist()))
    if class_names is not None and max(classes) >= len(class_names):
        raise ValueError(
            f"class_names has {len(class_names)} names but labels go to {max(classes)}."
        )
    names = [class_names[c] if class_names is not None else str(c) for c in classes]
    rows = [images[labels == c][:max_per_row].detach().cpu() for c in classes]
    return grid_figure(rows, names, None, size)


def grid_figure(
    rows: Sequence[torch.Tensor],
    row_names: Sequence[str],
    column_names: Optional[Sequence[str]],
    size: float,
    ax: Optional[Any] = None,
) -> Figure:
    """Rows of pictures [k_r, C, H, W] as one grid picture (white 1 px gaps; short rows are
    filled with white), row names at the left, column names on top; ``size`` inches per
    picture. Draws on ``ax`` if given, else on a new figure."""
    cols = max(len(r) for r in rows)
    blank = torch.ones_like(rows[0][:1])  # 1.0 is white in [-1, 1]
    batch = torch.cat([torch.cat([r, blank.expand(cols - len(r), -1, -1, -1)]) for r in rows])
    grid = image_grid(batch, ncols=cols)
    if ax is None:
        width = size * cols + 0.12 * max(len(line) for n in row_names for line in n.split("\n"))
        fig = Figure(figsize=(width, size * len(rows) + 0.3), layout="constrained")
        ax = fig.subplots()
    imshow_pixels(ax, to_numpy(grid))
    h, w = rows[0].shape[-2:]
    ax.set_yticks([(h + 1) * r + (h - 1) / 2 for r in range(len(rows))], row_names, fontsize=9)
    ax.tick_params(length=0)
    if column_names is not None:
        ax.set_xticks([(w + 1) * k + (w - 1) / 2 for k in range(cols)], column_names, fontsize=9)
        ax.xaxis.tick_top()
    else:
        ax.set_xticks([])
    ax.spines[:].set_visible(False)
    return ax.figure


def class_sampler(
    model: Any,
    schedule: NoiseSchedule,
    class_names: Optional[Sequence[str]] = None,
    *,
    n: int = 8,
    guidance_scale: float = DEFAULT_GUIDANCE,
    method: Literal["dpm_solver", "ddim"] = "dpm_solver",
    seed: int = 0,
    display_size: int = PICKER_DISPLAY_SIZE,
) -> widgets.VBox:
    """A class picker for a conditional model: choose the class, the guidance weight w and
    the sampler, and it draws ``n`` new pictures in a near-square grid, each at most
    ``display_size`` screen pixels. Each change draws again from the same seed, so only the
    change shows; the "new noise" button moves to the next seed.
    """
    num_classes = getattr(getattr(model, "config", None), "num_classes", None)
    if num_classes is None:
        raise ValueError(
            "class_sampler needs a class-conditional model (model.config.num_classes)."
        )
    if method not in PICKER_SAMPLERS:
        raise ValueError(f"method must be one of {', '.join(PICKER_SAMPLERS)}; got {method!r}.")
    names = list(class_names) if class_names is not None else [str(c) for c in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(
            f"class_names has {len(names)} names but the model has {num_classes} classes."
        )
    if not 0 <= guidance_scale <= PICKER_MAX_GUIDANCE:
        raise ValueError(
            f"guidance_scale must be in 0..{PICKER_MAX_GUIDANCE:g}, got {guidance_scale!r}."
        )
    picker = widgets.Dropdown(options=[(name, c) for c, name in enumerate(names)], value=0,
                              description="class")  # fmt: skip
    scale = widgets.FloatSlider(value=guidance_scale, min=0.0, max=PICKER_MAX_GUIDANCE, step=0.5,
                                description="guidance w", continuous_update=False)  # fmt: skip
    sampler = widgets.ToggleButtons(
        options=[(f"DPM-Solver++ ({DEFAULT_STEPS['dpm_solver']} steps)", "dpm_solver"),
                 (f"DDIM ({DEFAULT_STEPS['ddim']} steps)", "ddim")],
        value=method,
    )  # fmt: skip
    again = widgets.Button(description="new noise", icon="refresh")
    image, text = widgets.Image(format="png"), widgets.HTML()
    state = {"seed": seed}
    ncols = grid_columns(n)

    def draw(_: object = None) -> None:
        start = time.perf_counter()
        how = Sampler(sampler.value, guidance_scale=float(scale.value))
        run = sample(model, schedule, n, how, labels=int(picker.value), seed=state["seed"],
                     progress=False)  # fmt: skip
        seconds = time.perf_counter() - start
        grid = to_pil(image_grid(run.images, ncols))
        side = max(run.images.shape[-2:])
        show_png(image, grid, *fitted_size(grid, side, display_size, WIDGET_WIDTH_PX))
        text.value = (
            f"{n} × <b>{names[picker.value]}</b> · w = {scale.value:g} · "
            f"{sampler.label} · seed {state['seed']} · {seconds:.1f} s"
        )

    def new_noise(_: object) -> None:
        state["seed"] += 1
        draw()

    for control in (picker, scale, sampler):
        control.observe(draw, names="value")
    again.on_click(new_noise)
    draw()
    return widgets.VBox(
        [widgets.HBox([picker, scale]), widgets.HBox([sampler, again]), text, image]
    )


def plot_nearest_neighbours(
    samples: torch.Tensor, dataset_images: torch.Tensor, n: int = 8
) -> Figure:
    """The first ``n`` samples, each above its nearest training image titled with the L2
    distance d between the two, in rows of up to ``PAIRS_PER_ROW`` pairs: a copy shows as two
    pictures alike with a small d."""
    check_image(samples, "samples")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    shown = samples[:n].detach().cpu()
    distances, indices = nearest_neighbours(shown, dataset_images)
    neighbours = dataset_images[indices[:, 0].to(dataset_images.device)].detach().cpu()
    cols = min(len(shown), PAIRS_PER_ROW)
    blank = torch.ones_like(shown[:1])  # white on white, axis off: an empty place
    pictures, titles = [], []
    for start in range(0, len(shown), cols):  # a row of samples, then their neighbours
        part = slice(start, start + cols)
        pad = cols - len(shown[part])
        for images, names in (
            (shown[part], ["sample"] * cols),
            (neighbours[part], [f"d = {float(d):.2f}" for d in distances[part, 0]]),
        ):
            pictures += [images, blank.expand(pad, -1, -1, -1)]
            titles += names[: len(images)] + [""] * pad
    fig = show_images(torch.cat(pictures), titles=titles, ncols=cols, size=8.0 / max(cols, 4))
    fig.suptitle("top: sample · below it: nearest training image (L2 distance d)", fontsize=10)
    return fig
