#!/usr/bin/env bash
# The browser test command: installs what the end-to-end suite needs, then runs it.
#   bash tests/e2e/run.sh            (from the repository root; extra args go to pytest)
#   PYTHON=/path/to/python bash tests/e2e/run.sh
# Installs Debian's chromium with apt-get unless /usr/bin/chromium exists (needs root or
# sudo), and tests/e2e/requirements.txt into the active Python. Screenshots go to
# $E2E_SCREENSHOT_DIR (default: a temporary folder that the run prints).
set -euo pipefail

PYTHON="${PYTHON:-python}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
CHROMIUM="${E2E_CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$CHROMIUM" ]; then
    SUDO=""
    if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
    echo "e2e: installing Debian's chromium with apt-get"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium
fi

echo "e2e: installing tests/e2e/requirements.txt into $("$PYTHON" -c 'import sys; print(sys.executable)')"
"$PYTHON" -m pip install -q --disable-pip-version-check -r "$HERE/requirements.txt"

cd "$REPO_ROOT"
export DIFFUSION_E2E=1
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
# A hard cap: on SIGINT pytest runs its finalizers, which stop the JupyterLab server.
exec timeout --signal=INT --kill-after=60 900 "$PYTHON" -m pytest tests/e2e -q -p no:cacheprovider "$@"
