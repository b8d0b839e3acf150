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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/diffusion-tutorial/ddpm-on-your-picture/blob/main/notebooks/02_forward_noising.ipynb)
#
# # 2 · The forward process: destroying a picture with noise
#
# Diffusion starts with something easy: take a picture $x_0$ and add a little Gaussian noise,
# again and again, for $T = 1000$ steps, until nothing of the picture is left. In notebook 03 a
# network learns to tell, at any step, which part of the noisy picture is noise; notebook 04
# then uses it to undo the steps, one by one, from pure noise back to a picture.
#
# *Under a minute (14 s measured on a 2-core CPU).*

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

KEEP_ON_DRIVE = True  # Colab: keep your picture and models on Google Drive, where every notebook finds them
S = dh.start(KEEP_ON_DRIVE)  # the work folder, and the sizes for this machine
x0 = dh.my_image(size=S.image_size)  # your picture from notebook 01 (or, if none, the sample)

# %% [markdown]
# ## One step of noise
#
# One step of the forward process shrinks the picture a little and adds a little noise
# (DDPM eq. 2):
#
# $$q(x_t \mid x_{t-1}) = \mathcal{N}\!\left(\sqrt{1-\beta_t}\,x_{t-1},\; \beta_t I\right),
# \qquad\text{i.e.}\qquad x_t = \sqrt{1-\beta_t}\,x_{t-1} + \sqrt{\beta_t}\,\varepsilon,\;\; \varepsilon \sim \mathcal{N}(0, I).$$
#
# $I$ is the identity matrix: the covariance $\beta_t I$ has $\beta_t$ on its diagonal and 0
# elsewhere, so every pixel (every colour of every pixel) gets its own independent noise of
# variance $\beta_t$.
#
# The numbers $\beta_1, \dots, \beta_T$ are the **noise schedule**. They are **fixed before
# training and never learned**: DDPM raises $\beta_t$ linearly from $10^{-4}$ to $0.02$ over
# $T = 1000$ steps.
#
# **Counting steps.** The paper counts $t = 1, \dots, T$; the code counts from 0, as Python does.
# Code `t` is the paper's step $t + 1$: `t = 0` makes $x_1$ (one step of noise), `t = 999` makes
# $x_{1000} = x_T$, and `schedule.betas[0]` is the paper's $\beta_1$. Formulas below use the
# paper's $t$; code, printouts and picture labels use the code's (a picture labelled `t = 0`
# shows $x_1$).

# %%
schedule = S.schedule("linear")
cosine = S.schedule("cosine")
print(schedule)
print(f"beta at t=0: {schedule.betas[0]:.6f}, at t={S.num_steps - 1}: {schedule.betas[-1]:.6f}")

# %% [markdown]
# **Why the values never blow up.** Since the new noise is independent of $x_{t-1}$, variances
# add: for every pixel
#
# $$\mathrm{Var}(x_t) = (1-\beta_t)\,\mathrm{Var}(x_{t-1}) + \beta_t,
# \qquad\text{so}\qquad \mathrm{Var}(x_t) - 1 = (1-\beta_t)\big(\mathrm{Var}(x_{t-1}) - 1\big).$$
#
# A variance of 1 stays 1; any other is pulled towards 1, its distance shrinking by the factor
# $1-\beta_t$ at every step. After all $T$ steps that distance has been multiplied by
# $\prod_t (1-\beta_t) \approx 4 \cdot 10^{-5}$: whatever the picture's variance was, $x_T$ has
# variance 1. Check with random numbers, starting from variance 0 (a flat picture), 0.25 and 4:

# %%
dh.derivations.variance_goes_to_one(schedule)

# %% [markdown]
# ## Jumping straight to step t
#
# Write $\alpha_t = 1 - \beta_t$. Two steps in a row are one Gaussian step: with independent
# $\varepsilon_1, \varepsilon_2$,
#
# $$x_{t+1} = \sqrt{\alpha_{t+1}}\big(\sqrt{\alpha_t}\,x_{t-1} + \sqrt{1-\alpha_t}\,\varepsilon_1\big) + \sqrt{1-\alpha_{t+1}}\,\varepsilon_2$$
#
# has mean $\sqrt{\alpha_t\alpha_{t+1}}\,x_{t-1}$ and variance
# $\alpha_{t+1}(1-\alpha_t) + 1 - \alpha_{t+1} = 1 - \alpha_t\alpha_{t+1}$: the same form as one
# step, with $\alpha_t\alpha_{t+1}$ in place of $\alpha_t$. Check by sampling:

# %%
dh.derivations.two_steps_in_one(schedule, t=500)

# %% [markdown]
# Repeating the argument down to $x_0$ multiplies all the alphas: with
# $\bar\alpha_t = \prod_{s \le t} \alpha_s$, we can jump from $x_0$ to any $x_t$ in one go
# (DDPM eq. 4):
#
# $$q(x_t \mid x_0) = \mathcal{N}\!\left(\sqrt{\bar\alpha_t}\,x_0,\; (1-\bar\alpha_t) I\right),
# \qquad x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon.$$
#
# $\sqrt{\bar\alpha_t}$ is how much picture is left, $\sqrt{1-\bar\alpha_t}$ how much noise.
#
# ### Your turn: alpha-bar
#
# How the exercises work: write your version in the first cell and run it, then run the check
# two cells down: it tries your function on a few inputs, edge cases included, and says what is
# wrong. The collapsed cell in between is our solution. Running it (or *Run all*) replaces your
# function with ours, so try yourself first.
#
# Write `alpha_bar(betas)`: `betas` is a float64 tensor $[\beta_1, \dots, \beta_T]$ (indexed
# from 0); return $\bar\alpha$ for every step, a tensor of the same length. One line of torch
# does it.

# %%
def alpha_bar(betas):
    """betas: float64 tensor [T] -> alpha-bar, float64 tensor [T]."""
    raise NotImplementedError("your turn: write alpha_bar, then run the check below")


# %% jupyter={"source_hidden": true} cellView="form"
# @title Solution (in Colab: double-click to show the code)
# Solution. Running this cell replaces your alpha_bar with this one.
def alpha_bar(betas):
    return torch.cumprod(1 - betas, dim=0)  # (1 - beta_0) (1 - beta_1) ... (1 - beta_t)


# %%
dh.exercises.check_alpha_bar(alpha_bar)

# %% [markdown]
# ### Your turn: q(x_t | x_0) in three lines
#
# Write `q_sample(x0, t, noise, schedule)`: return
# $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$ (eq. 4) with
# `noise` as $\varepsilon$. `x0` and `noise` are float32 batches `[B, C, H, W]`; `t` is an int,
# or a LongTensor `[B]` with one step per image. $\bar\alpha$ is `schedule.alpha_bars` (float64,
# index `t`). Tip: `schedule.gather(schedule.alpha_bars, t, x0)` picks the values for `t`,
# shapes them `[B, 1, 1, 1]` so each image gets its own, and casts them to float32.

# %%
def q_sample(x0, t, noise, schedule):
    """x0, noise: [B, C, H, W]; t: int or LongTensor [B] -> x_t [B, C, H, W] (eq. 4)."""
    raise NotImplementedError("your turn: write q_sample, then run the check below")


# %% jupyter={"source_hidden": true} cellView="form"
# @title Solution (in Colab: double-click to show the code)
# Solution. Running this cell replaces your q_sample with this one.
def q_sample(x0, t, noise, schedule):
    abar = schedule.gather(schedule.alpha_bars, t, x0)  # abar_t, shaped [B, 1, 1, 1], float32
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise  # eq. 4


# %%
dh.exercises.check_q_sample(q_sample)

# %% [markdown]
# The package's version is `dh.add_noise(x0, t, schedule)`, which also draws the noise for you
# and returns it with $x_t$. Your `q_sample` at a few steps, one noise draw for all:

# %%
noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
steps = [0, 100, 300, 999]
dh.show_images(torch.cat([q_sample(x0, t, noise, schedule) for t in steps]), titles=[f"t = {t}" for t in steps])

# %% [markdown]
# ## Comparing schedules
#
# Three views of a schedule, from left to right: $\beta_t$, the noise added at each step; then
# $\bar\alpha_t$ itself, not its square root: $\bar\alpha_t$ is the share of $x_t$'s variance
# that is still picture ($1 - \bar\alpha_t$ is noise), and the picture's coefficient in eq. 4 is
# $\sqrt{\bar\alpha_t}$; last, the log signal-to-noise ratio
#
# $$\log \mathrm{SNR}(t) = \log \frac{\bar\alpha_t}{1-\bar\alpha_t},$$
#
# the ratio of the two *squared* coefficients of eq. 4 (the variances of the picture part and of
# the noise part), the clearest way to compare schedules. The cosine schedule (Nichol & Dhariwal
# 2021) keeps more of the picture for longer; the linear one destroys it early and then spends
# hundreds of steps on almost-pure noise.

# %%
dh.plot_schedules({"linear (DDPM)": schedule, "cosine": cosine})

# %% [markdown]
# ## Do the two routes really agree?
#
# Let's check the algebra with random numbers. First one pixel: start 4,096 copies of the
# value 0.5 and apply eq. 2, $x_t = \sqrt{1-\beta_t}\,x_{t-1} + \sqrt{\beta_t}\,\varepsilon$, 300
# times; the closed form says the result has mean $\sqrt{\bar\alpha_t} \cdot 0.5$ and spread
# $\sqrt{1-\bar\alpha_t}$:

# %%
g = torch.Generator().manual_seed(0)
x = torch.full((4096,), 0.5, dtype=torch.float64)  # one pixel, 4,096 times
for t in range(300):  # the chain: eq. 2, one step at a time
    beta = schedule.betas[t]
    x = (1 - beta).sqrt() * x + beta.sqrt() * torch.randn(4096, generator=g, dtype=torch.float64)
abar = schedule.alpha_bars[299]
print(f"after 300 steps: mean {x.mean():.3f}, spread {x.std():.3f}")
print(f"eq. 4 says:      mean {abar.sqrt() * 0.5:.3f}, spread {(1 - abar).sqrt():.3f}")

# %% [markdown]
# The same for every pixel of your picture and many steps (`dh.plot_chain_vs_closed_form` runs
# this chain hundreds of times from the picture and fits the mean and spread of each pixel):

# %%
dh.plot_chain_vs_closed_form(x0, schedule, seed=0)

# %% [markdown]
# The dots (the step-by-step chain) land on the lines (the closed form): both routes give the
# same distribution. Training uses the closed form, because it reaches any $t$ in one step.
#
# ## Your picture dissolving
#
# Each panel is $x_{t+1}$ for the code's `t` in its title (`t = 0`: one step of noise).

# %%
dh.plot_noising_grid(x0, schedule, [0, 50, 100, 200, 300, 500, 700, 999], generator=torch.Generator().manual_seed(0))

# %% [markdown]
# The same with the cosine schedule: the picture survives much longer.

# %%
dh.plot_noising_grid(x0, cosine, [0, 50, 100, 200, 300, 500, 700, 999], generator=torch.Generator().manual_seed(0))

# %% [markdown]
# ## Aside (optional): a bigger picture needs more noise
#
# The same $t$ does not destroy every picture equally. Below, your picture at 32, 64 and 128
# px, noised to the same step (top row: the same noise per pixel). Shrink each noisy picture
# to 32 px by averaging blocks of pixels (middle row): averaging $k \times k$ pixels divides
# the noise's variance by $k^2$ but keeps the picture's coarse shapes, so the 128 px picture
# still shows them, its signal-to-noise ratio 16 times higher. Its layout survives longer, and
# the steps that decide the layout get less training. One remedy (Hoogeboom et al. 2023,
# "simple diffusion") **shifts the schedule** for the picture's size, lowering every
# $\log \mathrm{SNR}(t)$ by $2 \log k$; with it (bottom row) the three look alike again.
# `dh.NoiseSchedule(..., shift=k)` does it. The tutorial's defaults do not shift
# (`shift=1`): at 64 px on one picture the plain net without a shift measured best of the
# designs tried (README, "Picture size").

# %%
dh.plot_noise_at_sizes(dh.my_image(size=128, verbose=False), schedule, t=400)

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
