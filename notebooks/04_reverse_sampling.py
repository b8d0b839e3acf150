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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/diffusion-tutorial/ddpm-on-your-picture/blob/main/notebooks/04_reverse_sampling.ipynb)
#
# # 4 · Reverse sampling: from pure noise back to your picture
#
# We start from pure noise $x_T \sim \mathcal{N}(0, I)$ and, step by step, remove the noise the
# model predicts.
#
# *About 8 minutes on a 2-core CPU (7 min 57 s measured), most of it DDPM's 1000 steps: 8
# pictures, then the four variants of the sampler. A Colab CPU runtime, without bf16, is
# slower (not measured); a GPU takes a fraction of that.*

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
from IPython.display import HTML

import diffusion_helpers as dh

KEEP_ON_DRIVE = True  # Colab: keep your picture and models on Google Drive, where every notebook finds them
S = dh.start(KEEP_ON_DRIVE)  # the work folder, and the sizes for this machine

# %%
model, schedule, x0 = dh.load_tutorial_model(S.device)  # notebook 03's model, or the shipped one
T = schedule.num_steps

# %% [markdown]
# ## One step back: Algorithm 2
#
# At step $t$ the model predicts the noise $\varepsilon_\theta(x_t, t)$, and we step to
# $x_{t-1}$ with (DDPM Algorithm 2, line 4):
#
# $$x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\left(x_t - \frac{1-\alpha_t}{\sqrt{1-\bar\alpha_t}}\,
# \varepsilon_\theta(x_t, t)\right) + \sigma_t z, \qquad z \sim \mathcal{N}(0, I).$$
#
# The bracket removes a small, scaled share of the predicted noise; $\sigma_t z$ adds back a
# little fresh noise, because a single step back is itself uncertain. At the very last step
# ($t = 1$ in the paper, `t = 0` in code: code `t` is the paper's $t + 1$) **no noise is added**
# ($\sigma = 0$): what comes out is the final picture, and there is no later step left to remove
# fresh noise, so it would stay in the picture as grain. (With $\sigma_t^2 = \tilde\beta_t$,
# below, this happens by itself, since $\tilde\beta_1 = 0$; with $\sigma_t^2 = \beta_t$ the
# sampler must skip it explicitly.)
#
# ### Your turn: one reverse step
#
# Write `reverse_step(x_t, t, predicted_noise, schedule, z)`: Algorithm 2's line 4 with
# $\sigma_t^2 = \beta_t$ (note $1 - \alpha_t = \beta_t$), for an int `t`, using the noise `z`
# you are given, and no noise at `t = 0`. The schedule's float64 arrays are `schedule.betas`,
# `schedule.alphas` and `schedule.alpha_bars`, indexed by `t`. Run the check two cells down; the
# collapsed cell between is the solution (running it replaces yours).

# %%
def reverse_step(x_t, t, predicted_noise, schedule, z):
    """x_t, predicted_noise, z: [B, C, H, W]; t: int -> x_{t-1} [B, C, H, W] (Algorithm 2)."""
    raise NotImplementedError("your turn: write reverse_step, then run the check below")


# %% jupyter={"source_hidden": true} cellView="form"
# @title Solution (in Colab: double-click to show the code)
# Solution. Running this cell replaces your reverse_step with this one.
def reverse_step(x_t, t, predicted_noise, schedule, z):
    beta, alpha, abar = schedule.betas[t], schedule.alphas[t], schedule.alpha_bars[t]
    mean = (x_t - beta / (1 - abar).sqrt() * predicted_noise) / alpha.sqrt()  # Algorithm 2, line 4
    sigma = beta.sqrt() if t > 0 else 0.0  # sigma_t^2 = beta_t; no noise at the last step
    return mean + sigma * z


# %%
dh.exercises.check_reverse_step(reverse_step)

# %% [markdown]
# ### Algorithm 2 by hand
#
# Now all $T$ steps, from pure noise, with your `reverse_step`, for `N_HAND` pictures:

# %%
N_HAND = S.hand_samples  # pictures sampled by hand (and by each variant further down)

# %%
# Algorithm 2 by hand
g = torch.Generator().manual_seed(0)  # every random draw of the loop comes from here
x = torch.randn(N_HAND, *x0.shape[1:], generator=g)  # 1. x_T ~ N(0, I)
with torch.no_grad():  # sampling only: no gradients needed
    for t in reversed(range(T)):  # 2. t = T, ..., 1 (code: T-1, ..., 0)
        z = torch.randn(x.shape, generator=g)  # 3. z ~ N(0, I) (drawn at t = 0 too, unused there)
        eps = model(x.to(S.device), torch.full((N_HAND,), t, device=S.device)).float().cpu()
        x = reverse_step(x, t, eps, schedule, z)  # 4. x_{t-1}, by your function
hand_images = x.clamp(-1, 1)
dh.show_images(hand_images, titles=[f"by hand {i + 1}" for i in range(N_HAND)])

# %% [markdown]
# ## The same loop, with the extras: `dh.sample`
#
# `dh.sample` runs this loop (given the same choices and seed, it draws the same numbers in the
# same order and gives the same pictures: you will see it below), plus:
#
# - **snapshots** of $x_t$ and of the model's guess of the picture every few steps, for the
#   animation (`every=`);
# - **two choices**, explained further down: the variance $\sigma_t^2$ (its default is
#   $\tilde\beta_t$, yours was $\beta_t$) and **clipping** the guessed picture to $[-1, 1]$ at
#   every step. Clipping is on by default (`clip=True`, the package's one default for every
#   sampler, `CLIP_X0` in `diffusion_helpers/reverse.py`); it is written out below so that you
#   see it;
# - **DDIM** (`method="ddim"`), a faster sampler, at the end of this notebook;
# - a progress bar, and the model's device handled for you.
#
# $T$ steps for `S.num_samples` pictures, keeping a snapshot every few steps:

# %%
run = dh.sample(model, schedule, n=S.num_samples, seed=0, every=max(1, T // 100), clip=True)
print(f"{T} steps in {run.seconds:.0f} s")
dh.show_images(run.images, titles=[f"sample {i + 1}" for i in range(len(run.images))])

# %% [markdown]
# ## Watch it happen
#
# Top: $x_t$, the picture being denoised. Bottom: the model's current guess of the final
# picture, $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\varepsilon_\theta) / \sqrt{\bar\alpha_t}$
# (clipped to $[-1, 1]$, as the sampler uses it). The guess settles long before the noise is
# gone: coarse shapes and colours are decided early (large $t$), fine detail late.

# %%
HTML(dh.animation_html(run.frames))

# %%
gif = dh.save_gif(run.frames, dh.work_dir() / "reverse.gif")
print(f"Saved the animation as {gif}")

# %% [markdown]
# Explore the frames yourself, one by one ($x_t$ on the left, the guess $\hat x_0$ on the right):

# %%
dh.reverse_explorer(run.frames)

# %% [markdown]
# ## How close did it get?
#
# PSNR (peak signal-to-noise ratio) compares each sample with your picture:
# $\mathrm{PSNR} = 10 \log_{10}(1 / \mathrm{MSE})$ on pixel values in $[0, 1]$. Around 20 dB
# the picture is recognisable, above 25 dB the two look alike, above 30 dB differences are hard
# to spot.

# %%
scores = dh.psnr(run.images, x0)
print(f"mean PSNR {scores.mean():.1f} dB (per sample: {', '.join(f'{s:.1f}' for s in scores)})")
dh.show_images(torch.cat([x0, run.images]), titles=["your picture"] + [f"{s:.1f} dB" for s in scores])

# %% [markdown]
# Your picture beside the best and the worst sample, large:

# %%
best, worst = scores.argmax().item(), scores.argmin().item()
titles = ["your picture", f"best sample: {scores[best]:.1f} dB", f"worst sample: {scores[worst]:.1f} dB"]
dh.show_images(torch.cat([x0, run.images[[best, worst]]]), titles=titles, ncols=3, size=4.5)

# %% [markdown]
# ## Where Algorithm 2 comes from: the posterior
#
# Given the clean picture, one step back is known exactly. The posterior of the forward process
# is a Gaussian (DDPM eq. 6-7):
#
# $$q(x_{t-1} \mid x_t, x_0) = \mathcal{N}\big(\tilde\mu_t(x_t, x_0),\, \tilde\beta_t I\big),\quad
# \tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}\,x_0 + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}\,x_t,\quad
# \tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t.$$
#
# Check by sampling: draw many pairs $(x_{t-1}, x_t)$ of the forward process from one pixel value
# $x_0$ and fit a line $x_{t-1} \approx a\,x_t + b$. The fitted weights and the spread around the
# line are those of eq. 7:

# %%
dh.derivations.posterior_by_sampling(schedule, t=10, n=S.posterior_samples)

# %% [markdown]
# A sampler does not know $x_0$. Algorithm 2 writes it through the predicted noise,
# $x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\varepsilon)/\sqrt{\bar\alpha_t}$ (eq. 15); put into
# $\tilde\mu_t$, the weights collapse to Algorithm 2's
# $\frac{1}{\sqrt{\alpha_t}}\big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\varepsilon\big)$.
# With the *exact* noise the two means are the same numbers (your picture, noised to a few
# $t$; float64):

# %%
dh.derivations.posterior_mean_is_algorithm_2_mean(x0, schedule)

# %% [markdown]
# ## Two choices in the sampler
#
# - **Variance** $\sigma_t^2$. DDPM (section 3.2) tried two, each optimal in one extreme case:
#   $\sigma_t^2 = \beta_t$ is optimal when the data itself is noise, $x_0 \sim \mathcal{N}(0, I)$;
#   $\sigma_t^2 = \tilde\beta_t$, the posterior's variance above, is optimal when $x_0$ is one
#   fixed point. A model that has memorised one picture is that second case, so $\tilde\beta_t$ is
#   exactly right here; it is the package's default. On real datasets both gave similar samples.
# - **Clipping.** At each step, take the model's guess of the picture,
#   $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\varepsilon_\theta)/\sqrt{\bar\alpha_t}$ (eq. 15), clip
#   it to $[-1, 1]$, and step to the posterior mean at that guess (eq. 7):
#
#   $$\tilde\mu_t(x_t, \hat x_0) = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}\,\hat x_0
#   + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}\,x_t.$$
#
#   Without the clip this is exactly Algorithm 2's mean (checked above); with it, no step aims
#   at pixel values that no picture has. The paper's reference code samples this way, and so
#   do the package's samplers by default (`clip=True`).
#
# Same seed, the four combinations, each a `dh.Sampler` (the one object that describes a run
# of the reverse process); the one with $\beta_t$ and no clipping is your loop:

# %%
variants = {
    "σ² = β̃, clip (the default)": dh.Sampler(variance="posterior", clip=True),
    "σ² = β̃, no clip": dh.Sampler(variance="posterior", clip=False),
    "σ² = β, clip": dh.Sampler(variance="beta", clip=True),
    "σ² = β, no clip (your loop)": dh.Sampler(variance="beta", clip=False),
}
runs = dh.compare_samplers(model, schedule, variants, x0, n=N_HAND, seed=0)  # each timed and scored
gap = (runs["σ² = β, no clip (your loop)"].images - hand_images).abs().max()
print(f"largest difference between your loop and dh.sample with the same choices: {gap:.1e}")
dh.show_runs(runs, x0)

# %% [markdown]
# ## Faster: DDIM in fewer steps
#
# DDIM (Song et al. 2021) uses the same trained model but visits only a few of the $T$ timesteps
# (`S.ddim_steps`), jumping from each to the next with
#
# $$x_{t'} = \sqrt{\bar\alpha_{t'}}\,\hat x_0 + \sqrt{1-\bar\alpha_{t'}-\sigma^2}\,\varepsilon_\theta
# + \sigma z, \qquad \sigma = \eta\,\sqrt{\tfrac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}}
# \sqrt{1-\tfrac{\bar\alpha_t}{\bar\alpha_{t'}}}.$$
#
# With $\eta = 0$ no fresh noise is added: the picture is a fixed function of the starting
# noise. With $\eta = 1$ each jump adds as much fresh noise as the exact posterior of that jump
# has (for jumps of one step, exactly DDPM's $\tilde\beta_t$). Here is each against the DDPM run
# above, timed:

# %%
ddim = {
    "DDIM, η = 0": dh.Sampler("ddim", steps=S.ddim_steps, eta=0.0),
    "DDIM, η = 1": dh.Sampler("ddim", steps=S.ddim_steps, eta=1.0),
}
runs = {f"DDPM, {T} steps": run} | dh.compare_samplers(model, schedule, ddim, x0, n=S.num_samples, seed=0)
print(f"DDIM was about {run.seconds / runs['DDIM, η = 0'].seconds:.0f} times faster than DDPM here.")
dh.show_runs(runs, x0)

# %% [markdown]
# The speed-up printed above is measured: it is about $T$ / `S.ddim_steps`, less a little
# overhead. Compare the PSNRs too. On the shipped model (one picture, 8 samples) DDPM gives
# 31 dB, DDIM with $\eta = 1$ 29 dB, and DDIM with $\eta = 0$ only 21 dB: a blurred, shifted
# copy. With $\eta = 0$ small errors of the network early on are never corrected, because no
# step adds the noise that lets later steps pull the picture back; with $\eta = 1$ the fresh
# noise gives the model that chance. On models trained on many pictures, $\eta = 0$ is the
# usual choice: it is deterministic and its samples are sharp.
#
# Why the fresh noise helps is notebook 07's story: there these samplers become two equations,
# a reverse SDE (DDPM, DDIM with $\eta = 1$) and a noise-free ODE (DDIM with $\eta = 0$).
#
# ## Fewer steps still: DPM-Solver++
#
# DPM-Solver++ (Lu et al. 2022) changes two things in DDIM's jump: its steps are evenly spaced
# in the log signal-to-noise ratio rather than in $t$ (dense near the end, where the fine
# detail is decided), and a second-order correction uses the model's guess $\hat x_0$ from the
# step before. Without the correction its step *is* DDIM's: with `eta=0` DDIM with
# $\eta = 0$, with `eta=1` (SDE-DPM-Solver++) DDIM with $\eta = 1$. *Aside, optional: its
# formulas are in notebook 07, section 2.*
#
# Each at 10, 20 and 50 steps, against DDPM and DDIM from above (same pictures, same seed):

# %%
solvers = {
    "DPM-Solver++, η = 0 (ODE)": dh.Sampler("dpm_solver", eta=0.0),
    "SDE-DPM-Solver++, η = 1": dh.Sampler("dpm_solver", eta=1.0),
}
curves = dh.quality_by_steps(model, schedule, solvers, x0, steps=(10, 20, 50), n=S.num_samples, seed=0, earlier=runs)
dh.plot_sampler_quality(curves)

# %% [markdown]
# On the shipped model we measured (8 samples): DDPM in 1000 steps 31 dB; the ODE samplers (DDIM
# with $\eta = 0$, DPM-Solver++ with `eta=0`) about 21 dB however many steps they take, because
# what they solve finely is the model's ODE, errors included; SDE-DPM-Solver++ 27 dB in 10 steps
# and 31 dB in 20, as good as DDPM at a fiftieth of the model calls. Its first-order step is
# DDIM with $\eta = 1$ (27 dB in 20 steps); the log-SNR spacing and the second-order correction
# together add the other 4 dB, each alone less than half of that (notebook 07 separates
# them). Noise that later steps can correct, and steps placed and corrected so that few are
# needed: that is why
# `dh.Sampler("dpm_solver", eta=1)` (`S.sampler`, the package's fast sampler) is how the
# following notebooks sample a model of one picture. On a model of many pictures (notebook 05)
# the ODE version is the usual choice.
#
# ## What you have built
#
# A complete diffusion model: a fixed noise schedule, a network trained with one simple loss,
# and a sampler that turns noise into pictures. Trained on one picture it memorises it; trained
# on many, the same code generates new ones. Try another photo in notebook 01, a longer
# training run in 03, or the what-if experiments at the end of 03.
#
# **Next:** [05 · New pictures](05_new_pictures.ipynb): the same code on a dataset, new pictures
# rather than copies, and steering them with classifier-free guidance.
