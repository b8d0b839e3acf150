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
