"""Drive one notebook in JupyterLab the way a learner does, and read back what it shows.

Actions go through the user interface (menu clicks, keyboard, the upload dialog); state
that the page does not show in a stable way (kernel status, execution counts, error
outputs) is read from ``window.jupyterapp``, which the server exposes for these tests.
Every wait is on a condition with a deadline; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Playwright is only needed when the tests run, not when pytest collects
    from playwright.sync_api import Locator, Page

# JavaScript run in the page. `panel` is the notebook panel of the path under test.
_PANEL_JS = """
(path) => {
  const app = window.jupyterapp;
  if (!app) return null;
  for (const w of app.shell.widgets('main')) {
    if (w.context && w.context.path === path && w.content && w.content.model) return w;
  }
  return null;
}
"""

_READY_JS = f"""
(path) => {{
  if (document.querySelector('.jp-Dialog')) return true;  // an error or a question: stop
  const panel = ({_PANEL_JS})(path);
  const kernel = panel && panel.sessionContext.session && panel.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle' && panel.content.widgets.length > 0;
}}
"""

# Code cells with something to run, their execution counts, and whether any shows [*].
_CELLS_JS = f"""
(path) => {{
  const panel = ({_PANEL_JS})(path);
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = [];
  panel.content.widgets.forEach((cell, index) => {{
    const model = cell.model;
    if (model.type !== 'code') return;
    const errors = model.outputs.toJSON().filter(o => o.output_type === 'error');
    cells.push({{
      index,
      source: model.sharedModel.getSource(),
      count: model.executionCount,
      running: /\\[\\*\\]/.test(cell.node.querySelector('.jp-InputPrompt')?.textContent || ''),
      errors: errors.map(o => ({{ename: o.ename, evalue: o.evalue,
                                 traceback: (o.traceback || []).join('\\n')}})),
    }});
  }});
  return {{kernel: kernel ? kernel.status : 'none', cells}};
}}
"""

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class CellError(AssertionError):
    """A notebook cell raised: carries the first error's name, value and traceback."""


class LabNotebook:
    """One open notebook in a JupyterLab page.

    Args:
        page: the Playwright page showing JupyterLab.
        path: the notebook's path relative to the server's root folder.
        timeout_s: default deadline for waits on the kernel (runs of cells).
    """

    def __init__(self, page: Page, path: str, timeout_s: float) -> None:
        self.page = page
        self.path = path
        self.timeout_ms = timeout_s * 1000

    # ---- state read from the page ----

    def cells(self) -> list[dict]:
        """Code cells: index, source, execution count, running flag and error outputs."""
        return self.page.evaluate(_CELLS_JS, self.path)["cells"]

    def kernel_status(self) -> str:
        return self.page.evaluate(_CELLS_JS, self.path)["kernel"]

    def cell(self, index: int) -> Locator:
        """The cell widget at this notebook position (all cells stay in the DOM by default)."""
        return self.page.locator(
            f".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell[data-windowed-list-index='{index}']"
        )

    def cell_index(self, text: str) -> int:
        """Index of the first code cell whose source contains ``text``."""
        for cell in self.cells():
            if text in cell["source"]:
                return cell["index"]
        raise AssertionError(f"no code cell of {self.path} contains {text!r}")

    def raise_first_error(self) -> None:
        """Fail with the first error output of the notebook, if any cell has one."""
        for cell in self.cells():
            for error in cell["errors"]:
                traceback = _ANSI.sub("", error["traceback"])
                raise CellError(
                    f"{self.path}: cell {cell['index']} raised {error['ename']}: {error['evalue']}"
                    f"\n--- source ---\n{cell['source']}\n--- traceback ---\n{traceback}"
                )

    # ---- waits ----

    def wait_ready(self) -> None:
        """Wait until the notebook is rendered and its kernel has started and is idle."""
        self.page.wait_for_function(_READY_JS, arg=self.path, timeout=self.timeout_ms)
        self.raise_dialog()

    def raise_dialog(self) -> None:
        """Fail with the text of a JupyterLab dialog if one is open (nobody would answer it)."""
        dialog = self.page.locator(".jp-Dialog")
        if dialog.count():
            raise AssertionError(f"{self.path}: JupyterLab shows a dialog:\n{dialog.inner_text()}")

    def _wait_runs_done(self, indices: list[int], after_count: int) -> None:
        """Wait until these cells ran (count > after_count) or a cell failed, then idle."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            self._wait_for_runs(indices, after_count)
        except PlaywrightTimeout:
            cells = self.cells()
            running = [c["index"] for c in cells if c["running"]]
            waiting = [
                c["index"]
                for c in cells
                if c["index"] in indices and not c["running"] and (c["count"] or 0) <= after_count
            ]
            raise AssertionError(
                f"{self.path}: the cells did not finish within {self.timeout_ms / 1000:.0f} s"
                f" (E2E_TIMEOUT_S); running or queued ([*]): {running}, not run: {waiting}"
            ) from None
        if self.kernel_status() == "dead":
            raise AssertionError(f"{self.path}: the kernel died (see the JupyterLab log)")
        self.raise_dialog()
        self.raise_first_error()

    def _wait_for_runs(self, indices: list[int], after_count: int) -> None:
        self.page.wait_for_function(
            f"""([path, indices, after]) => {{
                const state = ({_CELLS_JS})(path);
                if (state.kernel === 'dead' || document.querySelector('.jp-Dialog')) return true;
                if (state.kernel !== 'idle' || state.cells.some(c => c.running)) return false;
                if (state.cells.some(c => c.errors.length > 0)) return true;
                const ran = new Map(state.cells.map(c => [c.index, (c.count || 0) > after]));
                return indices.every(i => ran.get(i));
            }}""",
            arg=[self.path, indices, after_count],
            timeout=self.timeout_ms,
        )

    def _max_count(self) -> int:
        return max([c["count"] or 0 for c in self.cells()], default=0)

    # ---- learner actions ----

    def run_all(self) -> None:
        """Run > Run All Cells from the menu bar; wait for every code cell; fail on an error."""
        before = self._max_count()
        to_run = [c["index"] for c in self.cells() if c["source"].strip()]
        self.page.locator('.lm-MenuBar-itemLabel:text-is("Run")').click()
        self.page.locator('li.lm-Menu-item[data-command="runmenu:run-all"]').click()
        self._wait_runs_done(to_run, before)

    def run_cell(self, index: int) -> None:
        """Select the cell by clicking its prompt, press Shift+Enter, wait for it to finish."""
        before = self._max_count()
        prompt = self.cell(index).locator(".jp-InputPrompt")
        prompt.scroll_into_view_if_needed()
        prompt.click()
        self.page.keyboard.press("Shift+Enter")
        self._wait_runs_done([index], before)

    def upload(self, button: Locator, file_path: Path) -> None:
        """Click an upload button and pick ``file_path`` in the file dialog it opens.

        ipywidgets 8's FileUpload keeps its ``<input type=file>`` out of the DOM and opens it
        from the button's click handler, so the dialog is answered as a person would.
        """
        with self.page.expect_file_chooser(timeout=self.timeout_ms) as chooser:
            button.click()
        chooser.value.set_files(str(file_path))

    # ---- pictures for a person ----

    def screenshot(self, path: Path) -> Path:
        """Save a picture of the whole notebook: the viewport is stretched to its height."""
        path.parent.mkdir(parents=True, exist_ok=True)
        scroller = self.page.locator(
            ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer"
        )
        if scroller.count() != 1:  # the notebook did not open: show whatever the page shows
            self.page.screenshot(path=str(path), full_page=True)
            return path
        # Down to the last cell's bottom: the notebook pads its end so it can scroll past it.
        content_h = scroller.evaluate(
            """el => {
                const cells = el.querySelectorAll('.jp-Cell');
                const last = cells[cells.length - 1];
                const bottom = last.getBoundingClientRect().bottom - el.getBoundingClientRect().top;
                return Math.ceil(bottom + el.scrollTop) + 40;
            }"""
        )
        viewport = self.page.viewport_size
        chrome_h = viewport["height"] - scroller.evaluate("el => el.clientHeight")
        # Chromium refuses screenshots taller than 16384 px; longer notebooks are cut there.
        height = min(max(content_h + chrome_h, viewport["height"]), 16000)
        self.page.set_viewport_size({"width": viewport["width"], "height": height})
        try:
            self.page.wait_for_function(
                "([el, h]) => el.clientHeight >= h",
                arg=[scroller.element_handle(), height - chrome_h],
            )
            scroller.evaluate("el => el.scrollTo(0, 0)")
            self.page.screenshot(path=str(path), full_page=True)
        finally:
            self.page.set_viewport_size(viewport)
        return path


# ---- reading widgets ----


def wait_for_text(locator: Locator, pattern: str, timeout_ms: float = 30_000) -> re.Match:
    """Wait until the element's text matches the regular expression; return the match."""
    locator.page.wait_for_function(
        "([el, pattern]) => new RegExp(pattern).test(el.textContent)",
        arg=[locator.element_handle(), pattern],
        timeout=timeout_ms,
    )
    return re.search(pattern, locator.text_content())


def wait_for_new_src(image: Locator, old_src: str, timeout_ms: float = 30_000) -> str:
    """Wait until an <img> shows a different, loaded source than ``old_src``; return it."""
    image.page.wait_for_function(
        "([el, old]) => el.src && el.src !== old && el.complete && el.naturalWidth > 0",
        arg=[image.element_handle(), old_src],
        timeout=timeout_ms,
    )
    return image.get_attribute("src")


def shown_picture(element: Locator):  # noqa: ANN201 - PIL.Image.Image
    """What the element looks like on screen, as an RGB Pillow image."""
    import io

    from PIL import Image

    element.scroll_into_view_if_needed()
    return Image.open(io.BytesIO(element.screenshot())).convert("RGB")


def output_picture(output: Locator, timeout_ms: float = 10_000) -> Locator:
    """The first <img> in a cell's output area; fail with the output's text if there is none.

    A matplotlib figure that JupyterLab cannot show as a picture appears as the text
    ``<Figure size ... with 1 Axes>``: the message says so instead of timing out silently.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    picture = output.locator("img").first
    try:
        picture.wait_for(state="visible", timeout=timeout_ms)
    except PlaywrightTimeout:
        raise AssertionError(
            f"no picture in the cell output; it shows:\n{output.inner_text()}"
        ) from None
    return picture
