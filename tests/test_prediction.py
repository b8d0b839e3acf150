"""What the net predicts (prediction.py): each target read back as the noise, and a model trained
with each one saved, loaded and sampled as what it is."""

import pytest
import torch
from tiny import FAST, flat, images, tiny_model

import diffusion_helpers as dh
from diffusion_helpers.cli.demo import trained_model
from diffusion_helpers.cli.main import main
from diffusion_helpers.prediction import PREDICTIONS, NoisePredictor, noise_predictor, prediction
from diffusion_helpers.sampling import load_for_sampling, sample
from diffusion_helpers.storage.checkpoint import CheckpointError, export_weights, read_checkpoint
from diffusion_helpers.training import train

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py
SCHEDULES = {"eps": dh.NoiseSchedule(1000), "x0": dh.NoiseSchedule(1000),
             "velocity": dh.NoiseSchedule(1000, "flow")}  # fmt: skip


@pytest.mark.parametrize("name", list(PREDICTIONS))
def test_a_net_that_outputs_its_exact_target_gives_back_the_true_noise(name):
    """float64: the target of x_t = sqrt(abar) x0 + sqrt(1 - abar) eps, read as noise, is eps."""
    schedule, predicts = SCHEDULES[name], prediction(name)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 3, 5, 5, generator=g, dtype=torch.float64) * 2 - 1
    eps = torch.randn(4, 3, 5, 5, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 10, 500, 998])
    x_t, _ = dh.add_noise(x0, t, schedule, noise=eps)
    exact = predicts.target(x0, eps, t, schedule)
    net = NoisePredictor(lambda x_in, steps: exact, predicts, schedule)
    torch.testing.assert_close(net(x_t, t), eps, atol=1e-9, rtol=0)


def test_a_noise_predictor_is_not_wrapped_and_unknown_targets_are_named():
    net = tiny_model()
    assert noise_predictor(net, prediction("eps"), SCHEDULES["eps"]) is net
    with pytest.raises(ValueError, match="prediction must be one of 'eps', 'x0', 'velocity'"):
        prediction("v")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A few steps of each prediction on one picture, each into its own checkpoint."""
    folder = tmp_path_factory.mktemp("predictions")
    out = {}
    for name, schedule in SCHEDULES.items():
        path = folder / f"{name}.pt"
        result = train(tiny_model(), images(1), schedule, steps=4, batch_size=2, seed=0,
                       prediction=name, checkpoint=path, **FAST)  # fmt: skip
        out[name] = (path, result)
    return out


@pytest.mark.parametrize("name", list(PREDICTIONS))
def test_a_saved_model_samples_as_the_model_in_memory(runs, name, tmp_path):
    """Loaded by load_for_sampling, by the command line's loader, and from its sampling-only
    export, each model draws what it draws in memory (the x0 and velocity nets are read as
    noise, not sampled as if they predicted it: before, a loaded x0 model drew pictures off by
    up to 1.85)."""
    path, result = runs[name]
    schedule = SCHEDULES[name]
    assert read_checkpoint(path)["prediction"] == name == result.config.prediction
    expected = sample(result.model, schedule, 2, dh.FAST_SAMPLER, seed=3, progress=False).images
    small = export_weights(path, tmp_path / "small.pt")
    loaders = {"load_for_sampling": lambda p: load_for_sampling(p, device="cpu")[:2],
               "the command line": lambda p: trained_model(p, "cpu")}  # fmt: skip
    for where, load in loaders.items():
        for file in (path, small):
            model, loaded_schedule = load(file)
            assert getattr(model, "predicts", prediction("eps")).name == name, (where, file)
            got = sample(model, loaded_schedule, 2, dh.FAST_SAMPLER, seed=3, progress=False)
            tolerance = 1e-5 if file == path else 2e-2  # the export holds float16 weights
            torch.testing.assert_close(got.images, expected, atol=tolerance, rtol=0)
    assert main(["sample", "--checkpoint", str(path), "-n", "2", "--steps", "2",
                 "--out", str(tmp_path / "samples"), "--device", "cpu"]) == 0  # fmt: skip


def test_a_resume_that_changes_the_prediction_is_refused(runs):
    path, _ = runs["x0"]
    before = flat(load_for_sampling(path, device="cpu")[0])
    with pytest.raises(CheckpointError, match="trained to predict 'x0', not 'eps'"):
        train(tiny_model(), images(1), SCHEDULES["x0"], steps=6, batch_size=2, seed=0,
              prediction="eps", checkpoint=path, **FAST)  # fmt: skip
    assert torch.equal(flat(load_for_sampling(path, device="cpu")[0]), before)
    again = train(tiny_model(), images(1), SCHEDULES["x0"], steps=5, batch_size=2, seed=0,
                  checkpoint=path, **FAST)  # fmt: skip
    assert again.resumed_from == 4 and again.config.prediction == "x0"  # taken from the file


def test_one_picture_learns_the_picture_and_a_dataset_the_noise():
    """The defaults (README, bench/picture_recipe.py): for one picture the picture as the target,
    its rate and a short memory for AdamW; for a dataset DDPM's noise and Adam's beta2."""
    one = train(tiny_model(), images(1), SCHEDULES["eps"], steps=1, batch_size=2, **FAST)
    many = train(tiny_model(), images(3), SCHEDULES["eps"], steps=1, batch_size=2, **FAST)
    assert one.config.prediction == "x0" and isinstance(one.model, NoisePredictor)
    assert many.config.prediction == "eps" and many.model is many.net
    assert (one.config.adam_beta2, many.config.adam_beta2) == (0.95, 0.999)
    assert one.config.lr == 2e-3  # the noise's rate is scaled down at a small batch:
    assert many.config.lr == pytest.approx(2e-3 * (2 / 64) ** 0.5)
