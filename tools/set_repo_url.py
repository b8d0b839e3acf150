"""Point every "Open in Colab" badge and notebook setup cell at the published repository.

The repository URL has one home, ``[project.urls] Repository`` in ``pyproject.toml``. The
notebooks need it before the package is installed (their first cell clones it in Colab), so
they carry a copy; this command rewrites every copy from that one place and regenerates the
paired ``.ipynb`` files. A test checks that no copy has drifted.

    python tools/set_repo_url.py https://github.com/OWNER/NAME
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
URL_LINE = re.compile(r'^Repository = "(https://github\.com/[^"/]+/[^"/]+)"$', re.M)
GITHUB_REPO = re.compile(r"https://github\.com/([\w.-]+)/([\w.-]+)")
COLAB_REPO = re.compile(r"colab\.research\.google\.com/github/([\w.-]+)/([\w.-]+)/")


def repo_url(root: Path = ROOT) -> str:
    """The repository URL from ``pyproject.toml`` (the one place it is kept)."""
    match = URL_LINE.search((root / "pyproject.toml").read_text())
    if not match:
        raise ValueError(
            'pyproject.toml has no [project.urls] Repository = "https://github.com/..."'
        )
    return match.group(1)


def files_with_copies(root: Path = ROOT) -> list[Path]:
    """The README and the notebook sources, which carry copies of the URL."""
    return [root / "README.md", *sorted((root / "notebooks").glob("[0-9][0-9]_*.py"))]


def copies(text: str) -> set[str]:
    """Every repository named in ``text``, as ``owner/name``, in clone URLs and Colab badges."""
    found = {f"{o}/{n}" for o, n in GITHUB_REPO.findall(text)}
    return found | {f"{o}/{n}" for o, n in COLAB_REPO.findall(text)}


def set_repo_url(new_url: str, root: Path = ROOT) -> list[Path]:
    """Replace the old repository with ``new_url`` everywhere; return the files changed."""
    match = GITHUB_REPO.fullmatch(new_url.rstrip("/"))
    if not match:
        raise ValueError(f"expected https://github.com/OWNER/NAME, got {new_url!r}.")
    old = repo_url(root).removeprefix("https://github.com/")
    new = "/".join(match.groups())
    old_name, new_name = old.split("/")[1], new.split("/")[1]
    changed = []
    for path in [root / "pyproject.toml", *files_with_copies(root)]:
        text = path.read_text()
        updated = text.replace(old, new)
        if path.suffix == ".py":  # the clone folder in the setup cell is named after the repo
            updated = updated.replace(f'"{old_name}"', f'"{new_name}"')
        if updated != text:
            path.write_text(updated)
            changed.append(path)
    import jupytext  # regenerate the paired notebooks Colab opens

    for path in changed:
        if path.suffix == ".py":
            jupytext.write(jupytext.read(path), path.with_suffix(".ipynb"))
    return changed


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for changed_file in set_repo_url(sys.argv[1]):
        print(f"updated {changed_file.relative_to(ROOT)}")
