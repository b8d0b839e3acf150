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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/diffusion-tutorial/ddpm-on-your-picture/blob/main/notebooks/02_forward_noising.ipynb)
#
# # 2 · The forward process: destroying a picture with noise
#
# Diffusion starts with something easy: take a picture $x_0$ and add a little Gaussian noise,
# again and again, for $T = 1000$ steps, until nothing of the picture is left. Learning to
# *undo* one small step is what the model will do in notebook 03.

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

import torch

import diffusion_helpers as dh

S = dh.settings()
x0 = dh.my_image(size=S.image_size)  # your picture from notebook 01, or the sample

# %% [markdown]
# ## One step of noise
#
# One step of the forward process shrinks the picture a little and adds a little noise
# (DDPM eq. 2):
#
# $$q(x_t \mid x_{t-1}) = \mathcal{N}\!\left(\sqrt{1-\beta_t}\,x_{t-1},\; \beta_t I\right),
# \qquad\text{i.e.}\qquad x_t = \sqrt{1-\beta_t}\,x_{t-1} + \sqrt{\beta_t}\,\varepsilon,\;\; \varepsilon \sim \mathcal{N}(0, I).$$
#
# The numbers $\beta_1, \dots, \beta_T$ are the **noise schedule**. They are **fixed before
# training and never learned**: DDPM raises $\beta_t$ linearly from $10^{-4}$ to $0.02$.
# Shrinking by $\sqrt{1-\beta_t}$ while adding variance $\beta_t$ keeps the total variance near 1,
# so the values never blow up.
#
# (In code, timesteps count from 0 as Python does: `t = 0` is the paper's first step $t = 1$,
# and `t = 999` the last.)

# %%
schedule = dh.NoiseSchedule(S.num_steps, "linear")
cosine = dh.NoiseSchedule(S.num_steps, "cosine")
print(schedule)
print(f"beta at t=0: {schedule.betas[0]:.6f}, at t={S.num_steps - 1}: {schedule.betas[-1]:.6f}")

# %% [markdown]
# ## Jumping straight to step t
#
# Write $\alpha_t = 1 - \beta_t$ and $\bar\alpha_t = \prod_{s \le t} \alpha_s$. Adding many
# independent Gaussian steps gives one Gaussian, so we can jump from $x_0$ to any $x_t$ in one go
# (DDPM eq. 4):
#
# $$q(x_t \mid x_0) = \mathcal{N}\!\left(\sqrt{\bar\alpha_t}\,x_0,\; (1-\bar\alpha_t) I\right),
# \qquad x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon.$$
#
# $\sqrt{\bar\alpha_t}$ is how much picture is left, $\sqrt{1-\bar\alpha_t}$ how much noise.
# Their ratio on a log scale, $\log \mathrm{SNR}(t) = \log \frac{\bar\alpha_t}{1-\bar\alpha_t}$,
# is the clearest way to compare schedules. The cosine schedule (Nichol & Dhariwal 2021) keeps
# more of the picture for longer; the linear one destroys it early and then spends hundreds of
# steps on almost-pure noise.

# %%
dh.plot_schedules({"linear (DDPM)": schedule, "cosine": cosine})

# %% [markdown]
# ## Do the two routes really agree?
#
# Let's check the algebra with random numbers: run the one-step chain
# $q(x_t \mid x_{t-1})$ hundreds of times from your picture, and compare the mean and spread of
# each pixel with what the closed form $q(x_t \mid x_0)$ predicts.

# %%
dh.plot_chain_vs_closed_form(x0, schedule, n=256 if S.quick else 1024, seed=0)

# %% [markdown]
# The dots (the step-by-step chain) land on the lines (the closed form): both routes give the
# same distribution. Training uses the closed form, because it reaches any $t$ in one step.
#
# ## Your picture dissolving

# %%
dh.plot_noising_grid(x0, schedule, [0, 50, 100, 200, 300, 500, 700, 999], generator=torch.Generator().manual_seed(0))

# %% [markdown]
# The same with the cosine schedule: the picture survives much longer.

# %%
dh.plot_noising_grid(x0, cosine, [0, 50, 100, 200, 300, 500, 700, 999], generator=torch.Generator().manual_seed(0))

# %% [markdown]
# ## Try it yourself
#
# Drag the slider (or press ▶) to move through time. Left: the closed form; right: the
# step-by-step chain. They are different random draws, so they differ pixel by pixel, but look
# alike at every $t$: same amount of picture, same amount of noise. By the last step both are
# pure noise, $x_T \approx \mathcal{N}(0, I)$: that is where sampling will start.

# %%
dh.forward_slider(x0, schedule)

# %% [markdown]
# Next: **03_training_the_unet**, where a network learns to tell the noise from the picture.
