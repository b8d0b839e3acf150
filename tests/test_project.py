"""The project's own promises: public names, README commands, CI wiring."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_public_names_import_from_the_package():
    import diffusion_helpers as dh

    for name in ("NoiseSchedule", "add_noise", "add_noise_step", "reverse_step", "ddim_step"):
        assert callable(getattr(dh, name)), name
        assert name in dh.__all__


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- ci: test command -->\n```bash\n(.+)\n```", readme)
    assert match, "README must show the test command right after its CI marker"
    command = match.group(1)
    assert "pytest" in command and "ruff check" in command and "ruff format --check" in command
    assert "<!-- ci: test command -->" in (ROOT / ".ci" / "run").read_text()


def test_requirements_use_lower_bounds_only():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert "==" not in line and ">=" in line, line


def test_every_copy_of_the_repository_url_matches_pyproject():
    from diffusion_helpers.set_repo_url import copies, files_with_copies, repo_url

    expected = {repo_url().removeprefix("https://github.com/")}
    for path in files_with_copies():
        found = copies(path.read_text())
        assert found == expected, (
            f"{path.name} names {found}: run python -m diffusion_helpers.set_repo_url"
        )


def test_set_repo_url_rewrites_every_copy(tmp_path):
    import shutil

    from diffusion_helpers.set_repo_url import copies, files_with_copies, repo_url, set_repo_url

    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copy(ROOT / "README.md", tmp_path)
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    changed = set_repo_url("https://github.com/someone/my-fork", tmp_path)
    assert repo_url(tmp_path) == "https://github.com/someone/my-fork"
    assert len(changed) == 6  # pyproject, README, four notebooks
    for path in files_with_copies(tmp_path):
        assert copies(path.read_text()) == {"someone/my-fork"}, path.name
    assert '"my-fork"' in (tmp_path / "notebooks" / "01_your_image.py").read_text()
    assert "someone/my-fork" in (tmp_path / "notebooks" / "04_reverse_sampling.ipynb").read_text()
