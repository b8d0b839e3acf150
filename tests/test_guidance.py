"""Classifier-free guidance (guidance.py): eps_u + w (eps_c - eps_u) in one batched pass,
what w = 0, 1 and the default draw, and bad labels refused before the model runs."""

import pytest
import torch
from tiny import StandInConfig
from torch import nn

from diffusion_helpers.guidance import DEFAULT_GUIDANCE, guided_noise
from diffusion_helpers.sampling import sample
from diffusion_helpers.schedule import NoiseSchedule

SIZE, CHANNELS = 8, 3


class FakeConditional(nn.Module):
    """A conditional eps model: eps(x, t, y) = (y + 1) * 0.1 x + (y + 1), per image, with
    y = NUM_CLASSES the null label. Only elementwise ops, so a batch of 2n images gives the
    same numbers as two calls of n. Records (batch size, t, labels) of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(0.1))
        self.config = StandInConfig(SIZE, CHANNELS, num_classes=NUM_CLASSES)
        self.calls: list[tuple[int, list[int], list[int]]] = []

    def forward(self, x, t, labels):
        self.calls.append((x.shape[0], t.tolist(), labels.tolist()))
        y = (labels + 1).to(x.dtype).reshape(-1, 1, 1, 1)
        return y * self.scale * x + y


NUM_CLASSES = 3


def run(model, schedule, **kwargs):
    kwargs.setdefault("n", 2)
    kwargs.setdefault("progress", False)
    return sample(model, schedule, **kwargs)


def test_guided_noise_combines_in_one_pass():
    """eps = eps_u + w (eps_c - eps_u) from one call of 2n images [x, x], [t, t], [y, null]."""
    net = FakeConditional()
    x = torch.randn(2, CHANNELS, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([5, 5])
    y, null = torch.tensor([0, 2]), torch.full((2,), NUM_CLASSES)
    with torch.no_grad():
        got = guided_noise(net, x, t, y, null, 2.5)
        eps_c, eps_u = net(x, t, y), net(x, t, null)
    assert net.calls[0] == (4, [5, 5, 5, 5], [0, 2, NUM_CLASSES, NUM_CLASSES])
    assert torch.equal(got, eps_u + 2.5 * (eps_c - eps_u))
    # And by hand at x = 0: eps_c = y + 1, eps_u = NUM_CLASSES + 1 = 4.
    with torch.no_grad():
        at_zero = guided_noise(net, torch.zeros_like(x), t, y, null, 2.5)
    want = torch.tensor([4 + 2.5 * (1 - 4), 4 + 2.5 * (3 - 4)]).reshape(2, 1, 1, 1)
    assert torch.equal(at_zero, want.expand_as(x))


@pytest.mark.parametrize("method", ["ddpm", "ddim", "dpm_solver"])
def test_guided_sampling_one_call_per_step_batch_2n(method):
    schedule = NoiseSchedule(50)
    net = FakeConditional()
    steps = None if method == "ddpm" else 4
    result = run(
        net,
        schedule,
        n=2,
        method=method,
        steps=steps,
        seed=0,
        labels=torch.tensor([1, 0]),
        guidance_scale=2.0,
    )
    assert len(net.calls) == len(result.timesteps)  # one forward pass per step
    for (batch, t, labels), t_visited in zip(net.calls, result.timesteps):
        assert batch == 4 and t == [t_visited] * 4
        assert labels == [1, 0, NUM_CLASSES, NUM_CLASSES]


def test_guidance_scale_one_and_zero_take_one_pass_of_n():
    schedule = NoiseSchedule(50)
    net = FakeConditional()
    run(net, schedule, method="ddim", steps=3, seed=0, labels=2, guidance_scale=1.0)
    assert net.calls and all(c[0] == 2 and c[2] == [2, 2] for c in net.calls)  # conditional
    net.calls.clear()
    run(net, schedule, method="ddim", steps=3, seed=0, labels=2, guidance_scale=0)
    assert net.calls and all(c[0] == 2 and c[2] == [NUM_CLASSES] * 2 for c in net.calls)
    net.calls.clear()
    run(net, schedule, method="ddim", steps=3, seed=0)  # no labels: the null class
    assert net.calls and all(c[0] == 2 and c[2] == [NUM_CLASSES] * 2 for c in net.calls)


def test_guidance_scale_zero_one_and_default_give_the_right_images():
    schedule = NoiseSchedule(50)
    net = FakeConditional()
    kw = {"method": "ddim", "steps": 3, "seed": 4}
    uncond = run(net, schedule, **kw).images
    assert torch.equal(run(net, schedule, labels=1, guidance_scale=0.0, **kw).images, uncond)
    cond = run(net, schedule, labels=1, guidance_scale=1.0, **kw).images
    assert not torch.allclose(cond, uncond)
    default = run(net, schedule, labels=1, **kw).images
    explicit = run(net, schedule, labels=1, guidance_scale=DEFAULT_GUIDANCE, **kw).images
    assert torch.equal(default, explicit) and not torch.allclose(default, cond)


@pytest.mark.parametrize(
    "kwargs,word",
    [
        ({"labels": NUM_CLASSES}, "labels"),  # the null class is not a class to ask for
        ({"labels": -1}, "labels"),
        ({"labels": torch.tensor([0, 1, 2])}, "labels"),  # 3 labels for 2 images
        ({"labels": torch.tensor([0.5, 1.0])}, "labels"),  # whole numbers only
        ({"labels": True}, "labels"),
        ({"guidance_scale": 3.0}, "guidance_scale"),  # no labels
        ({"labels": 1, "guidance_scale": -1.0}, "guidance_scale"),
        ({"labels": 1, "guidance_scale": float("nan")}, "guidance_scale"),
    ],
)
def test_bad_labels_raise_before_the_model_runs(kwargs, word):
    net = FakeConditional()
    with pytest.raises(ValueError, match=word):
        run(net, NoiseSchedule(50), method="ddim", steps=2, **kwargs)
    assert net.calls == []
