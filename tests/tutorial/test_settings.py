"""The sizes for this machine (tutorial/settings.py)."""

import pytest

import diffusion_helpers as dh
from diffusion_helpers.tutorial.settings import settings


def test_quick_mode_is_tiny_and_full_mode_fits_a_cpu(monkeypatch):
    monkeypatch.setenv("DIFFUSION_QUICK", "1")
    quick = dh.settings("cpu")
    assert quick.quick and quick.image_size <= 16 and quick.train_steps <= 50
    monkeypatch.delenv("DIFFUSION_QUICK")
    full = dh.settings("cpu")
    assert not full.quick and full.image_size == 64 and full.train_minutes <= 5
    # The preset must accept the size: 64 is divisible by 2^(levels-1).
    assert full.image_size in dh.UNet.preset(full.preset).valid_sizes()


@pytest.mark.parametrize(
    "size, words",
    [
        (0, "size must be a whole number from 8"),
        (3, "size must be a whole number from 8"),
        (16.0, "size must be a whole number"),
        (30, "size 30 is not divisible by 4: .* Try 28 or 32"),
        (100000, "size must be a whole number from 8 to 4096"),
        (2048, "a 4,096-minute training run .* more than a day. Use a size up to"),
    ],
)
def test_a_size_is_a_whole_number_the_net_takes_in_sensible_time(monkeypatch, size, words):
    """Issue 32: settings('cpu', 0) printed 'a 0-minute training run' and returned 64 px;
    3 and 100000 were accepted; a float failed later inside torch."""
    monkeypatch.delenv("DIFFUSION_QUICK", raising=False)
    with pytest.raises(ValueError, match=words):
        settings("cpu", size)


def test_a_larger_size_says_its_budget_once_without_notebook_advice(monkeypatch, capsys):
    monkeypatch.delenv("DIFFUSION_QUICK", raising=False)
    assert settings("cpu", 128).train_minutes == 16
    printed = capsys.readouterr().out
    assert "16-minute training run" in printed and "S." not in printed
    settings("cpu", 128, say=False)
    assert capsys.readouterr().out == ""
