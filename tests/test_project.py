"""The project's own promises: public names, README commands, CI wiring."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# Every name the package exported before the modules were split (notebooks and readers'
# code use them): names are added, never renamed or dropped.
EXPORTED_BEFORE = """add_noise add_noise_chain add_noise_step animate animation_html checkpoint_path
CheckpointError ddim_step ddim_timesteps DEFAULT_IMAGE describe_device forward_slider Frame
fresh_checkpoint_path ImageInfo ImageLoadError in_colab load_checkpoint load_image
load_image_info load_tutorial_model make_betas my_image noise_prediction_examples
NoiseSchedule pick_device pick_image plot_chain_vs_closed_form plot_loss_by_timestep
plot_losses plot_noise_prediction plot_noising_grid plot_pixel_values plot_schedules
predict_x0 psnr q_posterior quick_mode reverse_explorer reverse_step sample sample_image_path
SampleResult save_gif save_my_image settings show_images STORED_IMAGE_SIZE to_numpy to_pil
train TrainingError TrainResult TutorialSettings UNet UNetConfig upload_image upload_widget
uploaded_files work_dir""".split()


def test_public_names_import_from_the_package():
    import diffusion_helpers as dh

    assert set(EXPORTED_BEFORE) <= set(dh.__all__)
    for name in dh.__all__:
        assert getattr(dh, name, None) is not None, name


def test_no_module_is_over_about_400_lines():
    """One job per module: a file that grows past this is doing two (split it)."""
    for path in sorted((ROOT / "diffusion_helpers").rglob("*.py")):
        lines = len(path.read_text().splitlines())
        assert lines <= 440, f"{path.name} has {lines} lines"


def test_ci_also_runs_the_widget_tests_under_colabs_ipywidgets():
    ci = (ROOT / ".ci" / "run").read_text()
    assert '"ipywidgets==7.7.1"' in ci and "tests/test_notebooks.py" in ci


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
