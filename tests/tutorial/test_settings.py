"""The sizes for this machine (tutorial/settings.py)."""

import diffusion_helpers as dh


def test_quick_mode_is_tiny_and_full_mode_fits_a_cpu(monkeypatch):
    monkeypatch.setenv("DIFFUSION_QUICK", "1")
    quick = dh.settings("cpu")
    assert quick.quick and quick.image_size <= 16 and quick.train_steps <= 50
    monkeypatch.delenv("DIFFUSION_QUICK")
    full = dh.settings("cpu")
    assert not full.quick and full.image_size == 64 and full.train_minutes <= 5
    # The preset must accept the size: 64 is divisible by 2^(levels-1).
    assert full.image_size in dh.UNet.preset(full.preset).valid_sizes()
