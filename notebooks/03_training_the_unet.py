# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/diffusion-tutorial/ddpm-on-your-picture/blob/main/notebooks/03_training_the_unet.ipynb)
#
# # 3 · Training a U-Net to predict the noise
#
# To run the noising backwards we need, at every step, a guess of the noise $\varepsilon$ that
# is hidden in $x_t$. A neural network $\varepsilon_\theta(x_t, t)$ learns exactly that. You
# write its loss, train it by hand for a minute or two and see your first picture come out of
# noise; then the package trains it for 4 minutes, and your picture comes back sharp.
#
# *About 6 minutes on a 2-core CPU (6 min 12 s measured, README): 4 of training, 2 for the
# loop by hand, the rest sampling. A GPU runtime spends the same 4 minutes on a larger net at
# 128 px (an estimate: not measured on a Colab GPU).*

# %% Setup: in Colab, fetch and install the tutorial package; locally this only imports it.
import os
import subprocess
import sys

REPO_URL = "https://github.com/diffusion-tutorial/ddpm-on-your-picture"
if "google.colab" in sys.modules and not os.path.isdir("ddpm-on-your-picture"):
    subprocess.run(["git", "clone", "-q", "--depth", "1", REPO_URL], check=True)
    # --no-deps: Colab already has torch, torchvision, matplotlib, pillow, ipywidgets and tqdm.
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", "ddpm-on-your-picture"], check=True)
sys.path.insert(0, "ddpm-on-your-picture" if "google.colab" in sys.modules else "..")

import math

import torch
import torch.nn.functional as F
from IPython.display import display

import diffusion_helpers as dh

KEEP_ON_DRIVE = True  # Colab: keep your picture and models on Google Drive, where every notebook finds them
S = dh.start(KEEP_ON_DRIVE)  # the work folder, and the sizes for this machine

# %%
x0 = dh.my_image(size=S.image_size)
schedule = S.schedule()

# %% [markdown]
# ## The network: a small U-Net
#
# The U-Net (Ronneberger et al. 2015, as used by DDPM) looks at the noisy picture at several
# scales:
#
# - the **down path** halves the picture at each level (at 64 px: 64 → 32 → 16 pixels), so
#   deeper layers see larger regions;
# - the **up path** grows it back, and **skip connections** hand the fine detail of each scale
#   straight across;
# - each level is made of **residual blocks**, which also receive the timestep $t$, so that the
#   same network knows how much noise to expect;
# - **self-attention** at a coarse scale lets distant pixels talk to each other.
#
# Its output has the same shape as its input: one value per pixel.
#
# ### One block, and the time, in code
#
# $t$ enters as sines and cosines of it at many frequencies (the positional encoding of
# Transformers, DDPM appendix B); a small network turns that into a vector. A block is two 3×3
# convolutions, each after a normalisation (GroupNorm) and the SiLU activation, with the time
# vector added to every channel in between; what it computes is added to its input (a
# *residual* block, so each block learns a correction):

# %%
def time_embedding(t, dim):
    """t [B] -> [B, dim]: sin and cos of t at dim / 2 frequencies, from 1 down to 1/10000."""
    freqs = torch.exp(-math.log(10000) * torch.arange(dim // 2) / (dim // 2))
    angles = t.float()[:, None] * freqs[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class Block(torch.nn.Module):
    """x [B, C, H, W] and the time vector [B, E] -> [B, C, H, W]."""

    def __init__(self, channels, emb_dim):
        super().__init__()
        self.norm1 = torch.nn.GroupNorm(8, channels)
        self.conv1 = torch.nn.Conv2d(channels, channels, 3, padding=1)
        self.emb = torch.nn.Linear(emb_dim, channels)  # the time vector, one shift per channel
        self.norm2 = torch.nn.GroupNorm(8, channels)
        self.conv2 = torch.nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]  # how much noise to expect, told to every channel
        h = self.conv2(F.silu(self.norm2(h)))
        return x + h  # residual: the block adds a correction to its input


# %% [markdown]
# The package's U-Net is built from exactly these: given the weights of its first block, ours
# computes the same numbers.

# %%
model = S.model(x0.shape[1])
theirs = model.down[0][0]  # the package's first block: 32 channels in and out
ours = Block(32, 128)
ours.load_state_dict(theirs.state_dict())  # the same weights, by the same names
t = torch.tensor([10, 500])
emb = model.time_mlp(time_embedding(t, 32))  # the small network that turns t into a vector
h = torch.randn(2, 32, 8, 8)
print(f"our block and the package's agree: {torch.allclose(ours(h, emb), theirs(h, emb), atol=1e-6)}")

# %% [markdown]
# What the package's `dh.UNet` adds around the blocks: the levels (more channels where the
# picture is smaller), downsampling and upsampling, the skips, self-attention, a last layer
# that starts at zero (so an untrained net outputs 0), a label for class-conditional models
# (notebook 05), and **where each pixel is**. A convolution does the same thing at every
# position, so on its own the net can tell where it is only from the picture's border: it
# would learn slowly that the sun goes top left. The first layer therefore also sees, for each
# pixel, sines and cosines of its coordinates at a few frequencies (`position_octaves`;
# *Fourier features*, Tancik et al. 2020). What it costs here:

# %%
cfg = model.config
sides = [S.image_size // 2**level for level in range(len(cfg.channel_mults))]
print(f"{S.preset} U-Net: {model.num_parameters() / 1e6:.2f} M parameters, "
      f"{model.flops(S.image_size) / 1e9:.3f} GFLOP per {S.image_size}x{S.image_size} image")
print(f"levels: {' → '.join(f'{s} px × {cfg.base_channels * m} channels' for s, m in zip(sides, cfg.channel_mults))}")
print(f"self-attention at {', '.join(f'{r} px' for r in cfg.attention_resolutions)}; "
      f"where each pixel is: {4 * cfg.position_octaves} extra input channels")

# %% [markdown]
# *Aside (optional): a patch stem.* A step's cost grows with the pixels: at 64 px every layer
# of the first level works on four times the positions it has at 32 px. "Simple diffusion"
# (Hoogeboom et al. 2023) cuts the picture into 2×2 patches and gives the U-Net each patch as
# one position with 12 channels (`dh.UNet(..., patch_size=2)`), so a step costs a quarter, but
# the finest detail must come out of a position's 12 output channels. In 4 CPU minutes it did
# not pay at 64 px (README, `bench/picture_size.py`), so the defaults use no stem.
#
# ## The training loop: Algorithm 1 of the paper
#
# Repeat until the model is good enough:
#
# 1. take a training picture $x_0$ (here: yours);
# 2. pick a random step $t$, uniformly from all $T$ steps (in code `t` from 0 to $T-1$: code
#    `t` is the paper's $t + 1$);
# 3. draw fresh noise $\varepsilon \sim \mathcal{N}(0, I)$ and make
#    $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$ in one jump (eq. 4);
# 4. take a gradient step on the loss
#
# $$L = \frac{1}{d}\sum_{i=1}^{d} \big(\varepsilon_{\theta}(x_t, t)_i - \varepsilon_i\big)^2,
# \qquad d = \text{channels} \times \text{height} \times \text{width},$$
#
# the **mean of the squared differences** between the predicted and the true noise, pixel by
# pixel (the square of a difference, not a difference of squares), averaged over the batch.
# The paper writes the sum $\lVert \varepsilon - \varepsilon_\theta \rVert^2$; dividing by the
# constant $d$ changes nothing about where the minimum is. Gradient descent (here AdamW)
# walks downhill on this loss; it finds a *good* minimum, with no guarantee of the global one,
# which is fine: we only need predictions that are good enough.
#
# ### Your turn: the loss
#
# Write `loss_fn(predicted_noise, noise)`: both are batches `[B, C, H, W]`; return the loss
# above as a 0-dim tensor (one number that `loss.backward()` can differentiate). Run the check
# two cells down; the collapsed cell between is the solution (running it replaces yours).

# %%
def loss_fn(predicted_noise, noise):
    """predicted_noise, noise: [B, C, H, W] -> the simple loss of Algorithm 1, a 0-dim tensor."""
    raise NotImplementedError("your turn: write loss_fn, then run the check below")


# %% jupyter={"source_hidden": true} cellView="form"
# @title Solution (in Colab: double-click to show the code)
# Solution. Running this cell replaces your loss_fn with this one.
def loss_fn(predicted_noise, noise):
    return ((predicted_noise - noise) ** 2).mean()  # the mean over batch and pixels


# %%
dh.exercises.check_loss(loss_fn)

# %% [markdown]
# ### Algorithm 1 by hand
#
# Here are the four lines as a loop: a fresh U-Net, plain AdamW at a fixed learning rate, and
# nothing else. The training set is your one picture, so every batch holds `BATCH` copies of
# it, each with its own $t$ and its own noise. `dh.add_noise` is the `q_sample` of notebook 02.

# %%
BATCH = dh.default_batch_size(S.image_size, S.device)  # pictures per step: dh.train's choice
LR = dh.default_lr(S.model(x0.shape[1]), BATCH)  # AdamW's learning rate: dh.train's for the noise
HAND_STEPS = S.hand_steps  # 300: about two minutes on a 2-core CPU at 64 px
print(f"batch {BATCH}, learning rate {LR:.2g}, {HAND_STEPS} steps")

# %%
# Algorithm 1 by hand
data = x0.to(S.device)  # the training set: your picture, [N = 1, C, H, W]
model = S.model(x0.shape[1]).to(S.device)
optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
g = torch.Generator().manual_seed(0)  # every random draw of the loop comes from here
hand_losses = []
for _ in range(HAND_STEPS):
    x_start = data[torch.randint(0, len(data), (BATCH,), generator=g)]  # 1. x_0 ~ q(x_0)
    t = torch.randint(0, schedule.num_steps, (BATCH,), generator=g)  # 2. t ~ Uniform({0, ..., T-1})
    eps = torch.randn(x_start.shape, generator=g).to(S.device)  # 3. eps ~ N(0, I)
    x_t, _ = dh.add_noise(x_start, t, schedule, noise=eps)  #    x_t by eq. 4
    loss = loss_fn(model(x_t, t), eps)  # 4. the loss, and a gradient step on it
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    hand_losses.append(loss.item())
print(f"{HAND_STEPS} steps: loss {hand_losses[0]:.3f} at the first, {hand_losses[-1]:.3f} at the last")

# %%
dh.plot_losses(hand_losses)

# %% [markdown]
# The first loss is about 1: the U-Net's last layer starts at zero (as in DDPM), so at first it
# predicts no noise at all, and the mean of $\varepsilon^2$ is the noise's variance, 1. From
# there the loss falls as the net learns to see the noise in $x_t$.
#
# ### Your first picture out of noise
#
# Notebook 04 explains how a sampler walks from pure noise back to a picture, one step at a
# time, using the net's noise prediction at each step. Here is what it gives with the net you
# just trained, in a second: `S.sampler` takes 20 steps. Each sample is scored against your
# picture by its **PSNR** (peak signal-to-noise ratio, in decibels, dB):
# $10 \log_{10}(1 / \mathrm{MSE})$ on pixel values in $[0, 1]$. Around 20 dB a picture is
# recognisable, above 30 dB differences are hard to spot, and each 10 dB more is ten times
# less squared error.

# %%
hand_run = dh.sample(model, schedule, 4, S.sampler, seed=0, progress=False)
hand_scores = dh.psnr(hand_run.images, x0)
dh.show_images(torch.cat([x0, hand_run.images]), titles=["your picture"] + [f"{s:.1f} dB" for s in hand_scores])

# %% [markdown]
# Rough: a smear of your picture's colours, perhaps a shape in roughly the right place, and
# noise. A few minutes more of the same loop would help only slowly; the section after next
# shows the two changes that bring your picture back sharp in the same time.
#
# ## Why predict the noise, and why not here?
#
# The network predicts $\varepsilon$, but a prediction of the noise is also a prediction of the
# picture: solving eq. 4 for $x_0$ (DDPM eq. 15),
#
# $$\hat x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\hat\varepsilon}{\sqrt{\bar\alpha_t}},
# \qquad\text{so}\qquad \hat x_0 - x_0 = -\sqrt{\frac{1-\bar\alpha_t}{\bar\alpha_t}}\,(\hat\varepsilon - \varepsilon),
# \qquad \lVert \varepsilon - \hat\varepsilon \rVert^2 = \frac{\bar\alpha_t}{1-\bar\alpha_t}\,\lVert x_0 - \hat x_0 \rVert^2.$$
#
# Which way the factors go:
#
# - An error in the predicted noise reaches the implied picture times
#   $\sqrt{(1-\bar\alpha_t)/\bar\alpha_t}$: **shrunk** about 100 times at `t = 0` (the factor is
#   0.01), **magnified** about 160 times at `t = 999`.
# - Conversely, the noise loss is a loss on the picture **weighted** by the signal-to-noise ratio
#   $\bar\alpha_t/(1-\bar\alpha_t)$: about $10^4$ at `t = 0`, $4 \cdot 10^{-5}$ at `t = 999`.
#
# The identity, checked numerically on your picture with a deliberately wrong noise prediction:

# %%
dh.derivations.noise_error_vs_x0_error(x0, schedule)

# %% [markdown]
# For DDPM's datasets the noise is a good target: it has the same scale at every step
# (variance 1), so one network and one loss serve all $T$ steps, and Ho et al. found it gave
# better samples than the variational bound's weighting (section 3.4). For **one picture** it
# works against us. The noisiest steps, where a sampler decides the layout (where the sun and
# the house go), weigh almost nothing in the loss (the factor $4 \cdot 10^{-5}$ above), and an
# error there reaches the picture 160 times magnified. Yet with one picture the best possible
# guess of $x_0$ is the same at every step: the picture itself.
#
# So `dh.train`, given one picture, trains the same net to output **the picture**,
# $\hat x_0 = x_\theta(x_t, t)$, with the loss $\lVert x_0 - \hat x_0 \rVert^2$, which weighs
# every step alike (`prediction="x0"`; Salimans & Ho 2022 and Karras et al. 2022 discuss how
# the choice of target weighs the steps). Every sampler still sees a noise predictor: the
# package reads $\hat x_0$ as the noise it implies, eq. 4 solved for $\varepsilon$,
# $\hat\varepsilon = (x_t - \sqrt{\bar\alpha_t}\,\hat x_0)/\sqrt{1-\bar\alpha_t}$. On a dataset
# it keeps DDPM's noise (notebook 05). Measured at the same number of steps on a real photo
# (README, `bench/picture_recipe.py`): the noise gave about 16 dB, the picture about 24 dB, and
# the picture with the pixels' positions (the section on the network) about 38.
#
# ## The same loop, with the extras: `dh.train`
#
# `dh.train` runs exactly this loop (with the extras switched off, `prediction="eps"` and
# `adam_beta2=0.999` it gives the same losses, step for step), plus what a real run needs:
#
# - **What the net learns** (`prediction`): the picture for one picture, as above; the noise
#   for a dataset.
# - **A learning rate for the target and a short memory for AdamW**: 4 times the rate above for
#   the picture, whose target is the same at every step; and AdamW's running average of the
#   squared gradients over about the last 20 steps rather than 1,000 (`adam_beta2=0.95`): with
#   one picture the loss falls a thousandfold within the run, and a long memory of the early,
#   large gradients would keep the steps small. Measured on a real photo at the same number of
#   steps (README): the higher rate 38.4 dB against 33.3, the short memory then 48.0.
# - **EMA of the weights**: an exponential moving average of the weights, updated after every
#   step (it averages over roughly the last ninth of the steps so far). The average is smoother
#   than the last step's weights, which jitter with each batch. Samples come from the EMA copy
#   (`result.model`); the loss curve shows the raw model the optimiser moves.
# - **Warm-up, then a cosine learning rate**: the rate grows from near 0 over the first steps
#   (a fresh net's first large steps can overshoot), then decays along a cosine to 5% (small
#   final steps let the weights settle).
# - **Gradient clipping** at norm 1 (as DDPM): one unlucky batch cannot wreck the net.
# - **Mixed precision** where the hardware has it: the network computes in 16-bit numbers
#   (bfloat16) on GPUs and CPUs built for them, and in the usual 32-bit floats elsewhere (most
#   laptops and Colab's CPU), where 16-bit would be slower; the weights stay 32-bit.
# - **Checkpoints**: the weights are saved as it goes, so interrupting keeps the work,
#   notebook 04 can load them, and a later run resumes exactly.
# - **A time budget** and sizes picked for the machine: it trains for as long as you give it.
#
# To stop training early, interrupt the kernel: the ■ button in Jupyter's toolbar (in Colab,
# the stop icon beside the running cell, or *Runtime > Interrupt execution*). Training ends
# cleanly and keeps what was learned. Each run starts afresh (the previous checkpoint is kept
# as `unet.previous.pt`, or `unet.previous-2.pt` and so on when that name is taken); set
# `CONTINUE_TRAINING = True` to train the saved model further.

# %%
CONTINUE_TRAINING = False

model = S.model(x0.shape[1])
checkpoint = dh.checkpoint_path() if CONTINUE_TRAINING else dh.fresh_checkpoint_path()
result = dh.train(
    model, x0, schedule,
    minutes=S.train_minutes, steps=S.train_steps,
    device=S.device, seed=0,
    checkpoint=checkpoint,
)
print(f"{result.steps} steps in {result.elapsed:.0f} s ({result.images_per_second:.0f} images/s), "
      f"predicting {result.config.prediction}")

# %% [markdown]
# ### Your picture, out of noise
#
# The same sampler, the same 20 steps, 8 pictures from 8 draws of pure noise:

# %%
run = dh.sample(result.model, schedule, S.num_samples, S.sampler, seed=0, progress=False)
scores = dh.psnr(run.images, x0)
print(f"{S.sampler}: {run.seconds:.1f} s; mean PSNR {scores.mean():.1f} dB, worst {scores.min():.1f} dB")
dh.show_images(torch.cat([x0, run.images]), titles=["your picture"] + [f"{s:.1f} dB" for s in scores],
               ncols=(len(scores) + 2) // 2)

# %% [markdown]
# Every sample is your picture: the model has memorised it (more on that below). Notebook 04
# takes the sampler apart.

# %%
dh.plot_losses(result.losses)

# %% [markdown]
# This curve is the loss of the raw model, the weights the optimiser moves at every step, on
# the picture: $\lVert x_0 - \hat x_0 \rVert^2$ per pixel. It falls fast, then slowly. With a
# single picture a perfect model could reach zero; a small network trained for minutes only
# gets close. With a dataset it could not: many pictures could have produced the same $x_t$,
# and the model can only predict their average.
#
# ## What does the model predict?
#
# For a few $t$: the noisy input, the true noise we added, the noise the model's guess implies,
# and their difference. The target $\varepsilon$ is the same kind of noise at every $t$,
# variance 1 per pixel; what changes with $t$ is how much of it went into $x_t$: the injected
# $\sqrt{1-\bar\alpha_t}\,\varepsilon$. At `t = 10` that is $\sqrt{1-\bar\alpha_t} \approx 0.047$:
# about 6 grey levels out of 255.

# %%
dh.plot_noise_prediction(*dh.noise_prediction_examples(result.model, x0, schedule, [10, 100, 400, 900], seed=1))

# %% [markdown]
# ## Which steps are hard?
#
# The loss of each training step, grouped by its $t$: the error of the guessed picture.

# %%
dh.plot_loss_by_timestep(result.timesteps, result.sample_losses, schedule.num_steps)

# %% [markdown]
# Where the bars are highest, $x_t$ tells least about the picture and the net has to supply it
# from what it learned; where they are lowest, the picture is still plainly there in $x_t$.
#
# ## One picture: memorised, not generalised
#
# We trained on a single picture, so the model learns *that picture*: every sample looks like
# it. That is memorisation, and it is what makes the tutorial fast. With a dataset of thousands
# of pictures (faces, CIFAR-10), the same code learns the *distribution* and samples new
# pictures that are in no training set; it just needs far more training. To try it, pass a
# folder of pictures (or a tensor `[N, C, H, W]`) as the data:
#
# ```python
# result = dh.train(model, "path/to/folder", schedule, minutes=30)
# ```
#
# ## The checkpoint

# %%
path = dh.checkpoint_path()
print(f"Saved {path} ({path.stat().st_size / 1e6:.1f} MB). Next: 04_reverse_sampling.")

# %% [markdown]
# ## Asides (optional): what if...? Four experiments
#
# Each experiment changes one thing, trains the changed model for the same short budget as a
# baseline (plain DDPM: $T = 1000$, the linear schedule, the U-Net predicts the noise and is told
# $t$), and samples both
# with the same seed, side by side. To keep each to about a minute on a CPU they use 16 px
# pictures and 300 training steps per model (about half a minute on a 2-core CPU, sampling
# included), far less than above: compare the rows with each other, not with your samples in
# notebook 04. Set an experiment's flag to `True`, then run the cells from here (the baseline is
# trained once, in the next cell).

# %%
TRY_FEWER_STEPS = S.experiments  # True: T = 100 instead of 1000
TRY_COSINE = S.experiments  # True: the cosine schedule instead of the linear one
TRY_NO_TIMESTEP = S.experiments  # True: a U-Net that is never told t
TRY_PREDICT_X0 = S.experiments  # True: a U-Net that predicts the picture instead of the noise

BUDGET = {"steps": S.experiment_steps, "n": S.experiment_samples, "batch_size": 16,
          "sampler": S.experiment_sampler}  # the same for every model
small = dh.my_image(size=16, channels=x0.shape[1], verbose=False)
net = {"name": "tiny", "image_channels": small.shape[1], "image_size": 16, "seed": 0}
if TRY_FEWER_STEPS or TRY_COSINE or TRY_NO_TIMESTEP or TRY_PREDICT_X0:
    baseline = dh.derivations.what_if({"baseline": (dh.UNet.preset(**net), schedule)}, small, **BUDGET)

# %% [markdown]
# ### What if T = 100?
#
# A tenth of the steps means a tenth of the model calls when sampling (compare the sampling
# times in the titles). DDPM's betas are for $T = 1000$; with fewer steps each must add more
# noise, or $x_T$ keeps part of the picture. The package scales the linear schedule's betas by
# $1000 / T$, as improved-diffusion does ($T = 100$: from $10^{-3}$ to $0.2$), so that
# $\bar\alpha_T$ stays near 0: that is the second row. The third keeps DDPM's betas, $10^{-4}$
# to 0.02, as they are: since the package multiplies `beta_start` and `beta_end` by
# $1000 / T = 10$, we pass a tenth of them. The package warns that $\bar\alpha_T$ is then 0.36,
# so the model learns to start from an $x_T$ that still holds 60% of the picture, while the
# sampler starts from pure noise. Look at
# the third row's colours and PSNR: a model that memorised one picture can partly make up for
# it; on a dataset the mismatch costs more.

# %%
if TRY_FEWER_STEPS:
    runs = {
        "T = 100, betas x 10": (dh.UNet.preset(**net), dh.NoiseSchedule(100)),
        # DDPM's 1e-4 .. 0.02: the package multiplies what we pass by 1000 / T = 10
        "T = 100, DDPM's betas": (dh.UNet.preset(**net), dh.NoiseSchedule(100, beta_start=1e-5, beta_end=2e-3)),
    }
    display(dh.derivations.show_what_if(baseline | dh.derivations.what_if(runs, small, **BUDGET)))
else:
    print("Off: set TRY_FEWER_STEPS = True above, then run the cells from there (about a minute).")

# %% [markdown]
# ### What if the schedule is cosine?
#
# The cosine schedule (Nichol & Dhariwal 2021) destroys the picture more slowly (notebook 02),
# so fewer of the training steps are spent on almost-pure noise and more on the steps where the
# picture takes shape. Compare the two rows' PSNRs.

# %%
if TRY_COSINE:
    runs = {"cosine schedule": (dh.UNet.preset(**net), dh.NoiseSchedule(1000, "cosine"))}
    display(dh.derivations.show_what_if(baseline | dh.derivations.what_if(runs, small, **BUDGET)))
else:
    print("Off: set TRY_COSINE = True above, then run the cells from there (about a minute).")

# %% [markdown]
# ### What if the U-Net is not told t?
#
# The network gets $t$ so that it knows how much noise to expect. Here it is always told
# `t = 0`: it must judge the noise level from $x_t$ alone, with the same weights for a nearly
# clean picture and for pure noise. With one memorised picture that is partly possible (how far
# $x_t$ is from the picture gives the noise level away), so look for which samples still come
# out and which fail.

# %%
class NoTimestepUNet(dh.UNet):
    """The same U-Net, always told t = 0."""

    def forward(self, x, t, *labels):
        return super().forward(x, t * 0, *labels)


if TRY_NO_TIMESTEP:
    runs = {"not told t": (NoTimestepUNet.preset(**net), schedule)}
    display(dh.derivations.show_what_if(baseline | dh.derivations.what_if(runs, small, **BUDGET)))
else:
    print("Off: set TRY_NO_TIMESTEP = True above, then run the cells from there (about a minute).")

# %% [markdown]
# ### What if the U-Net predicts the picture instead of the noise?
#
# Your 4-minute run already does (the section "Why predict the noise, and why not here?"); here
# the two targets meet side by side on the same small net, budget and seed. Look at how alike
# the samples of each row are: a net that outputs the picture it memorised returns it whatever
# the noise. Ho et al. tried predicting $x_0$ on datasets and found worse samples early on
# (section 3.2): the choice depends on the data.

# %%
if TRY_PREDICT_X0:
    runs = {"predicts x_0": (dh.UNet.preset(**net), schedule, "x0")}
    display(dh.derivations.show_what_if(baseline | dh.derivations.what_if(runs, small, **BUDGET)))
else:
    print("Off: set TRY_PREDICT_X0 = True above, then run the cells from there (about a minute).")
