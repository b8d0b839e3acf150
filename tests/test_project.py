"""The project's own promises: public names, README commands, CI wiring."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

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


# The layers of the package, lowest first: a module may import from its own folder and from any
# lower layer; never upwards, never sideways into another folder of its own layer. The paper
# (the flat modules at the top of the package) is one unit, and imports nothing of the machinery
# (runtime, storage); the two front doors, dh.train and dh.sample, wrap it from above.
PAPER = ("schedule", "forward", "prediction", "unet", "train", "reverse", "timesteps", "guidance",
         "editing", "score", "flow")  # fmt: skip
DOORS = ("training", "sampling")
LAYERS = {"checks": 0, "runtime": 1, "pictures": 2, "metrics": 2, "paper": 3, "storage": 4,
          "doors": 5, "figures": 6, "tutorial": 7, "cli": 8}  # fmt: skip


def package_imports():
    """(importing module, imported module, names) for every import inside the package, as
    dotted names relative to it ("runtime.threads"); the top __init__ and __main__ are left out
    (they only gather the public names and start the command line)."""
    package = ROOT / "diffusion_helpers"
    edges = []
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package).with_suffix("").parts)
        if parts in (["__init__"], ["__main__"]):
            continue
        folder = parts[:-1]
        module = ".".join(folder if parts[-1] == "__init__" else parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = folder[: len(folder) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                edges.append((module, target or node.names[0].name, [a.name for a in node.names]))
    return edges


def unit(module):
    first = module.split(".")[0]
    return "paper" if first in PAPER else "doors" if first in DOORS else first


def test_imports_point_one_way():
    """Machinery and checks below the paper, figures, tutorial and command line above it."""
    units = {unit(m) for m, _, _ in package_imports()}
    assert units <= set(LAYERS), f"a folder without a layer: {units - set(LAYERS)}"
    wrong = [
        f"{a} imports {b}"
        for a, b, _ in package_imports()
        if LAYERS[unit(a)] < LAYERS[unit(b)]
        or (LAYERS[unit(a)] == LAYERS[unit(b)] and unit(a) != unit(b))
    ]
    assert not wrong, wrong
    machinery = [f"{a} imports {b}" for a, b, _ in package_imports()
                 if unit(a) == "paper" and unit(b) in ("runtime", "storage")]  # fmt: skip
    assert not machinery, machinery


def test_no_import_cycles_and_no_private_names_across_modules():
    graph = {}
    for a, b, names in package_imports():
        graph.setdefault(a, set()).add(b)
        private = [n for n in names if n.startswith("_")]
        assert not private, f"{a} imports the private {private} from {b}"
    state = {}

    def visit(node, path):
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", f"import cycle: {' -> '.join(path + [node])}"
        state[node] = "open"
        for nxt in graph.get(node, ()):
            visit(nxt, path + [node])
        state[node] = "done"

    for node in list(graph):
        visit(node, [])


def test_folders_hold_modules_not_re_exports():
    """A folder's __init__ is its docstring: names are imported from the module that defines
    them (the package's own __init__ gathers dh.* for the notebooks)."""
    for init in sorted((ROOT / "diffusion_helpers").glob("*/__init__.py")):
        body = ast.parse(init.read_text()).body
        code = [node for node in body if not isinstance(node, ast.Expr)]
        if init.parent.name == "exercises":  # dh.exercises.check_*: the notebooks' checkers
            continue
        assert not code, f"{init.relative_to(ROOT)} holds code or imports"


def test_ci_also_runs_the_widget_and_colab_tests_under_colabs_versions():
    ci = (ROOT / ".ci" / "run").read_text()
    for pin in ("ipywidgets==7.7.1", "ipython==7.34.0", "ipykernel==6.17.1", "numpy==2.1.3"):
        assert f'"{pin}"' in ci, pin
    assert "tests/test_colab.py" in ci and "tests/figures/test_widgets.py" in ci


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


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted((ROOT / "bench").glob("*.py")), ids=lambda p: p.stem)
def test_every_bench_script_imports_and_answers_help(script):
    """A bench script is run by hand, so a rename in the package breaks it unnoticed (one
    imported a private name that no longer existed): --help imports it whole."""
    done = subprocess.run([sys.executable, str(script), "--help"], cwd=ROOT / "bench",
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_paper_is_two_files_and_a_few_functions_from_the_front_doors():
    """dh.train -> training.train -> train.algorithm_1 -> train.training_loss, whose last lines
    are the MSE; dh.sample -> sampling.sample -> reverse.reverse_process -> the sampler's step ->
    reverse.reverse_step, whose last lines compute x_{t-1} (the README's package section)."""
    import importlib
    import inspect

    import diffusion_helpers as dh
    from diffusion_helpers import reverse, sampling, training

    train = importlib.import_module("diffusion_helpers.train")  # dh.train is the function

    assert dh.train is training.train and dh.sample is sampling.sample
    assert "algorithm_1(" in inspect.getsource(training.train)
    assert "training_loss(" in inspect.getsource(train.algorithm_1)
    assert ".pow(2).mean(" in inspect.getsource(train.training_loss)
    assert "reverse_process(" in inspect.getsource(sampling.sample)
    assert "sampler.step(" in inspect.getsource(reverse.reverse_process)
    assert "reverse_step(" in inspect.getsource(reverse.Sampler.step)
    assert "mean + not_last * sigma * z" in inspect.getsource(reverse.reverse_step)
