"""Pictures of a model trained on many pictures: samples by class, the copying check of the
one-picture model, a classifier-free guidance sweep, and a class picker.

A class-conditional model (``model.config.num_classes``) draws a picture of the class it is
asked for; classifier-free guidance (Ho & Salimans 2022) with weight w,

    eps = eps_theta(x_t, t, null) + w (eps_theta(x_t, t, y) - eps_theta(x_t, t, null)),

(:func:`.sampling.guided_noise`) trades variety for pictures that look more like their class:
w = 0 ignores the class, w = 1 is the plain conditional model, w > 1 pushes further.
:func:`guidance_sweep` measures that trade with the small classifier of :mod:`.evaluate`
(accuracy, within-class diversity, Fréchet distance) and :func:`plot_guidance_sweep` shows it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, Literal, Optional

import ipywidgets as widgets
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from .animation import image_grid, imshow_pixels
from .evaluate import class_accuracy, diversity, features, frechet_distance
from .forward import check_image
from .guidance import DEFAULT_GUIDANCE
from .images import to_numpy, to_pil
from .sampling import DEFAULT_STEPS, sample
from .schedule import NoiseSchedule
from .widgets import WIDGET_WIDTH_PX, _png, display_scale, grid_columns

# The guidance weights of the sweep figure: none (w = 0), the plain conditional model (1), and
# two stronger ones; Ho & Salimans (2022) show the trade-off over the same range.
SWEEP_SCALES = (0.0, 1.0, 3.0, 7.0)
# The class picker's samplers, both converged on the digits model (DPM-Solver++ in 20 steps
# scored as DDIM in 50 and DDPM in 1000 did: accuracy, Fréchet distance). For 8 guided 16 px
# digits on one CPU core they take about 0.8 s and 2.1 s (measured: 500 digits took 52 and 134
# s of CPU time); DDPM's 1000 steps would take about 40 s.
PICKER_SAMPLERS = ("dpm_solver", "ddim")
PICKER_MAX_GUIDANCE = 10.0
# The picker draws each picture this many screen pixels high at most (16 px digits: 6x).
PICKER_DISPLAY_SIZE = 96


def class_labels(num_classes: int, per_class: int) -> torch.Tensor:
    """Labels for ``per_class`` pictures of each of ``num_classes`` classes, class by class:
    LongTensor [num_classes * per_class] = 0, ..., 0, 1, ..., 1, ..."""
    for name, value in (("num_classes", num_classes), ("per_class", per_class)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
    return torch.arange(num_classes).repeat_interleave(per_class)


def pick_per_class(
    images: torch.Tensor, labels: torch.Tensor, per_class: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` of the ``images`` [N, C, H, W] of every class in ``labels`` [N], drawn at
    random (seeded) and returned class by class with their labels, as
    :func:`class_labels` orders samples: real pictures to compare with class-balanced samples
    at equal count (the Fréchet distance depends on how many of each class a set holds).
    A class with fewer pictures gives all it has."""
    labels = torch.as_tensor(labels).cpu()
    if labels.shape != (len(images),):
        raise ValueError(
            f"labels must be [N] with N = {len(images)} (one per image), got {list(labels.shape)}."
        )
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"per_class must be an integer >= 1, got {per_class!r}.")
    gen = torch.Generator().manual_seed(seed)
    chosen = []
    for c in labels.unique():
        members = (labels == c).nonzero()[:, 0]
        chosen.append(members[torch.randperm(len(members), generator=gen)[:per_class]])
    index = torch.cat(chosen)
    return images[index.to(images.device)], labels[index]


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
    labels = torch.as_tensor(labels).cpu()
    if labels.shape != (len(images),):
        raise ValueError(
            f"labels must be [n] with n = {len(images)} (one per image), got {list(labels.shape)}."
        )
    classes = sorted(set(labels.tolist()))
    if class_names is not None and max(classes) >= len(class_names):
        raise ValueError(
            f"class_names has {len(class_names)} names but labels go to {max(classes)}."
        )
    names = [class_names[c] if class_names is not None else str(c) for c in classes]
    rows = [images[labels == c][:max_per_row].detach().cpu() for c in classes]
    return _grid_figure(rows, names, None, size)


def _grid_figure(
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
    for spine in ax.spines.values():
        spine.set_visible(False)
    return ax.figure


def picture_variants(x0: torch.Tensor, max_shift: int = 2) -> torch.Tensor:
    """The one picture of a one-picture model as a small "training set" for the copying check:
    ``x0`` [1, C, H, W] and its left-right mirror, each shifted by every (dy, dx) with
    |dy|, |dx| <= ``max_shift`` pixels (the edge pixels repeated into the gap).

    Returns [2 (2 s + 1)^2, C, H, W] (s = ``max_shift``; 50 pictures for s = 2), x0 itself
    first. The nearest of them to x0 is a 1 px shift: that distance is what
    :func:`.evaluate.memorisation_ratio` divides by, so a copy of x0 scores about 0.
    """
    if x0.dim() == 3:
        x0 = x0.unsqueeze(0)
    check_image(x0, "x0")
    if x0.shape[0] != 1:
        raise ValueError(f"x0 must be one picture [1, C, H, W], got {list(x0.shape)}.")
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 1:
        raise ValueError(f"max_shift must be an integer >= 1 (pixels), got {max_shift!r}.")
    s = max_shift
    if s >= min(x0.shape[-2:]):
        raise ValueError(f"max_shift={s} must be smaller than the picture's side.")
    h, w = x0.shape[-2:]
    offsets = [(0, 0)] + [
        (dy, dx) for dy in range(-s, s + 1) for dx in range(-s, s + 1) if dy or dx
    ]
    out = []
    for picture in (x0, x0.flip(-1)):
        padded = F.pad(picture, (s, s, s, s), mode="replicate")
        # the picture moved by (dy, dx): its pixel (i, j) lands at (i + dy, j + dx)
        out += [padded[..., s - dy : s - dy + h, s - dx : s - dx + w] for dy, dx in offsets]
    return torch.cat(out).contiguous()


def within_class_diversity(images: torch.Tensor, labels: torch.Tensor) -> float:
    """The mean over classes of :func:`.evaluate.diversity` among the ``images`` [n, C, H, W] of
    each class (``labels`` [n]; classes with one image are skipped): how different two pictures
    of the same class are. Guidance lowers it; compare with the real pictures' value."""
    labels = torch.as_tensor(labels).cpu()
    if labels.shape != (len(images),):
        raise ValueError(
            f"labels must be [n] with n = {len(images)} (one per image), got {list(labels.shape)}."
        )
    values = [diversity(images[labels == c]) for c in labels.unique() if (labels == c).sum() > 1]
    if not values:
        raise ValueError("within_class_diversity needs a class with at least 2 images.")
    return sum(values) / len(values)


@dataclass
class GuidanceResult:
    """One guidance weight of :func:`guidance_sweep`.

    Attributes:
        scale: the guidance weight w.
        images: the samples [n, C, H, W], class by class (``labels``).
        labels: the class each was drawn for [n].
        accuracy: fraction the classifier puts in the asked-for class.
        diversity: :func:`within_class_diversity` of the samples.
        frechet: Fréchet distance of their classifier features to the reference features
            (None without ``reference_features``).
        seconds: sampling time.
    """

    scale: float
    images: torch.Tensor
    labels: torch.Tensor
    accuracy: float
    diversity: float
    frechet: Optional[float]
    seconds: float


def guidance_sweep(
    model: Callable[..., torch.Tensor],
    schedule: NoiseSchedule,
    classifier: torch.nn.Module,
    scales: Sequence[float] = SWEEP_SCALES,
    per_class: int = 10,
    *,
    reference_features: Optional[torch.Tensor] = None,
    method: Literal["ddpm", "ddim", "dpm_solver"] = "dpm_solver",
    steps: Optional[int] = None,
    seed: int = 0,
    progress: bool = False,
) -> list[GuidanceResult]:
    """Sample ``per_class`` pictures of every class at each guidance weight in ``scales``, from
    the same seed (so the same starting noise x_T at every w), and score them with
    ``classifier`` (an :class:`.evaluate.DigitClassifier`): accuracy, within-class diversity,
    and, given ``reference_features`` [N, d] of real pictures, the Fréchet distance.

    ``model`` must be conditional (``model.config.num_classes``).
    """
    num_classes = getattr(getattr(model, "config", None), "num_classes", None)
    if num_classes is None:
        raise ValueError(
            "guidance_sweep needs a class-conditional model (model.config.num_classes): build "
            "it with UNet.preset(..., num_classes=K) and train it with labels."
        )
    labels = class_labels(num_classes, per_class)
    results = []
    for w in scales:
        start = time.perf_counter()
        run = sample(model, schedule, n=len(labels), labels=labels, guidance_scale=float(w),
                     method=method, steps=steps, seed=seed, progress=progress)  # fmt: skip
        seconds = time.perf_counter() - start
        fd = None
        if reference_features is not None:
            fd = frechet_distance(features(classifier, run.images), reference_features)
        results.append(
            GuidanceResult(
                scale=float(w),
                images=run.images,
                labels=labels,
                accuracy=class_accuracy(classifier, run.images, labels),
                diversity=within_class_diversity(run.images, labels),
                frechet=fd,
                seconds=seconds,
            )
        )
    return results


def guidance_table(
    results: Sequence[GuidanceResult], real_diversity: Optional[float] = None
) -> str:
    """The sweep as a text table: w, accuracy, within-class diversity, Fréchet distance, time."""
    lines = [f"{'w':>5} {'accuracy':>9} {'diversity':>10} {'Fréchet':>8} {'seconds':>8}"]
    for r in results:
        fd = f"{r.frechet:8.1f}" if r.frechet is not None else f"{'-':>8}"
        lines.append(f"{r.scale:5g} {r.accuracy:9.0%} {r.diversity:10.2f} {fd} {r.seconds:8.1f}")
    if real_diversity is not None:
        lines.append(f"{'real':>5} {'':>9} {real_diversity:10.2f}")
    return "\n".join(lines)


def plot_guidance_sweep(
    results: Sequence[GuidanceResult],
    class_names: Optional[Sequence[str]] = None,
    real_diversity: Optional[float] = None,
    size: float = 0.6,
) -> Figure:
    """Left: one row of pictures per guidance weight (the first sample of every class, drawn
    from the same noise at every w), labelled with its accuracy and diversity. Right: accuracy
    and within-class diversity against w (the real pictures' diversity as a dashed line)."""
    if not results:
        raise ValueError("results is empty: run guidance_sweep first.")
    rows, names = [], []
    for r in results:
        first = torch.stack([(r.labels == c).nonzero()[0, 0] for c in r.labels.unique()])
        rows.append(r.images[first])
        names.append(f"w = {r.scale:g}\n{r.accuracy:.0%} right · div. {r.diversity:.1f}")
    classes = results[0].labels.unique().tolist()
    columns = [class_names[c] for c in classes] if class_names is not None else classes
    cols = len(classes)
    fig = Figure(figsize=(size * cols + 5.2, max(size * len(rows) + 0.6, 2.6)),
                 layout="constrained")  # fmt: skip
    left, right = fig.subplots(1, 2, width_ratios=[size * cols + 1.4, 3.2])
    _grid_figure(rows, names, [str(c) for c in columns], size, ax=left)
    ws = [r.scale for r in results]
    right.plot(ws, [100 * r.accuracy for r in results], "o-", color="tab:blue")
    right.set_xlabel("guidance weight w")
    right.set_ylabel("accuracy (%)", color="tab:blue")
    right.set_ylim(0, 105)
    twin = right.twinx()
    twin.plot(ws, [r.diversity for r in results], "s-", color="tab:orange")
    if real_diversity is not None:
        twin.axhline(real_diversity, color="tab:orange", ls="--", lw=1)
        twin.annotate("real", (ws[-1], real_diversity), color="tab:orange", fontsize=8,
                      textcoords="offset points", xytext=(0, 3), ha="right")  # fmt: skip
    twin.set_ylabel("diversity within a class", color="tab:orange")
    twin.set_ylim(bottom=0)
    right.set_title("more guidance: right digit, less variety", fontsize=9)
    return fig


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
    the sampler (DPM-Solver++ in 20 steps or DDIM in 50), and it draws ``n`` new pictures.

    Each change draws again from the same seed (so only the change itself shows); the
    "new noise" button moves to the next seed. A label says what was drawn and how long it
    took. The pictures form a near-square grid (:func:`.widgets.grid_columns`), each at most
    ``display_size`` screen pixels, the grid at most ``WIDGET_WIDTH_PX`` wide.
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
        run = sample(model, schedule, n=n, labels=int(picker.value), method=sampler.value,
                     guidance_scale=float(scale.value), seed=state["seed"], progress=False)  # fmt: skip
        seconds = time.perf_counter() - start
        grid = to_pil(image_grid(run.images, ncols))
        side = max(run.images.shape[-2:])
        factor = display_scale(side, grid.width, display_size, WIDGET_WIDTH_PX)
        width, height = max(1, round(grid.width * factor)), max(1, round(grid.height * factor))
        image.value = _png(grid, width, height)
        image.width, image.height = str(width), str(height)
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
