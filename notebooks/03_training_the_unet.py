# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
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
# is hidden in $x_t$. A neural network $\varepsilon_\theta(x_t, t)$ learns exactly that.

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

import diffusion_helpers as dh

S = dh.settings()
print(dh.describe_device(S.device))
x0 = dh.my_image(size=S.image_size)
schedule = dh.NoiseSchedule(S.num_steps)

# %% [markdown]
# ## The network: a small U-Net
#
# The U-Net (Ronneberger et al. 2015, as used by DDPM) looks at the noisy picture at several
# scales:
#
# - the **down path** halves the picture at each level (at 32 px: 32 → 16 → 8 pixels), so
#   deeper layers see larger regions;
# - the **up path** grows it back, and **skip connections** hand the fine detail of each scale
#   straight across;
# - each **residual block** (GroupNorm, SiLU, 3×3 convolution) also receives the timestep $t$,
#   turned into a vector with sines and cosines of different frequencies, so the same network
#   knows how much noise to expect;
# - **self-attention** at a coarse scale lets distant pixels talk to each other.
#
# Its output has the same shape as its input: one noise value per pixel.

# %%
model = dh.UNet.preset(S.preset, image_channels=x0.shape[1], image_size=S.image_size)
cfg = model.config
sides = [S.image_size // 2**level for level in range(len(cfg.channel_mults))]
print(f"{S.preset} U-Net: {model.num_parameters() / 1e6:.2f} M parameters, "
      f"{model.flops(S.image_size) / 1e9:.3f} GFLOP per {S.image_size}x{S.image_size} image")
print(f"levels: {' → '.join(f'{s} px × {cfg.base_channels * m} channels' for s, m in zip(sides, cfg.channel_mults))}")
print(f"self-attention at: {', '.join(f'{r} px' for r in cfg.attention_resolutions)}")

# %% [markdown]
# ## The training loop: Algorithm 1 of the paper
#
# Repeat:
#
# 1. take a training picture $x_0$ (here: yours);
# 2. pick a random step $t$, uniformly from all $T$ steps;
# 3. draw fresh noise $\varepsilon \sim \mathcal{N}(0, I)$ and make
#    $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$ in one jump;
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
# The bar shows the loss and the speed as it trains. The weights are saved to a checkpoint
# as it goes, so notebook 04 can use them; the stop button ends training early and keeps what
# was learned. Each run starts afresh (the previous checkpoint is kept as `unet.previous.pt`);
# set `CONTINUE_TRAINING = True` to train the saved model further instead.

# %%
CONTINUE_TRAINING = False

checkpoint = dh.checkpoint_path() if CONTINUE_TRAINING else dh.fresh_checkpoint_path()
result = dh.train(
    model, x0, schedule,
    minutes=S.train_minutes, steps=S.train_steps,
    device=S.device, seed=0,
    checkpoint=checkpoint,
)
print(f"{result.steps} steps in {result.elapsed:.0f} s ({result.images_per_second:.0f} images/s)")

# %%
dh.plot_losses(result.losses)

# %% [markdown]
# The loss falls fast, then slowly. With a single picture a perfect model could reach zero
# (knowing the picture, the noise is exactly $(x_t - \sqrt{\bar\alpha_t}\,x_0)/\sqrt{1-\bar\alpha_t}$),
# but a small network trained for minutes only gets close. With a dataset it could not:
# many pictures could have produced the same $x_t$, and the model can only predict their average.
#
# ## What does the model predict?
#
# For a few $t$: the noisy input, the true noise we added, the model's guess, and their
# difference. At large $t$ the noise is almost all of $x_t$, so it is easy to read off; at small
# $t$ it is faint (at `t = 10` about 6 grey levels out of 255) and hides in the picture's detail.

# %%
dh.plot_noise_prediction(*dh.noise_prediction_examples(result.model, x0, schedule, [10, 100, 400, 900], seed=1))

# %% [markdown]
# ## Which steps are hard?
#
# The loss of each training step, grouped by its $t$.

# %%
dh.plot_loss_by_timestep(result.timesteps, result.sample_losses, schedule.num_steps)

# %% [markdown]
# Small $t$ is hardest *per noise value*: the noise is tiny (variance $1-\bar\alpha_t$ close to
# 0) and hides in the picture's own detail. At large $t$, $x_t$ is almost pure noise, so the
# noise is almost $x_t$ itself.
#
# ## One picture: memorised, not generalised
#
# We trained on a single picture, so the model learns *that picture*: in notebook 04 every
# sample will look like it. That is memorisation, and it is what makes the tutorial fast. With a
# dataset of thousands of pictures (faces, CIFAR-10), the same code learns the *distribution*
# and samples new pictures that are in no training set; it just needs far more training. To try
# it, pass a folder of pictures (or a tensor `[N, C, H, W]`) as the data:
#
# ```python
# result = dh.train(model, "path/to/folder", schedule, minutes=30)
# ```
#
# ## The checkpoint

# %%
path = dh.checkpoint_path()
print(f"Saved {path} ({path.stat().st_size / 1e6:.1f} MB). Next: 04_reverse_sampling.")
