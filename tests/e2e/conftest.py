"""Fixtures for the browser tests: a private JupyterLab server, headless Chromium, a page.

These tests run only when ``DIFFUSION_E2E=1`` (``tests/e2e/run.sh`` sets it after
installing Chromium and Playwright); a plain ``pytest`` from the repository root skips
them, so the main suite needs neither a browser nor Playwright.

Environment knobs:
    E2E_SCREENSHOT_DIR  where the screenshots go (default: a pytest temporary folder).
    E2E_TIMEOUT_S       deadline for one wait on the kernel, e.g. Run All (default 600).
    E2E_CHROMIUM        the browser executable (default /usr/bin/chromium, Debian's).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.request
from pathlib import Path

import pytest

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parents[1]
ENABLED = os.environ.get("DIFFUSION_E2E") == "1"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
]
VIEWPORT = {"width": 1400, "height": 1000}
# The helper modules beside this file, whatever pytest's import mode.
sys.path.insert(0, str(E2E_DIR))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ENABLED:
        return
    skip = pytest.mark.skip(reason="browser tests: run tests/e2e/run.sh (sets DIFFUSION_E2E=1)")
    for item in items:
        if E2E_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for what, attribute in (
        ("screenshots", "_e2e_screenshot_dir"),
        ("JupyterLab log", "_e2e_lab_log"),
    ):
        path = getattr(terminalreporter.config, attribute, None)
        if path is not None:
            terminalreporter.write_line(f"e2e {what}: {path}")


def timeout_s() -> float:
    # 600 s: notebook 04 in quick mode with no model of 03 beside it samples the shipped 64 px
    # model, DDPM's 1000 steps several times; its Run All took about 300 s in the browser on the
    # idle 2-core CI machine (it passed once and timed out once at the old 300 s).
    return float(os.environ.get("E2E_TIMEOUT_S", "600"))


@pytest.fixture(scope="session")
def screenshot_dir(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    folder = os.environ.get("E2E_SCREENSHOT_DIR")
    path = Path(folder).resolve() if folder else tmp_path_factory.mktemp("e2e-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    request.config._e2e_screenshot_dir = path
    print(f"\ne2e screenshots: {path}")
    return path


@pytest.fixture(scope="session")
def lab_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throw-away copy of notebooks/ and images/, so outputs/ land outside the repository.

    Only the .ipynb of each notebook is copied, not its jupytext .py: the tests open what
    Colab opens, and jupytext cannot refuse the pair over file times.
    """
    root = tmp_path_factory.mktemp("lab-root")
    skip = {"notebooks": ("outputs", ".ipynb_checkpoints", "*.py"), "images": ()}
    for name, patterns in skip.items():
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns(*patterns))
    return root


@pytest.fixture(scope="session")
def lab_server(
    request: pytest.FixtureRequest, lab_root: Path, tmp_path_factory: pytest.TempPathFactory
):
    from lab_server import JupyterLabServer

    server = JupyterLabServer(lab_root, tmp_path_factory.mktemp("lab-state"), python=sys.executable)
    try:
        request.config._e2e_lab_log = server.log_path
        server.start(timeout_s=120)
        yield server
    finally:
        server.stop()  # also runs on KeyboardInterrupt and on a failed start


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
    if not Path(executable).exists():
        pytest.fail(f"{executable} not found: run tests/e2e/run.sh, which installs Chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _shutdown_sessions(server) -> None:  # noqa: ANN001 - JupyterLabServer, imported lazily
    """Stop the kernels a test started, so the next notebook has the CPU to itself."""
    headers = {"Authorization": f"token {server.token}"}
    request = urllib.request.Request(f"{server.base_url}/api/sessions", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        sessions = json.load(response)
    for session in sessions:
        urllib.request.urlopen(
            urllib.request.Request(
                f"{server.base_url}/api/sessions/{session['id']}", headers=headers, method="DELETE"
            ),
            timeout=30,
        )


@pytest.fixture
def open_notebook(request: pytest.FixtureRequest, lab_server, browser, screenshot_dir: Path):
    """Return ``open(path) -> LabNotebook``; at the end, screenshot it and stop its kernel."""
    from lab_page import LabNotebook

    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)  # UI actions: clicks, selectors
    page = context.new_page()
    opened: list[LabNotebook] = []

    def open_(path: str) -> LabNotebook:
        if not (lab_server.root_dir / path).is_file():
            pytest.fail(f"{path} is missing from {lab_server.root_dir}")
        page.goto(lab_server.lab_url(path))
        notebook = LabNotebook(page, path, timeout_s=timeout_s())
        opened.append(notebook)  # screenshot it at the end even if it fails to open
        notebook.wait_ready()
        return notebook

    try:
        yield open_
    finally:
        try:
            if opened:  # the page shows the notebook opened last
                notebook = opened[-1]
                name = f"{request.node.name}-{Path(notebook.path).stem}.png"
                print(f"screenshot: {notebook.screenshot(screenshot_dir / name)}")
        finally:
            context.close()
            _shutdown_sessions(lab_server)
