"""``drive.mount(path)``: ``path/MyDrive`` becomes the shared ``COLAB_STANDIN_DRIVE`` folder."""

import os
from pathlib import Path


def mount(mountpoint: str, force_remount: bool = False) -> None:
    """Link ``mountpoint/MyDrive`` to the shared folder; fail as a declined mount without one."""
    shared = os.environ.get("COLAB_STANDIN_DRIVE")
    if not shared:
        raise ValueError("mount failed: credential propagation was unsuccessful")
    drive = Path(mountpoint) / "MyDrive"
    drive.parent.mkdir(parents=True, exist_ok=True)
    if not drive.exists():
        drive.symlink_to(shared, target_is_directory=True)
    print(f"Mounted at {mountpoint}")
