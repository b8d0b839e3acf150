"""Every notebook runs top to bottom in quick mode, and every .ipynb matches its .py source."""

import json
import os
import shutil
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
CELL_TIMEOUT = 300  # seconds; quick mode keeps every cell to a few seconds
# Figures (PNG) each notebook must show, and the cells that must show a widget or the inline
# animation: a cell that silently stops drawing fails the test.
MIN_FIGURES = {
    "01_your_image": 2,
    "02_forward_noising": 4,
    "03_training_the_unet": 3,
    "04_reverse_sampling": 4,
}
MUST_SHOW = {
    "01_your_image": ["dh.upload_widget()"],
    "02_forward_noising": ["dh.forward_slider("],
    "03_training_the_unet": [],
    "04_reverse_sampling": ["dh.animation_html(", "dh.reverse_explorer("],
}
WIDGET = "application/vnd.jupyter.widget-view+json"


def test_there_are_four_notebooks():
    names = [p.stem for p in NOTEBOOKS]
    assert names == [
        "01_your_image",
        "02_forward_noising",
        "03_training_the_unet",
        "04_reverse_sampling",
    ]


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
