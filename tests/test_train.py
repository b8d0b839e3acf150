"""Training (Algorithm 1), EMA, checkpoints and resuming, budgets and data forms."""

import hashlib
import time

import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from diffusion_helpers.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model,
    read_checkpoint,
)
from diffusion_helpers.env import cpu_supports_bf16, pick_precision
from diffusion_helpers.schedule import NoiseSchedule
from diffusion_helpers.train import TrainingError, train, training_loss
from diffusion_helpers.unet import UNet, UNetConfig

SCHEDULE = NoiseSchedule(num_steps=1000)
FAST = dict(progress=False, precision="fp32", device="cpu")


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    cfg = dict(
        image_channels=3,
        base_channels=8,
        channel_mults=(1, 2),
        attention_resolutions=(8,),
        image_size=16,
        norm_groups=4,
    )
    return UNet(UNetConfig(**{**cfg, **overrides}))


def images(n=1, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    # a smooth picture: a gradient plus a blob, in [-1, 1]
    ramp = torch.linspace(-1, 1, size)
    base = torch.stack([ramp[None, :].expand(size, size), ramp[:, None].expand(size, size)])
    base = torch.cat([base, base[:1] * base[1:]])
    out = base[None].repeat(n, 1, 1, 1) * 0.8 + 0.2 * torch.rand(n, 3, size, size, generator=g)
    return out.clamp(-1, 1)


def flat(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


class Spy(torch.nn.Module):
    """Records what the training step feeds the model and predicts a known non-zero noise."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.5))
        self.seen = []

    def forward(self, x, t):
        self.seen.append((x.detach().clone(), t.clone()))
        return self.scale * x


def test_training_step_feeds_x_t_and_t_of_equation_4():
    """Alg. 1 line 5: the model sees x_t = sqrt(abar_t) x_0 + sqrt(1-abar_t) eps and t, and
    the loss is mean((eps_theta - eps)^2) over all pixels."""
    spy, x0 = Spy(), images(4)
    loss, t, per_image = training_loss(spy, x0, SCHEDULE, torch.Generator().manual_seed(5), "fp32")
    g = torch.Generator().manual_seed(5)
    t_want = torch.randint(0, 1000, (4,), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    abar = SCHEDULE.alpha_bars[t_want].float().reshape(-1, 1, 1, 1)
    x_t_want = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
    x_seen, t_seen = spy.seen[0]
    assert torch.equal(t_seen, t_want) and torch.equal(t, t_want)
    torch.testing.assert_close(x_seen, x_t_want)
    torch.testing.assert_close(loss, ((0.5 * x_t_want - eps) ** 2).mean())
    torch.testing.assert_close(per_image, ((0.5 * x_t_want - eps) ** 2).mean(dim=(1, 2, 3)))


def test_stopping_by_hand_keeps_the_work(tmp_path):
    """Ctrl-C (or the notebook's stop button) ends training early: the result and the
    checkpoint hold the steps done so far."""
    path = tmp_path / "ckpt.pt"

    def stop_at_3(step, loss):
        if step == 3:
            raise KeyboardInterrupt

    result = train(
        tiny_model(),
        images(1),
        SCHEDULE,
        steps=50,
        batch_size=4,
        seed=0,
        checkpoint=path,
        callback=stop_at_3,
        **FAST,
    )
    assert result.steps == 3 and len(result.losses) == 3
    assert read_checkpoint(path)["step"] == 3


def test_training_loss_is_algorithm_1_mse():
    # A model that predicts zero noise has loss mean(eps^2) for the eps Algorithm 1 drew;
    # replaying the generator (t first, then eps) must give the same number.
    model = tiny_model()  # zero-initialised output conv: eps_theta = 0
    x0 = images(4)
    loss, t, per_image = training_loss(
        model, x0, SCHEDULE, torch.Generator().manual_seed(3), "fp32"
    )
    g = torch.Generator().manual_seed(3)
    t_again = torch.randint(0, 1000, (4,), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    assert torch.equal(t, t_again)
    assert torch.allclose(per_image, eps.pow(2).mean(dim=(1, 2, 3)))
    assert torch.allclose(loss, eps.pow(2).mean())


def test_loss_falls_and_ema_moves_toward_raw_weights():
    model = tiny_model()
    init = flat(model).clone()
    result = train(model, images(1), SCHEDULE, steps=60, batch_size=8, lr=5e-3, seed=0, **FAST)
    first, last = result.losses[:5], result.losses[-5:]
    # Starts near E[eps^2] = 1 (zero output conv); on one 16 px image it falls far below
    # (to about 0.26 with this seed; half the start is a wide margin).
    assert sum(last) / 5 < 0.5 * sum(first) / 5
    ema, raw = flat(result.model), flat(result.raw_model)
    assert not torch.equal(ema, raw)
    # The EMA averages the path from init to the raw weights: it lies nearer the raw weights
    # than the start does.
    assert (ema - raw).norm() < (init - raw).norm()
    assert (ema - init).norm() > 0


def test_record_gives_loss_by_timestep():
    result = train(tiny_model(), images(1), SCHEDULE, steps=4, batch_size=8, seed=0, **FAST)
    assert result.timesteps.shape == result.sample_losses.shape == (32,)
    assert 0 <= int(result.timesteps.min()) and int(result.timesteps.max()) <= 999
    # the step's loss is the mean of its images' losses
    assert result.sample_losses[-8:].mean().item() == pytest.approx(result.losses[-1], rel=1e-5)
    assert result.images_per_second > 0 and result.steps == 4


def test_checkpoint_round_trip(tmp_path):
    path = tmp_path / "ckpt.pt"
    model = tiny_model()
    result = train(
        model, images(1), SCHEDULE, steps=5, batch_size=4, seed=0, checkpoint=path, **FAST
    )
    loaded, info = load_checkpoint(path)
    assert info["step"] == 5
    assert info["model_config"] == model.config.to_dict()
    assert info["schedule_config"] == SCHEDULE.config()
    assert info["losses"] == result.losses
    assert loaded.config == model.config
    assert torch.equal(flat(loaded), flat(result.model))  # EMA weights by default
    raw, _ = load_checkpoint(path, weights="raw")
    assert torch.equal(flat(raw), flat(result.raw_model))
    ready = load_model(path, device="cpu")
    assert not ready.training and torch.equal(flat(ready), flat(result.model))


def test_resume_equals_uninterrupted(tmp_path):
    data, n, kwargs = images(3), 6, dict(batch_size=4, seed=7, flip=True, **FAST)
    straight = train(tiny_model(), data, SCHEDULE, steps=2 * n, **kwargs)

    class InterruptError(Exception):
        pass

    def stop_at_n(step, loss):
        if step == n:
            raise InterruptError  # as if Colab disconnected right after the checkpoint at step n

    path = tmp_path / "resume.pt"
    with pytest.raises(InterruptError):
        train(
            tiny_model(),
            data,
            SCHEDULE,
            steps=2 * n,
            checkpoint=path,
            checkpoint_every=n,
            callback=stop_at_n,
            **kwargs,
        )
    assert read_checkpoint(path)["step"] == n
    resumed = train(tiny_model(seed=1), data, SCHEDULE, steps=2 * n, checkpoint=path, **kwargs)
    assert resumed.losses == straight.losses  # exactly: same t, noise, flips, batches
    assert torch.equal(flat(resumed.raw_model), flat(straight.raw_model))
    assert torch.equal(flat(resumed.model), flat(straight.model))


def test_mismatched_config_names_the_key(tmp_path):
    path = tmp_path / "ckpt.pt"
    train(tiny_model(), images(1), SCHEDULE, steps=2, batch_size=2, checkpoint=path, **FAST)
    other = tiny_model(base_channels=16)
    with pytest.raises(CheckpointError, match="base_channels is 8 in the checkpoint but 16"):
        train(other, images(1), SCHEDULE, steps=4, batch_size=2, checkpoint=path, **FAST)
    with pytest.raises(CheckpointError, match="base_channels"):
        load_checkpoint(path, model=other)
    with pytest.raises(CheckpointError, match="num_steps is 1000 in the checkpoint but 500"):
        train(
            tiny_model(),
            images(1),
            NoiseSchedule(500),
            steps=4,
            batch_size=2,
            checkpoint=path,
            **FAST,
        )


def test_corrupt_truncated_and_foreign_files_raise_checkpoint_error(tmp_path):
    good = tmp_path / "good.pt"
    train(tiny_model(), images(1), SCHEDULE, steps=1, batch_size=2, checkpoint=good, **FAST)
    blob = good.read_bytes()
    cases = {
        "garbage.pt": b"this is not a checkpoint at all",
        "truncated.pt": blob[: len(blob) // 2],
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    for name in ("garbage.pt", "truncated.pt", "foreign.pt", "missing.pt"):
        with pytest.raises(CheckpointError):
            load_checkpoint(tmp_path / name)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        train(
            tiny_model(), images(1), SCHEDULE, steps=2, checkpoint=tmp_path / "garbage.pt", **FAST
        )


def test_non_finite_loss_stops_and_keeps_the_checkpoint(tmp_path):
    path = tmp_path / "ckpt.pt"
    model = tiny_model()
    train(model, images(1), SCHEDULE, steps=3, batch_size=2, checkpoint=path, **FAST)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    model.forward = lambda x, t: x * float("nan")  # a net that has blown up
    with pytest.raises(TrainingError, match=r"at step 4.*intact.*lower learning rate"):
        train(
            model,
            images(1),
            SCHEDULE,
            steps=6,
            batch_size=2,
            checkpoint=path,
            checkpoint_every=1,
            **FAST,
        )
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert load_checkpoint(path)[1]["step"] == 3


def test_minutes_budget_stops_in_time():
    stamps = []
    budget = 0.02 * 60
    result = train(
        tiny_model(),
        images(1),
        SCHEDULE,
        minutes=0.02,
        batch_size=2,
        callback=lambda step, loss: stamps.append(time.perf_counter()),
        **FAST,
    )
    assert result.steps >= 1
    # The budget is checked before each step, so the run may overrun it by at most the step
    # that was running (bounded by the longest step seen, or the whole run if only one step),
    # plus closing the progress bar (0.5 s is generous for that).
    gaps = [b - a for a, b in zip(stamps, stamps[1:])] or [result.elapsed]
    assert result.elapsed < budget + max(gaps) + 0.5


class PairDataset(Dataset):
    """Items are (image, label), as torchvision datasets give them."""

    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], i % 2


@pytest.mark.parametrize(
    "make",
    [
        lambda x: x,
        lambda x: TensorDataset(x),
        lambda x: PairDataset(x),
        lambda x: DataLoader(TensorDataset(x), batch_size=2, shuffle=True),
    ],
    ids=["tensor", "tensor-dataset", "pair-dataset", "dataloader"],
)
def test_data_forms(make):
    result = train(tiny_model(), make(images(3)), SCHEDULE, steps=2, batch_size=2, **FAST)
    assert len(result.losses) == 2 and all(v > 0 for v in result.losses)


def test_folder_of_images(tmp_path):
    from PIL import Image

    pytest.importorskip("diffusion_helpers.images")
    for i in range(3):
        pixels = (images(1, size=24, seed=i)[0].permute(1, 2, 0) + 1) * 127.5
        Image.fromarray(pixels.round().byte().numpy()).save(tmp_path / f"img{i}.png")
    result = train(tiny_model(), tmp_path, SCHEDULE, steps=2, batch_size=2, **FAST)
    assert len(result.losses) == 2
    (tmp_path / "broken.png").write_bytes(b"not a png")
    from diffusion_helpers.images import ImageLoadError

    with pytest.raises(ImageLoadError, match="broken.png"):
        train(tiny_model(), tmp_path, SCHEDULE, steps=2, batch_size=2, **FAST)


def test_bad_data_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\[-1, 1\].*x \* 2 - 1"):
        train(tiny_model(), images(1) * 3, SCHEDULE, steps=1, **FAST)
    with pytest.raises(ValueError, match="3-channel"):
        train(tiny_model(), torch.zeros(1, 1, 16, 16), SCHEDULE, steps=1, **FAST)
    with pytest.raises(ValueError, match="divisible"):
        train(tiny_model(), torch.zeros(1, 3, 17, 17), SCHEDULE, steps=1, **FAST)
    with pytest.raises(ValueError, match="data must be"):
        train(tiny_model(), 42, SCHEDULE, steps=1, **FAST)


def test_threads_are_restored():
    before = torch.get_num_threads()
    seen = []
    train(
        tiny_model(),
        images(1),
        SCHEDULE,
        steps=1,
        batch_size=2,
        threads=2,
        callback=lambda step, loss: seen.append(torch.get_num_threads()),
        **FAST,
    )
    assert seen == [2] and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        train(tiny_model(), images(1), SCHEDULE, steps=1, threads=0, **FAST)


def test_precision_choices():
    cpu = torch.device("cpu")
    assert pick_precision("auto", cpu) == ("bf16" if cpu_supports_bf16() else "fp32")
    assert pick_precision("fp32", cpu) == "fp32"
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        pick_precision("fp16", cpu)
    with pytest.raises(ValueError, match="precision must be one of"):
        pick_precision("double", cpu)
