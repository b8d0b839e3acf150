"""Prove the harness on two tiny notebooks written here, independent of the tutorial.

If these fail, the browser, the server or a helper is broken, not the tutorial notebooks.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from lab_page import CellError
from PIL import Image

WIDGETS_CELL = """\
import ipywidgets as w
slider = w.IntSlider(value=3, min=0, max=10, description="n")
label = w.HTML()
play = w.Play(value=3, min=0, max=10, interval=300)
w.jslink((play, "value"), (slider, "value"))
slider.observe(lambda change: setattr(label, "value", f"n = {slider.value}"), "value")
label.value = f"n = {slider.value}"
upload = w.FileUpload(accept="image/*")
w.VBox([play, slider, label, upload])
"""
READ_UPLOAD_CELL = """\
import io
from PIL import Image
if upload.value:
    picked = Image.open(io.BytesIO(upload.value[0].content))
    print(f"got {upload.value[0].name} {picked.width}x{picked.height}")
else:
    print("nothing uploaded")
"""


def write_notebook(path: Path, cells: list) -> str:
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path.name


@pytest.fixture
def smoke_notebook(lab_root: Path) -> str:
    cells = [
        nbformat.v4.new_markdown_cell("# Harness smoke test"),
        nbformat.v4.new_code_cell(WIDGETS_CELL),
        nbformat.v4.new_code_cell(READ_UPLOAD_CELL),
    ]
    return "e2e_smoke/" + write_notebook(lab_root / "e2e_smoke" / "smoke.ipynb", cells)


@pytest.fixture
def failing_notebook(lab_root: Path) -> str:
    cells = [
        nbformat.v4.new_code_cell("print('before the error')"),
        nbformat.v4.new_code_cell("raise ValueError('e2e boom')"),
        nbformat.v4.new_code_cell("print('never runs')"),
    ]
    return "e2e_smoke/" + write_notebook(lab_root / "e2e_smoke" / "failing.ipynb", cells)


def label_n(label) -> int:  # noqa: ANN001 - Playwright Locator
    match = re.fullmatch(r"n = (\d+)", label.inner_text().strip())
    assert match, f"label shows {label.inner_text()!r}"
    return int(match.group(1))


def test_widgets_respond_to_keyboard_play_and_upload(open_notebook, tmp_path: Path, smoke_notebook):
    nb = open_notebook(smoke_notebook)
    nb.run_all()
    widgets = nb.cell(nb.cell_index("w.VBox(")).locator(".widget-vbox")
    label = widgets.locator(".widget-html-content")
    handle = widgets.locator(".widget-slider .noUi-handle")
    assert label.inner_text() == "n = 3"
    assert "nothing uploaded" in nb.cell(nb.cell_index("upload.value")).inner_text()

    # Keyboard on the slider handle: the kernel's observer rewrites the label.
    handle.focus()
    handle.press("ArrowRight")
    label.filter(has_text=re.compile(r"^n = 4$")).wait_for()
    handle.press("End")
    label.filter(has_text=re.compile(r"^n = 10$")).wait_for()
    handle.press("Home")
    label.filter(has_text=re.compile(r"^n = 0$")).wait_for()

    # Play advances the linked slider; the label follows. Pause keeps the reached value.
    play_button = widgets.locator(".widget-play button:has(i.fa-play)")
    play_button.click()
    nb.page.wait_for_function(
        "el => /^n = [1-9]/.test(el.textContent.trim())", arg=label.element_handle()
    )
    widgets.locator(".widget-play button:has(i.fa-pause)").click()
    assert label_n(label) >= 1

    # Upload through the file dialog, then re-run the cell that reads it.
    picture = tmp_path / "e2e_smoke_upload.png"
    Image.new("RGB", (30, 20), (255, 0, 255)).save(picture)
    nb.upload(widgets.locator(".widget-upload"), picture)
    widgets.locator(".widget-upload", has_text="Upload (1)").wait_for()
    read_index = nb.cell_index("upload.value")
    nb.run_cell(read_index)
    assert "got e2e_smoke_upload.png 30x20" in nb.cell(read_index).inner_text()


def test_run_all_reports_the_first_error(open_notebook, failing_notebook):
    nb = open_notebook(failing_notebook)
    with pytest.raises(CellError, match="cell 1 raised ValueError: e2e boom"):
        nb.run_all()
    counts = [cell["count"] for cell in nb.cells()]
    assert counts[0] is not None and counts[2] is None, "run all must stop at the error"


def test_a_run_that_outlasts_its_deadline_names_the_cells(open_notebook, lab_root: Path):
    cells = [
        nbformat.v4.new_code_cell("import time\ntime.sleep(60)"),
        nbformat.v4.new_code_cell("print('after the wait')"),
    ]
    nb = open_notebook("e2e_smoke/" + write_notebook(lab_root / "e2e_smoke" / "slow.ipynb", cells))
    nb.timeout_ms = 3_000  # far below the cell's 60 s sleep
    with pytest.raises(
        AssertionError, match=r"did not finish .* queued \(\[\*\]\): \[0, 1\], not run: \[\]"
    ):
        nb.run_all()


def test_a_dialog_fails_the_test_instead_of_waiting(open_notebook, lab_root: Path):
    path = lab_root / "e2e_smoke" / "unknown_kernel.ipynb"
    write_notebook(path, [nbformat.v4.new_code_cell("1 + 1")])
    notebook = nbformat.read(path, as_version=4)
    notebook.metadata["kernelspec"] = {"name": "no-such-kernel", "display_name": "Nowhere"}
    nbformat.write(notebook, path)
    with pytest.raises(AssertionError, match="JupyterLab shows a dialog"):
        open_notebook("e2e_smoke/unknown_kernel.ipynb")
