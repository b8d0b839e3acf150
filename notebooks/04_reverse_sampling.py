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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/diffusion-tutorial/ddpm-on-your-picture/blob/main/notebooks/04_reverse_sampling.ipynb)
#
# # 4 · Reverse sampling: from pure noise back to your picture
#
# We start from pure noise $x_T \sim \mathcal{N}(0, I)$ and, step by step, remove the noise the
# model predicts.
#
# *About 4 minutes on a 2-core CPU (4 min 25 s measured, README), most of it DDPM's 1000 steps
# by hand and the whole of DDPM trained on one screen at the end; a GPU takes a fraction of
# that (not measured).*

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
from IPython.display import HTML, display

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
# Now all $T$ steps, from pure noise, with your `reverse_step`, for `N_HAND` pictures. This is
# the one place the notebook takes DDPM's 1000 steps: the faster samplers come after it.

# %%
N_HAND = S.hand_samples  # pictures sampled by hand

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
hand_scores = dh.psnr(hand_images, x0)
dh.show_images(torch.cat([x0, hand_images]), titles=["your picture"] + [f"by hand: {s:.1f} dB" for s in hand_scores])

# %% [markdown]
# ## The same loop, with the extras: `dh.sample`
#
# `dh.sample` runs this loop: given the same choices and seed, it draws the same numbers in the
# same order and gives the same pictures (your loop uses $\sigma_t^2 = \beta_t$ and no
# clipping, the two choices explained further down):

# %%
same = dh.sample(model, schedule, n=N_HAND, seed=0, variance="beta", clip=False, progress=False)
print(f"largest difference from your loop: {(same.images - hand_images).abs().max():.1e}")

# %% [markdown]
# Around the loop it adds:
#
# - **snapshots** of $x_t$ and of the model's guess of the picture every few steps, for the
#   animation (`every=`);
# - **other samplers**, each a `dh.Sampler`: DDIM and DPM-Solver++ below, which take far fewer
#   steps; `S.sampler` is the one the rest of the tutorial uses;
# - the two choices of Algorithm 2 below (by default $\sigma_t^2 = \tilde\beta_t$ and the guessed
#   picture clipped to $[-1, 1]$);
# - a progress bar, the model's device, CPU threads and a memory check handled for you.
#
# ## Watch it happen
#
# `S.sampler` in 20 steps, for `S.num_samples` pictures, keeping a snapshot at every step. Top:
# $x_t$, the picture being denoised. Bottom: the model's current guess of the final picture,
# $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\varepsilon_\theta) / \sqrt{\bar\alpha_t}$ (clipped
# to $[-1, 1]$, as the sampler uses it). The guess settles long before the noise is gone. A
# model that has learned one picture, as yours has, guesses that picture from the first step;
# on a model of many pictures (notebook 05) the coarse shapes and colours are decided early
# (large $t$) and the fine detail late.

# %%
run = dh.sample(model, schedule, n=S.num_samples, sampler=S.sampler, seed=0, every=1)
print(f"{S.sampler}: {run.seconds:.1f} s for {S.num_samples} pictures")
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
# PSNR against your picture (notebook 03: around 20 dB recognisable, above 30 dB differences
# are hard to spot), and your picture beside the best and the worst sample, large:

# %%
scores = dh.psnr(run.images, x0)
print(f"mean PSNR {scores.mean():.1f} dB (per sample: {', '.join(f'{s:.1f}' for s in scores)})")
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
# *Aside (optional): the four combinations side by side*, each 1000 steps for `N_HAND`
# pictures, the same seed (about two minutes on a CPU: set the flag to run it). The one with
# $\beta_t$ and no clipping is your loop.

# %%
TRY_VARIANTS = S.experiments  # True: DDPM with each variance, with and without clipping

if TRY_VARIANTS:
    variants = {
        "σ² = β̃, clip (the default)": dh.Sampler(variance="posterior", clip=True),
        "σ² = β̃, no clip": dh.Sampler(variance="posterior", clip=False),
        "σ² = β, clip": dh.Sampler(variance="beta", clip=True),
        "σ² = β, no clip (your loop)": dh.Sampler(variance="beta", clip=False),
    }
    display(dh.show_runs(dh.compare_samplers(model, schedule, variants, x0, n=N_HAND, seed=0), x0))
else:
    print("Off: set TRY_VARIANTS = True above and run this cell again (about two minutes).")

# %% [markdown]
# ## Faster: DDIM in fewer steps
#
# DDIM (Song et al. 2021) uses the same trained model but visits only a few of the $T$ timesteps
# (`S.ddim_steps`), jumping from each to the next, $t$ to an earlier $t'$, with
#
# $$x_{t'} = \sqrt{\bar\alpha_{t'}}\,\hat x_0 + \sqrt{1-\bar\alpha_{t'}-\sigma^2}\,\varepsilon_\theta
# + \sigma z, \qquad \sigma = \eta\,\sqrt{\tfrac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}}
# \sqrt{1-\tfrac{\bar\alpha_t}{\bar\alpha_{t'}}}.$$
#
# With $\eta = 0$ no fresh noise is added: guess the picture, then put back exactly the noise
# the model sees, scaled for the earlier step. In code that is two lines; here they are beside
# the package's `dh.ddim_step`:

# %%
def ddim_step_by_hand(x_t, t, t_prev, eps, schedule):
    """One DDIM step with eta = 0: x_t at step t -> x at the earlier step t_prev (eq. 12)."""
    abar, abar_prev = schedule.alpha_bars[t], schedule.alpha_bars[t_prev]
    x0_hat = (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()  # the guessed picture (eq. 15)
    return abar_prev.sqrt() * x0_hat + (1 - abar_prev).sqrt() * eps  # the same noise, at t_prev


x_t, eps = torch.randn(2, *x0.shape[1:], dtype=torch.float64), torch.randn(2, *x0.shape[1:], dtype=torch.float64)
ours = ddim_step_by_hand(x_t, 500, 480, eps, schedule)
package = dh.ddim_step(x_t, 500, 480, eps, schedule, eta=0.0, clip=False)
print(f"largest difference from dh.ddim_step: {(ours - package).abs().max():.1e}")

# %% [markdown]
# With $\eta = 1$ each jump adds as much fresh noise as the exact posterior of that jump has
# (for jumps of one step, exactly DDPM's $\tilde\beta_t$). Each against your DDPM run by hand,
# timed:

# %%
ddim = {
    "DDIM, η = 0": dh.Sampler("ddim", steps=S.ddim_steps, eta=0.0),
    "DDIM, η = 1": dh.Sampler("ddim", steps=S.ddim_steps, eta=1.0),
}
runs = dh.compare_samplers(model, schedule, ddim, x0, n=S.num_samples, seed=0)  # prints each
print(f"DDPM by hand, {T} steps: mean PSNR {hand_scores.mean():.1f} dB")
dh.show_runs(runs, x0)

# %% [markdown]
# DDIM takes $T$ / `S.ddim_steps` times fewer model calls. Compare the PSNRs too. With a model
# as sure of your picture as this one, every sampler lands on it. On a model that is less sure
# (trained for less time, or on many pictures), the two differ: with $\eta = 0$ the network's
# small errors early on are never corrected, because no step adds the noise that lets later
# steps pull the picture back; with $\eta = 1$ the fresh noise gives the model that chance (on
# the noise-predicting shipped model before the picture recipe, 50 steps: DDIM with
# $\eta = 1$ 29 dB, with $\eta = 0$ 21 dB, against DDPM's 31 dB in 1000; README). On models trained on many
# pictures $\eta = 0$ is the usual choice: it is deterministic and its samples are sharp.
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
# Each at 10, 20 and 50 steps, against DDIM from above (same pictures, same seed):

# %%
solvers = {
    "DPM-Solver++, η = 0 (ODE)": dh.Sampler("dpm_solver", eta=0.0),
    "SDE-DPM-Solver++, η = 1": dh.Sampler("dpm_solver", eta=1.0),
}
curves = dh.quality_by_steps(model, schedule, solvers, x0, steps=(10, 20, 50), n=S.num_samples, seed=0, earlier=runs)
dh.plot_sampler_quality(curves)

# %% [markdown]
# Read your own curves: how many steps each sampler needs before more steps stop helping.
# SDE-DPM-Solver++ in 20 steps, `dh.Sampler("dpm_solver", eta=1)`, is `S.sampler`, how the
# following notebooks sample a model of one picture: on the shipped models of earlier versions
# (noise predictors) it matched DDPM's 1000 steps at a fiftieth of the model calls, where the
# ODE samplers fell 10 dB short (README). Its first-order step is DDIM with $\eta = 1$; the
# log-SNR spacing and the second-order correction each add part of the rest (notebook 07
# separates them). On a model of many pictures (notebook 05) the ODE version is the usual
# choice.
#
# ## DDPM on one screen
#
# The whole method in plain PyTorch: eq. 4 (`q_sample`), the loss, Algorithm 1 and
# Algorithm 2, training a fresh small U-Net on your picture at 16 px for `S.one_screen_steps`
# steps and sampling it with all $T$ steps. Nothing else from the package but the network and
# the schedule's numbers. About a minute on a CPU.

# %%
abar, alphas, betas = (a.float() for a in (schedule.alpha_bars, schedule.alphas, schedule.betas))
picture = dh.my_image(size=16, channels=x0.shape[1], verbose=False)
net = dh.UNet.preset("tiny", image_channels=x0.shape[1], image_size=16, seed=0)
opt = torch.optim.AdamW(net.parameters(), lr=2e-3)

def q_sample(x0, t, eps):  # eq. 4
    a = abar[t].reshape(-1, 1, 1, 1)
    return a.sqrt() * x0 + (1 - a).sqrt() * eps

for _ in range(S.one_screen_steps):  # Algorithm 1
    x_start = picture.expand(16, -1, -1, -1)
    t, eps = torch.randint(0, T, (16,)), torch.randn(x_start.shape)
    loss = ((net(q_sample(x_start, t, eps), t) - eps) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()

with torch.no_grad():  # Algorithm 2, with sigma_t^2 = beta_t
    x = torch.randn(4, *picture.shape[1:])
    for t in reversed(range(T)):
        eps = net(x, torch.full((4,), t))
        x = (x - betas[t] / (1 - abar[t]).sqrt() * eps) / alphas[t].sqrt()
        x = x + (betas[t].sqrt() * torch.randn(x.shape) if t > 0 else 0)
dh.show_images(torch.cat([picture, x.clamp(-1, 1)]), titles=["your picture, 16 px"] + ["sample"] * 4)

# %% [markdown]
# Everything else in the package is what makes this fast, safe and comfortable: the extras of
# `dh.train` and `dh.sample`, the faster samplers, checkpoints, and the checks that turn
# mistakes into clear messages.
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
