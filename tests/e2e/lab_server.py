"""Start and stop a private JupyterLab server for the browser tests.

The server listens on 127.0.0.1 only, with a random token, a temporary root folder and
temporary Jupyter config/data/runtime folders, so nothing on the machine changes and
nothing is fetched from the network (news, update checks and the PyPI extension manager
are switched off). Kernels inherit ``DIFFUSION_QUICK=1`` so the notebooks run their
quick settings.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

# Settings a fresh JupyterLab would otherwise ask about or fetch from the network.
USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it if pytest dies (even by SIGKILL)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class JupyterLabServer:
    """One ``jupyter lab`` process in its own process group, and everything it started."""

    def __init__(self, root_dir: Path, state_dir: Path, python: str = sys.executable) -> None:
        self.root_dir = Path(root_dir)
        self.state_dir = Path(state_dir)
        self.python = python
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.log_path = self.state_dir / "jupyterlab.log"
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lab_url(self, path: str = "") -> str:
        """URL of the JupyterLab page for a file relative to the root folder, with the token.

        ``reset`` starts from an empty workspace: otherwise JupyterLab reopens the notebooks
        of the previous page (and starts their kernels again).
        """
        tree = f"/tree/{path}" if path else ""
        return f"{self.base_url}/lab{tree}?reset&token={self.token}"

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("MPLBACKEND", None)  # kernels must use the inline backend, as in Colab
        env.pop("JUPYTER_TOKEN", None)
        for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
            folder = self.state_dir / name.lower()
            folder.mkdir(parents=True, exist_ok=True)
            env[name] = str(folder)
        env["DIFFUSION_QUICK"] = "1"
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _write_user_settings(self) -> Path:
        settings_dir = self.state_dir / "lab-user-settings"
        for rel_path, values in USER_SETTINGS.items():
            path = settings_dir / rel_path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        return settings_dir

    def command(self) -> list[str]:
        settings_dir = self._write_user_settings()
        workspaces_dir = self.state_dir / "lab-workspaces"
        workspaces_dir.mkdir(parents=True, exist_ok=True)
        return [
            self.python,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",  # fail loudly rather than move to another port
            f"--IdentityProvider.token={self.token}",
            "--ServerApp.allow_root=True",  # CI runs as root; harmless otherwise
            f"--ServerApp.root_dir={self.root_dir}",
            "--ServerApp.terminals_enabled=False",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            f"--LabApp.user_settings_dir={settings_dir}",
            f"--LabApp.workspaces_dir={workspaces_dir}",
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: kernel status, outputs
        ]

    def start(self, timeout_s: float) -> None:
        """Start the server and wait until ``/api/status`` answers; raise if it does not."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.root_dir,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: killpg reaches all of it
                preexec_fn=_die_with_parent,
            )
        self._wait_ready(timeout_s)

    def _status_ok(self) -> bool:
        request = urllib.request.Request(
            f"{self.base_url}/api/status", headers={"Authorization": f"token {self.token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited with code {self.process.returncode} before answering;"
                    f" its log:\n{self.log_tail()}"
                )
            if self._status_ok():
                return
            time.sleep(0.25)  # polling interval of the readiness condition, not a fixed wait
        raise TimeoutError(
            f"jupyter lab did not answer /api/status within {timeout_s} s; log:\n{self.log_tail()}"
        )

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop the server and every process it started (kernels run in their own sessions)."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            family = [
                psutil.Process(self.process.pid),
                *psutil.Process(self.process.pid).children(recursive=True),
            ]
        except psutil.NoSuchProcess:
            family = []
        # SIGTERM first: jupyter server shuts its kernels down cleanly on it.
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        _, alive = psutil.wait_procs(family, timeout=grace_s)
        for proc in alive:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=grace_s)
