"""Training (Algorithm 1): the loss, the extras (EMA, budgets), resuming, seeds, conditioning."""

import hashlib
import math
import time

import pytest
import torch
from tiny import FAST, SCHEDULE, flat, images, tiny_model
from torch.optim.optimizer import register_optimizer_step_post_hook

from diffusion_helpers.prediction import prediction
from diffusion_helpers.storage.checkpoint import CheckpointError, read_checkpoint
from diffusion_helpers.train import lr_factor, training_loss
from diffusion_helpers.training import (
    TrainConfig,
    TrainingError,
    default_batch_size,
    default_budget,
    default_lr,
    train,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


class Spy(torch.nn.Module):
    """Records what the training step feeds the model and predicts a known non-zero noise."""

    def __init__(self, num_classes=None):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.5))
        self.seen = []
        self.config = type("Config", (), {"num_classes": num_classes})()

    def forward(self, x, t, labels=None):
        self.seen.append((x.detach().clone(), t.clone(), labels))
        return self.scale * x


def test_training_step_feeds_x_t_and_t_of_equation_4():
    """Alg. 1 line 5: the model sees x_t = sqrt(abar_t) x_0 + sqrt(1-abar_t) eps and t, and
    the loss is mean((eps_theta - eps)^2) over all pixels."""
    spy, x0 = Spy(), images(4)
    loss, t, per_image = training_loss(spy, x0, SCHEDULE, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    t_want = torch.randint(0, 1000, (4,), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    abar = SCHEDULE.alpha_bars[t_want].float().reshape(-1, 1, 1, 1)
    x_t_want = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
    x_seen, t_seen, labels = spy.seen[0]
    assert torch.equal(t_seen, t_want) and torch.equal(t, t_want) and labels is None
    torch.testing.assert_close(x_seen, x_t_want)
    torch.testing.assert_close(loss, ((0.5 * x_t_want - eps) ** 2).mean())
    torch.testing.assert_close(per_image, ((0.5 * x_t_want - eps) ** 2).mean(dim=(1, 2, 3)))


def test_conditional_step_drops_labels_to_no_class():
    """Classifier-free guidance training: after t and eps, one uniform draw per image decides
    whether its label becomes the "no class" label (index num_classes)."""
    spy, x0 = Spy(num_classes=10), images(64)
    labels = torch.arange(64) % 10
    training_loss(spy, x0, SCHEDULE, torch.Generator().manual_seed(1), labels, cond_drop=0.25)
    g = torch.Generator().manual_seed(1)
    torch.randint(0, 1000, (64,), generator=g)
    torch.randn(x0.shape, generator=g)
    drop = torch.rand(64, generator=g) < 0.25
    seen = spy.seen[0][2]
    assert torch.equal(seen[drop], torch.full((int(drop.sum()),), 10))
    assert torch.equal(seen[~drop], labels[~drop])
    assert 0 < int(drop.sum()) < 64  # this seed drops some and keeps some


def test_training_loss_is_algorithm_1_mse():
    # A model that predicts zero noise has loss mean(eps^2) for the eps Algorithm 1 drew;
    # replaying the generator (t first, then eps) must give the same number.
    model = tiny_model()  # zero-initialised output conv: eps_theta = 0
    x0 = images(4)
    loss, t, per_image = training_loss(model, x0, SCHEDULE, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    t_again = torch.randint(0, 1000, (4,), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    assert torch.equal(t, t_again)
    assert torch.allclose(per_image, eps.pow(2).mean(dim=(1, 2, 3)))
    assert torch.allclose(loss, eps.pow(2).mean())


def test_plain_settings_are_exactly_the_textbook_loop():
    """With no warm-up, no clipping, no EMA, a constant rate and fp32, train() is the plain
    Algorithm 1 loop with AdamW: same draws in the documented order, same losses, same weights."""
    x0, steps, batch, lr = images(2), 5, 4, 1e-3
    result = train(
        tiny_model(), x0, SCHEDULE, steps=steps, batch_size=batch, lr=lr, seed=11,
        warmup_steps=1, grad_clip=None, ema_decay=0, lr_schedule="constant", **FAST,
    )  # fmt: skip
    model = tiny_model()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(11)
    losses = []
    for _ in range(steps):
        x = x0[torch.randint(0, 2, (batch,), generator=g)]
        t = torch.randint(0, 1000, (batch,), generator=g)
        eps = torch.randn(x.shape, generator=g)
        abar = SCHEDULE.alpha_bars[t].float().reshape(-1, 1, 1, 1)
        loss = (model(abar.sqrt() * x + (1 - abar).sqrt() * eps, t) - eps).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert result.losses == pytest.approx(losses, rel=1e-6, abs=1e-7)
    torch.testing.assert_close(flat(result.raw_model), flat(model))


def test_stopping_by_hand_keeps_the_work(tmp_path):
    """Ctrl-C (the notebook's interrupt button) ends training early: the result and the
    checkpoint hold the steps done so far, and the result says it was interrupted."""
    path = tmp_path / "ckpt.pt"

    def stop_at_3(step, loss):
        if step == 3:
            raise KeyboardInterrupt

    result = train(
        tiny_model(), images(1), SCHEDULE, steps=50, batch_size=4, seed=0, checkpoint=path,
        callback=stop_at_3, **FAST,
    )  # fmt: skip
    assert result.steps == 3 and len(result.losses) == 3 and result.interrupted == "SIGINT"
    assert read_checkpoint(path)["step"] == 3 and result.checkpoint == path
    assert not path.with_name("ckpt.pt.lock").exists()  # the lock is released


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
            tiny_model(), data, SCHEDULE, steps=2 * n, checkpoint=path, checkpoint_every=n,
            callback=stop_at_n, **kwargs,
        )  # fmt: skip
    assert read_checkpoint(path)["step"] == n
    resumed = train(tiny_model(seed=1), data, SCHEDULE, steps=2 * n, checkpoint=path, **kwargs)
    assert resumed.losses == straight.losses  # exactly: same t, noise, flips, batches
    assert torch.equal(flat(resumed.raw_model), flat(straight.raw_model))
    assert torch.equal(flat(resumed.model), flat(straight.model))


def cut_in(where, model, at_call):
    """A hook that raises KeyboardInterrupt (a second Ctrl-C) at its ``at_call``-th call: in the
    forward pass, the backward pass, or right after the optimiser updated the weights."""
    calls = []

    def hook(*args, **kwargs):
        calls.append(1)
        if len(calls) == at_call:
            raise KeyboardInterrupt

    if where == "forward":
        return model.conv_in.register_forward_hook(hook)
    if where == "backward":
        return model.conv_out.weight.register_hook(lambda grad: hook() or grad)
    return register_optimizer_step_post_hook(hook)  # every optimiser, after its update


@pytest.mark.parametrize("where, kept", [("forward", 2), ("backward", 2), ("after the update", 3)])
def test_a_step_cut_anywhere_resumes_exactly(tmp_path, where, kept):
    """An interrupt that lands inside the third step leaves the checkpoint at a step boundary:
    before the weights moved the step is undone (2 steps kept), after it is completed (3). The
    resumed run then ends bit for bit where an uncut run ends (same thread count)."""
    data, kwargs = images(2), dict(steps=6, batch_size=2, seed=0, threads=1, **FAST)
    train(tiny_model(), data, SCHEDULE, checkpoint=tmp_path / "straight.pt", **kwargs)
    cut, model = tmp_path / "cut.pt", tiny_model()
    handle = cut_in(where, model, at_call=3)
    try:
        first = train(model, data, SCHEDULE, checkpoint=cut, **kwargs)
    finally:
        handle.remove()
    assert first.interrupted == "SIGINT" and first.steps == kept
    assert read_checkpoint(cut)["step"] == kept
    train(tiny_model(seed=5), data, SCHEDULE, checkpoint=cut, **kwargs)  # resume to step 6
    a, b = read_checkpoint(tmp_path / "straight.pt"), read_checkpoint(cut)
    assert a["step"] == b["step"] == 6 and a["losses"] == b["losses"]
    for key in ("model", "ema"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)
    for p_a, p_b in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(p_a[k], p_b[k]) for k in p_a)
    assert torch.equal(a["generator"], b["generator"])


def test_a_resume_with_other_pictures_or_another_seed_is_refused(tmp_path):
    """Resuming into the same checkpoint with other data of the same shape, or with another
    seed, would mix two runs without a word: both are refused, naming the difference; without
    a seed the resume takes the checkpoint's."""
    path = tmp_path / "unet.pt"
    train(tiny_model(), images(1, seed=0), SCHEDULE, steps=2, batch_size=2, seed=3,
          checkpoint=path, **FAST)  # fmt: skip
    with pytest.raises(CheckpointError, match="trained on other pictures"):
        train(tiny_model(), images(1, seed=1), SCHEDULE, steps=4, checkpoint=path, **FAST)
    with pytest.raises(CheckpointError, match="trained with seed 3, not 4"):
        train(tiny_model(), images(1, seed=0), SCHEDULE, steps=4, seed=4, checkpoint=path, **FAST)
    again = train(tiny_model(), images(1, seed=0), SCHEDULE, steps=4, batch_size=2,
                  checkpoint=path, **FAST)  # fmt: skip
    assert again.resumed_from == 2 and again.steps == 4 and again.config.seed == 3


def test_seed_reproduces_a_run_end_to_end():
    """The same seed for the model and for training gives the same weights; another seed for
    the model alone gives other weights (the initial weights are part of the run)."""
    run = dict(steps=3, batch_size=2, seed=5, **FAST)
    a = train(tiny_model(seed=3), images(1), SCHEDULE, **run)
    b = train(tiny_model(seed=3), images(1), SCHEDULE, **run)
    c = train(tiny_model(seed=4), images(1), SCHEDULE, **run)
    assert torch.equal(flat(a.raw_model), flat(b.raw_model))
    assert not torch.equal(flat(a.raw_model), flat(c.raw_model))
    assert a.config.seed == 5


def test_conditional_model_trains_on_labelled_data():
    model = tiny_model(num_classes=2)
    x = torch.cat([images(2, seed=0), -images(2, seed=1)])
    result = train(model, x, SCHEDULE, labels=[0, 0, 1, 1], steps=3, batch_size=4, **FAST)
    assert result.steps == 3 and all(math.isfinite(v) for v in result.losses)
    # the class embedding is learned (its weights moved from their initial values)
    assert not torch.equal(model.class_emb.weight, tiny_model(num_classes=2).class_emb.weight)


def test_non_finite_loss_stops_and_keeps_the_checkpoint(tmp_path):
    path = tmp_path / "ckpt.pt"
    model = tiny_model()
    train(model, images(1), SCHEDULE, steps=3, batch_size=2, checkpoint=path, **FAST)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    model.forward = lambda x, t: x * float("nan")  # a net that has blown up
    with pytest.raises(TrainingError, match=r"at step 4.*intact.*lower learning rate"):
        train(
            model, images(1), SCHEDULE, steps=6, batch_size=2, checkpoint=path,
            checkpoint_every=1, **FAST,
        )  # fmt: skip
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert read_checkpoint(path)["step"] == 3


def test_minutes_budget_stops_in_time():
    stamps = []
    budget = 0.02 * 60
    result = train(
        tiny_model(), images(1), SCHEDULE, minutes=0.02, batch_size=2,
        callback=lambda step, loss: stamps.append(time.perf_counter()), **FAST,
    )  # fmt: skip
    assert result.steps >= 1
    # The budget is checked before each step, so the run may overrun it by at most the step
    # that was running (bounded by the longest step seen, or the whole run if only one step),
    # plus closing the progress bar (0.5 s is generous for that).
    gaps = [b - a for a, b in zip(stamps, stamps[1:])] or [result.elapsed]
    assert result.elapsed < budget + max(gaps) + 0.5


def test_checkpoints_by_time_as_well_as_steps(tmp_path, monkeypatch):
    """A checkpoint is written once checkpoint_minutes have passed, long before
    checkpoint_every steps: a run killed early keeps recent work."""
    path, seen = tmp_path / "ckpt.pt", []

    def look(step, loss):
        seen.append(read_checkpoint(path)["step"] if path.exists() else None)

    train(
        tiny_model(), images(1), SCHEDULE, steps=3, batch_size=2, checkpoint=path,
        checkpoint_every=500, checkpoint_minutes=1e-9, callback=look, **FAST,
    )  # fmt: skip
    assert seen == [1, 2, 3]  # saved after every step: each took longer than 1e-9 minutes


@pytest.mark.parametrize(
    "settings, words",
    [
        (dict(steps=0), "steps must be a whole number >= 1"),
        (dict(steps=2.5), "steps must be a whole number >= 1"),
        (dict(minutes=0), "minutes must be a number > 0"),
        (dict(batch_size=0), "batch_size"),
        (dict(lr=0.0), "lr must be a number > 0"),
        (dict(threads=0), "threads"),
        (dict(ema_decay=1.0), "ema_decay"),
        (dict(cond_drop=1.0), "cond_drop"),
        (dict(lr_schedule="linear"), "lr_schedule"),
        (dict(seed="zero"), "seed must be a whole number"),
        (dict(seed=1.5), "seed must be a whole number"),
        (dict(seed=2**70), "seed must be a whole number from 0"),
    ],
)
def test_bad_settings_are_refused_not_replaced(settings, words):
    """A falsy-but-given value (steps=0, lr=0.0) is an error, never the default."""
    with pytest.raises(ValueError, match=words):
        train(tiny_model(), images(1), SCHEDULE, **{**FAST, **settings})


def test_unknown_setting_names_the_known_ones():
    with pytest.raises(TypeError, match=r"unknown settings \['stpes'\].*'steps'"):
        train(tiny_model(), images(1), SCHEDULE, stpes=3, **FAST)


def test_config_object_and_keywords_combine():
    cfg = TrainConfig(steps=2, batch_size=2, seed=1, progress=False, device="cpu")
    result = train(tiny_model(), images(1), SCHEDULE, cfg, precision="fp32")
    assert result.steps == 2 and result.config.precision == "fp32"
    assert cfg.precision == "auto"  # the caller's config is not changed


def test_default_budget_is_decided_in_one_place(monkeypatch):
    monkeypatch.setenv("DIFFUSION_QUICK", "1")
    assert default_budget() == (20, None)
    monkeypatch.setenv("DIFFUSION_QUICK", "0")
    assert default_budget() == (None, 4.0)


def test_threads_are_restored():
    before = torch.get_num_threads()
    seen = []
    train(
        tiny_model(), images(1), SCHEDULE, steps=1, batch_size=2, threads=2,
        callback=lambda step, loss: seen.append(torch.get_num_threads()), **FAST,
    )  # fmt: skip
    assert seen == [2] and torch.get_num_threads() == before


def test_lr_warms_up_then_decays_to_five_percent():
    assert lr_factor(0.0, 0, "cosine", 50) == pytest.approx(1 / 50)
    assert lr_factor(0.0, 49, "cosine", 50) == pytest.approx(1.0)
    assert lr_factor(0.5, 100, "cosine", 50) == pytest.approx(0.05 + 0.95 * 0.5)
    assert lr_factor(1.0, 1000, "cosine", 50) == pytest.approx(0.05)
    assert lr_factor(1.0, 1000, "constant", 50) == 1.0


def test_a_folder_lost_during_training_still_keeps_the_model(tmp_path, capsys):
    """The checkpoint's folder vanishes mid-run (a Drive disconnect, a clean-up): the final
    save goes to the rescue path, and the message says where."""
    import shutil

    folder = tmp_path / "work"
    path = folder / "unet.pt"

    def lose_the_folder(step, loss):
        if step == 2:
            shutil.rmtree(folder)
            folder.write_text("now a file, not a folder")

    result = train(
        tiny_model(), images(1), SCHEDULE, steps=3, batch_size=2, checkpoint=path,
        callback=lose_the_folder, **FAST,
    )  # fmt: skip
    try:
        assert result.checkpoint is not None and result.checkpoint != path
        assert read_checkpoint(result.checkpoint)["step"] == 3
        assert f"saved to {result.checkpoint}" in capsys.readouterr().out
    finally:
        result.checkpoint.unlink(missing_ok=True)


def test_x0_prediction_compares_the_output_with_x0():
    """prediction="x0": the same x_t and t as Algorithm 1, the target is x_0, not eps."""
    spy, x0 = Spy(), images(4)
    loss, _, per_image = training_loss(
        spy, x0, SCHEDULE, torch.Generator().manual_seed(5), predicts=prediction("x0")
    )
    x_seen = spy.seen[0][0]
    torch.testing.assert_close(per_image, ((0.5 * x_seen - x0) ** 2).mean(dim=(1, 2, 3)))
    with pytest.raises(ValueError, match="prediction"):
        train(tiny_model(), x0, SCHEDULE, steps=1, prediction="v", **FAST)


def test_defaults_scale_with_size_device_and_net():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert default_batch_size(32, cpu) == 16 and default_batch_size(16, cpu) == 64
    assert default_batch_size(64, gpu) == 32 and default_batch_size(256, cpu) == 4
    assert default_lr(tiny_model(), 16) == pytest.approx(2e-3 * 0.5)
    assert default_lr(tiny_model(), 256) == pytest.approx(2e-3)
