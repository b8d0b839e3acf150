"""Every notebook runs top to bottom in quick mode, and every .ipynb matches its .py source.

The notebooks' hand-written loops (Algorithm 1 in 03, Algorithm 2 in 04) are run here cell by
cell, taken from the .py source by a marker comment, beside the package functions they
introduce: same seed, same draws, same numbers. Running the cell itself (rather than a copy of
it in a test) is what keeps the loop a learner reads and the package in step.
"""

import json
import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import jupytext
import nbformat
import pytest
import torch
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

import diffusion_helpers as dh
from diffusion_helpers.tutorial import exercises

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
CELL_TIMEOUT = 300  # seconds; quick mode keeps every cell to a few seconds
# Figures (PNG) each notebook must show, and the cells that must show a widget or the inline
# animation: a cell that silently stops drawing fails the test.
MIN_FIGURES = {
    "01_your_image": 2,
    "02_forward_noising": 5,
    "03_training_the_unet": 8,  # with the four what-if figures, which quick mode runs
    "04_reverse_sampling": 6,  # the variants figure included (quick mode turns the experiments on)
    "05_new_pictures": 8,
    "06_edit_and_vary": 10,
    "07_beyond_ddpm": 8,
}
MUST_SHOW = {
    "01_your_image": ["dh.upload_widget()"],
    "02_forward_noising": ["dh.forward_slider("],
    "03_training_the_unet": [],
    "04_reverse_sampling": ["dh.animation_html(", "dh.reverse_explorer("],
    "05_new_pictures": ["dh.class_sampler(", "dh.animation_html("],
    "06_edit_and_vary": ["dh.animation_html(", "dh.MaskPicker("],
    "07_beyond_ddpm": [],
}
WIDGET = "application/vnd.jupyter.widget-view+json"


def test_there_are_seven_notebooks():
    names = [p.stem for p in NOTEBOOKS]
    assert names == [
        "01_your_image",
        "02_forward_noising",
        "03_training_the_unet",
        "04_reverse_sampling",
        "05_new_pictures",
        "06_edit_and_vary",
        "07_beyond_ddpm",
    ]
    assert set(MIN_FIGURES) == set(MUST_SHOW) == set(names)


@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda p: p.stem)
def test_ipynb_is_in_sync_and_has_no_outputs(source):
    paired = source.with_suffix(".ipynb")
    assert paired.exists(), f"{paired.name} is missing: run `jupytext --sync {source}`"
    committed = json.loads(paired.read_text())
    from_source = jupytext.read(source)
    cells = [(c["cell_type"], "".join(c["source"])) for c in committed["cells"]]
    expected = [(c.cell_type, c.source) for c in from_source.cells]
    assert cells == expected, f"{paired.name} is out of sync: run `jupytext --sync {source}`"
    for cell in committed["cells"]:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, (
                f"{paired.name} has outputs committed: strip them"
            )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A temporary copy of notebooks/ and images/, so no output is written back."""
    root = tmp_path_factory.mktemp("tutorial")
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    return root / "notebooks"


@pytest.mark.slow
@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_quick_mode(source, workdir, monkeypatch):
    """Run in order in one folder, as a learner would: 04 finds the checkpoint 03 wrote."""
    monkeypatch.setenv("DIFFUSION_QUICK", "1")
    nb = nbformat.read(workdir / source.with_suffix(".ipynb").name, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    )
    try:
        client.execute()
    except CellExecutionError as err:  # the message holds the failing cell and its traceback
        pytest.fail(f"{source.name} failed:\n{err}", pytrace=False)
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors
    code = [c for c in nb.cells if c.cell_type == "code"]
    figures = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= MIN_FIGURES[source.stem], f"{source.name} showed too few figures"
    for call in MUST_SHOW[source.stem]:
        cell = next(c for c in code if call in c.source)
        shown = {k for o in cell.outputs for k in o.get("data", {})}
        assert shown & {WIDGET, "text/html"}, f"{call} showed nothing in {source.name}"
    assert os.path.isdir(workdir / "outputs")
    digits = workdir / "outputs" / "digits.pt"
    if source.stem == "05_new_pictures":  # saved for 06
        assert digits.exists()
    if source.stem == "06_edit_and_vary" and digits.exists():  # 06 draws with 05's model
        printed = "".join(o.get("text", "") for c in code for o in c.outputs)
        assert "Using notebook 05's digits model" in printed


# ----------------------------------------------------------------------------- cells as code


def code_cells(stem):
    return [
        c for c in jupytext.read(ROOT / "notebooks" / f"{stem}.py").cells if c.cell_type == "code"
    ]


def cell_with(stem, marker):
    """The source of the one code cell of notebook ``stem`` that contains ``marker``."""
    found = [c.source for c in code_cells(stem) if marker in c.source]
    assert len(found) == 1, f"{stem}: {len(found)} cells contain {marker!r}, expected one"
    return found[0]


def hidden(cell):
    return bool(cell.metadata.get("jupyter", {}).get("source_hidden"))


def solution(stem, name):
    """The source of the collapsed solution cell that defines ``name``."""
    found = [c.source for c in code_cells(stem) if hidden(c) and f"def {name}(" in c.source]
    assert len(found) == 1, f"{stem}: no single collapsed solution cell defines {name}"
    return found[0]


CHECK_CALL = re.compile(r"^dh\.exercises\.(check_\w+)\((\w+)\)$", re.M)


@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_exercise_is_stub_then_collapsed_solution_then_check(source):
    """The stub fails its check without raising, the collapsed solution passes it, and a run of
    the notebook from top to bottom (stub, solution, check) therefore passes every check."""
    cells = code_cells(source.stem)
    for i, cell in enumerate(cells):
        for check_name, fn_name in CHECK_CALL.findall(cell.source):
            stub, answer = cells[i - 2], cells[i - 1]
            assert f"def {fn_name}(" in stub.source and "NotImplementedError" in stub.source
            assert not hidden(stub) and hidden(answer) and f"def {fn_name}(" in answer.source
            check = getattr(exercises, check_name)
            for code, verdict in ((stub.source, False), (answer.source, True)):
                namespace = {"torch": torch}
                exec(code, namespace)
                assert check(namespace[fn_name]) is verdict, f"{source.stem}: {fn_name}"


def test_notebooks_have_the_exercises():
    found = {p.stem: CHECK_CALL.findall(p.read_text()) for p in NOTEBOOKS}
    assert [c for c, _ in found["02_forward_noising"]] == ["check_alpha_bar", "check_q_sample"]
    assert [c for c, _ in found["03_training_the_unet"]] == ["check_loss"]
    assert [c for c, _ in found["04_reverse_sampling"]] == ["check_reverse_step"]
    assert [c for c, _ in found["07_beyond_ddpm"]] == [
        "check_score",
        "check_langevin_step",
        "check_flow_loss",
        "check_euler_step",
    ]


def test_algorithm_1_by_hand_is_dh_train_without_the_extras():
    """Notebook 03's loop and dh.train with every extra off (fp32, constant lr, no warm-up, no
    gradient clipping, no EMA) draw the same batches and take the same steps."""
    steps, batch, lr, size = 4, 4, 1e-3, 16
    x0 = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(5)) * 2 - 1
    schedule = dh.NoiseSchedule(1000)
    settings = dh.TutorialSettings(
        torch.device("cpu"), False, size, "tiny", 1000, None, steps, 1, 10
    )
    namespace = {"torch": torch, "dh": dh, "S": settings, "x0": x0, "schedule": schedule}
    namespace.update(LR=lr, BATCH=batch, HAND_STEPS=steps)
    exec(solution("03_training_the_unet", "loss_fn"), namespace)
    exec(cell_with("03_training_the_unet", "# Algorithm 1 by hand"), namespace)

    model = dh.UNet.preset("tiny", image_channels=3, image_size=size, seed=0)
    result = dh.train(
        model, x0, schedule, steps=steps, batch_size=batch, lr=lr, seed=0, device="cpu",
        precision="fp32", lr_schedule="constant", warmup_steps=1, grad_clip=None, ema_decay=0,
        prediction="eps", adam_beta2=0.999,
        progress=False, threads=torch.get_num_threads(),
    )  # fmt: skip
    # The loop takes the mean of all squared differences, train() the mean of per-image means:
    # equal up to float32 rounding (~1e-7), which four Adam steps do not amplify past 1e-5.
    # Both run on the same number of threads: on a busy machine train() would pick fewer, and
    # another split of the sums rounds differently (seen: 6e-6 in one weight under load).
    assert namespace["hand_losses"] == pytest.approx(result.losses, rel=1e-5)
    assert len(set(result.losses)) == steps  # the weights moved: each step's loss differs
    for by_hand, packaged in zip(namespace["model"].parameters(), result.raw_model.parameters()):
        torch.testing.assert_close(by_hand, packaged, rtol=1e-4, atol=1e-6)


def test_algorithm_2_by_hand_is_dh_sample_with_the_same_choices():
    """Notebook 04's loop with the exercise's reverse_step and dh.sample(variance="beta",
    clip=False) start from the same x_T and take the same steps."""
    seen = []

    def model(x, t):  # a fixed stand-in for the U-Net; its x0_hat leaves [-1, 1], so any
        seen.append(x.clone())  # clipping (the package's default) would show
        return 0.5 * x + 0.1

    schedule = dh.NoiseSchedule(1000)
    x0 = torch.zeros(1, 3, 8, 8)
    settings = SimpleNamespace(device=torch.device("cpu"), num_samples=2)
    namespace = {"torch": torch, "dh": dh, "S": settings, "x0": x0, "schedule": schedule}
    namespace.update(model=model, T=schedule.num_steps, N_HAND=2)
    exec(solution("04_reverse_sampling", "reverse_step"), namespace)
    exec(cell_with("04_reverse_sampling", "# Algorithm 2 by hand"), namespace)
    by_hand, seen[:] = list(seen), []

    out = dh.sample(
        model, schedule, n=2, image_size=8, channels=3, seed=0, variance="beta", clip=False,
        progress=False,
    )  # fmt: skip
    assert len(by_hand) == len(seen) == schedule.num_steps
    assert torch.equal(by_hand[0], seen[0])  # the same x_T
    # The learner's formula divides by sqrt(alpha_t) where the package multiplies by its
    # inverse: float32 rounding (~1 ulp of values up to ~5 per step), which over 1000 steps
    # adds up to ~1e-5. A different draw, variance or clipping differs by 1e-3 or more.
    for step in (1, 2, 3):  # the first reverse steps
        torch.testing.assert_close(by_hand[step], seen[step], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(namespace["hand_images"], out.images, rtol=1e-4, atol=1e-5)


# Code a learner reads: no markers for tools or for the tests. A linter pragma or a
# formatter switch means the cell is written for a tool; "if S.quick" means the notebook does
# something else in the tests than for the learner (the sizes belong in the settings); a
# markdown heading in a code cell is text that lost its cell.
NOT_FOR_LEARNERS = re.compile(
    r"# noqa|# fmt: (?:skip|off|on)|# type: ignore|\bS\.quick\b|^\s*# #+ ", re.M
)


@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda p: p.stem)
def test_learner_cells_have_no_tool_markers_test_branches_or_stray_headings(source):
    found = [
        line.strip()
        for cell in code_cells(source.stem)
        for line in cell.source.splitlines()
        if NOT_FOR_LEARNERS.search(line)
    ]
    assert not found, f"{source.stem}: {found}"


def test_the_marker_check_catches_each_kind():
    for line in (
        "x = 1  # noqa: E501",
        "f(a)  # fmt: skip",
        "n = 2 if S.quick else 8",
        "# ## A title",
    ):
        assert NOT_FOR_LEARNERS.search(line), line
    assert not NOT_FOR_LEARNERS.search("S.quick_mode = 1; x = S.quickly  # a comment")


# A formula whose backslash escape was eaten when the source was written: in a plain Python
# string "\varepsilon" is a vertical tab and "arepsilon" (notebook 07 once showed it, a line
# break where the tab was). What each escape leaves: \v arepsilon, \t heta / ext{ / ilde,
# \f rac{, \b ar{, \a lpha, \n abla, \r ight. A fragment that starts a word (no letter
# before it) is what is left of a LaTeX command; a control character is the escape itself.
EATEN_ESCAPE = re.compile(
    r"(?<![A-Za-z])(?:arepsilon|heta|rac\{|ext\{|ilde|ar\{|lpha|abla|ight(?![a-z]))"
)
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # everything below a space but the newline
DISPLAY_MATH = re.compile(r"\$\$(.*?)\$\$", re.S)
INLINE_MATH = re.compile(r"\$([^$]*)\$")


def broken_formulas(text):
    """What looks like a formula broken in writing: an eaten escape, a control character, an
    empty $$ ... $$, a $$ left without its pair, or an empty $ ... $."""
    found = [text[max(0, m.start() - 20) : m.end() + 10] for m in EATEN_ESCAPE.finditer(text)]
    found += [f"control character {c!r}" for c in CONTROL.findall(text)]
    displays = [m.group(1) for m in DISPLAY_MATH.finditer(text)]
    found += ["an empty $$ $$" for inner in displays if not inner.strip()]
    rest = DISPLAY_MATH.sub(" ", text)  # what is left outside display math
    found += ["a $$ without its pair"] * rest.count("$$")
    inline = [m.group(1) for m in INLINE_MATH.finditer(rest.replace("$$", " "))]
    found += ["an empty $ $" for inner in inline if not inner.strip()]
    return found


def markdown_of(path):
    """The markdown cells of a notebook, from its .py source (as jupytext reads it) or its
    .ipynb (as Jupyter and Colab show it)."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    return [c.source for c in jupytext.read(path).cells if c.cell_type == "markdown"]


@pytest.mark.parametrize(
    "path",
    [p for source in NOTEBOOKS for p in (source, source.with_suffix(".ipynb"))],
    ids=lambda p: p.name,
)
def test_no_formula_lost_a_backslash(path):
    # A control character anywhere in the file (jupytext reads \v and \f as line breaks).
    found = [f"control character {c!r} in the file" for c in CONTROL.findall(path.read_text())]
    found += [f for text in markdown_of(path) for f in broken_formulas(text)]
    assert not found, f"{path.name}: {found}"


def test_the_formula_check_catches_each_kind():
    broken = {
        "\\v": "almost $\x0barepsilon$ here",
        "\\v as a line break": "almost $\narepsilon$ here",
        "\\t": "the weights $\theta$",
        "\\t in \\text": "$\text{SDE}$",
        "\\t in \\tilde": "$\tilde\\beta_t$",
        "\\f": "$\frac{1}{2}$",
        "\\b": "$\bar{x}$",
        "\\a": "$\\sqrt{\alpha}$",
        "\\n": "$\nabla \\log p$",
        "\\r": "$\\left(x\right)$",
        "\\f alone": "a page\x0cbreak",
        "empty display math": "before\n$$\n$$\nafter",
        "a $$ without its pair": "the value $$ here",
        "empty inline math": "the value $ $ here",
    }
    for kind, text in broken.items():
        assert broken_formulas(text), kind
    fine = (
        r"$\varepsilon_\theta(x_t, t)$, $\frac{1}{\sqrt{\alpha_t}}$, $\text{SDE}$, "
        r"$\tilde\beta_t$, $\bar{x} = \bar x$, $\nabla_x \log p$, $\left(x\right)$, "
        "s_theta, a tilde, the right light, Alpha\n\n$$x = 1$$\n\n$$\nx_{t-1} = y\n$$"
    )
    assert broken_formulas(fine) == []
