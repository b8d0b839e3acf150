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

import time

import torch
from IPython.display import HTML

import diffusion_helpers as dh

S = dh.settings()
model, schedule, x0 = dh.load_tutorial_model(S.device)  # notebook 03's model, or the shipped one

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
# ($t = 1$ in the paper, `t = 0` here) **no noise is added** ($\sigma = 0$): what comes out is
# the final picture, and there is no later step left to remove fresh noise, so it would stay in
# the picture as grain. (With $\sigma_t^2 = \tilde\beta_t$ this happens by itself, since
# $\tilde\beta_1 = 0$; with $\sigma_t^2 = \beta_t$ the sampler must skip it explicitly.)
#
# Here are the first three steps by hand, from pure noise:

# %%
g = torch.Generator().manual_seed(0)
x = torch.randn(1, *x0.shape[1:], generator=g).to(S.device)
T = schedule.num_steps
with torch.no_grad():
    for t in (T - 1, T - 2, T - 3):
        eps = model(x, torch.tensor([t], device=S.device))
        x = dh.reverse_step(x, t, eps, schedule, generator=g)
        print(f"t = {t}: x has mean {x.mean():+.3f}, std {x.std():.3f}")

# %% [markdown]
# Three steps barely change anything: each removes a sliver of noise. Now all $T$ of them,
# keeping a snapshot every few steps.

# %%
start = time.perf_counter()
run = dh.sample(model, schedule, n=S.num_samples, seed=0, every=max(1, T // 100))
ddpm_seconds = time.perf_counter() - start
dh.show_images(run.images, titles=[f"sample {i + 1}" for i in range(len(run.images))])

# %% [markdown]
# ## Watch it happen
#
# Top: $x_t$, the picture being denoised. Bottom: the model's current guess of the final
# picture, $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\varepsilon_\theta) / \sqrt{\bar\alpha_t}$.
# The guess settles long before the noise is gone: coarse shapes and colours are decided early
# (large $t$), fine detail late.

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
scores = dh.psnr(run.images, x0, mirror=True)
print(f"mean PSNR {scores.mean():.1f} dB (per sample: {', '.join(f'{s:.1f}' for s in scores)})")
dh.show_images(torch.cat([x0, run.images]), titles=["your picture"] + [f"{s:.1f} dB" for s in scores])

# %% [markdown]
# ## Two choices in the sampler
#
# - **Variance** $\sigma_t^2$: DDPM tried $\beta_t$ (the most noise a step could need) and
#   $\tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\beta_t$ (the exact variance if
#   $x_0$ were known); both work.
# - **Clipping** $\hat x_0$ to $[-1, 1]$ before taking the step, as the reference code does:
#   pixel values can't stray outside the range of real pictures.
#
# Same starting noise, four combinations:

# %%
variants = {}
for variance in ("posterior", "beta"):
    for clip in (True, False):
        out = dh.sample(model, schedule, n=1, seed=1, variance=variance, clip=clip, progress=False)
        variants[f"σ²={'β̃' if variance == 'posterior' else 'β'}, clip {'on' if clip else 'off'}"] = out.images
titles = [f"{name}\n{dh.psnr(x, x0, mirror=True).item():.1f} dB" for name, x in variants.items()]
dh.show_images(torch.cat(list(variants.values())), titles=titles, ncols=4, size=2.6)

# %% [markdown]
# ## Faster: DDIM in 50 steps
#
# DDIM (Song et al. 2021) uses the same trained model but visits only 50 of the 1000 timesteps,
# jumping from each to the next with
#
# $$x_{t'} = \sqrt{\bar\alpha_{t'}}\,\hat x_0 + \sqrt{1-\bar\alpha_{t'}-\sigma^2}\,\varepsilon_\theta
# + \sigma z, \qquad \sigma = \eta\,\sqrt{\tfrac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}}
# \sqrt{1-\tfrac{\bar\alpha_t}{\bar\alpha_{t'}}}.$$
#
# With $\eta = 0$ no fresh noise is added: the picture is a fixed function of the starting
# noise. With $\eta = 1$ each jump adds as much fresh noise as the exact posterior of that jump
# has (for jumps of one step, exactly DDPM's $\tilde\beta_t$). Here is
# each against the DDPM run above:

# %%
results = {f"DDPM, {T} steps": (run.images, ddpm_seconds)}
for eta in (0.0, 1.0):
    start = time.perf_counter()
    out = dh.sample(model, schedule, n=S.num_samples, seed=0, method="ddim", steps=S.ddim_steps, eta=eta)
    results[f"DDIM, {S.ddim_steps} steps, η = {eta:g}"] = (out.images, time.perf_counter() - start)
for name, (images, seconds) in results.items():
    print(f"{name:<24} {seconds:6.1f} s   mean PSNR {dh.psnr(images, x0, mirror=True).mean():5.1f} dB")
k = min(4, S.num_samples)
dh.show_images(torch.cat([images[:k] for images, _ in results.values()]), titles=[name for name in results for _ in range(k)], ncols=k, size=2.6)

# %% [markdown]
# DDIM is about 20 times faster. On a model that has memorised one picture, the deterministic
# version ($\eta = 0$) lands a little off: small errors of the network early on are never
# corrected, because no step adds the noise that lets later steps pull the picture back.
# With $\eta = 1$ the fresh noise gives the model that chance, and the result comes close to
# DDPM's. On models trained on many pictures, $\eta = 0$ is the usual choice: it is
# deterministic and its samples are sharp.
#
# ## What you have built
#
# A complete diffusion model: a fixed noise schedule, a network trained with one simple loss,
# and a sampler that turns noise into pictures. Trained on one picture it memorises it; trained
# on many, the same code generates new ones. Try another photo in notebook 01, a longer
# training run in 03, or the cosine schedule.
