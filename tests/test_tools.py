"""The maintainer tools in tools/: the repository URL kept in one place, the sample pictures
redrawn by their script."""

import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from diffusion_helpers.pictures import images as images_mod
from diffusion_helpers.pictures.images import sample_image_path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))


def test_every_copy_of_the_repository_url_matches_pyproject():
    from set_repo_url import copies, files_with_copies, repo_url

    expected = {repo_url().removeprefix("https://github.com/")}
    for path in files_with_copies():
        found = copies(path.read_text())
        assert found == expected, f"{path.name} names {found}: run python tools/set_repo_url.py"


def test_set_repo_url_rewrites_every_copy(tmp_path):
    from set_repo_url import copies, files_with_copies, repo_url, set_repo_url

    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copy(ROOT / "README.md", tmp_path)
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    changed = set_repo_url("https://github.com/someone/my-fork", tmp_path)
    assert repo_url(tmp_path) == "https://github.com/someone/my-fork"
    notebooks = len(list((ROOT / "notebooks").glob("[0-9][0-9]_*.py")))
    assert len(changed) == 2 + notebooks  # pyproject, README, every notebook
    for path in files_with_copies(tmp_path):
        assert copies(path.read_text()) == {"someone/my-fork"}, path.name
    assert '"my-fork"' in (tmp_path / "notebooks" / "01_your_image.py").read_text()
    assert "someone/my-fork" in (tmp_path / "notebooks" / "04_reverse_sampling.ipynb").read_text()


def test_samples_match_their_script():
    import make_samples

    assert make_samples.IMAGES_DIR == images_mod.IMAGES_DIR
    for name, draw in make_samples.SAMPLES.items():
        committed = np.asarray(Image.open(sample_image_path(name)).convert("RGB"))
        np.testing.assert_array_equal(np.asarray(draw()), committed)


def test_photos_match_their_script():
    """The two procedural "photographs" (CC0) used to measure variations redraw byte for byte."""
    import make_photos

    for name, draw in make_photos.PHOTOS.items():
        committed = np.asarray(Image.open(images_mod.IMAGES_DIR / f"{name}.png").convert("RGB"))
        np.testing.assert_array_equal(np.asarray(draw()), committed)
