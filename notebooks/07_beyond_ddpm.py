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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/diffusion-tutorial/ddpm-on-your-picture/blob/main/notebooks/07_beyond_ddpm.ipynb)
#
# # 7 · Beyond DDPM: the score, two equations, and flow matching
#
# Papers after DDPM speak of **scores**, **SDEs** and **ODEs**; the models behind today's
# image and video generators (Stable Diffusion 3, Flux) are trained by **flow matching**. All
# of it is already inside what you built. This notebook finds it there, with your model and a
# 2D world made from your picture, then trains a flow-matching model with the same `dh.train`.
#
# *About 6 minutes on a 2-core CPU (6 min 21 s measured), 4 of them the two 2-minute training
# runs of part 4 (Colab's CPU and GPU runtimes are not measured).*

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

# %%
model, schedule, x0 = dh.load_tutorial_model(S.device)  # notebook 03's model, or the shipped one
T = schedule.num_steps

# %% [markdown]
# ## 1 · The score: what $\varepsilon_\theta$ knows
#
# The **score** of a distribution $p$ is $\nabla_x \log p(x)$: at every point, the direction
# in which the density rises fastest. Noised pictures $x_t$ have a distribution $p_t$ too, and
# **Tweedie's formula** says that the best guess of the noise in $x_t$, which is what the loss
# of Algorithm 1 trains $\varepsilon_\theta$ to make, is the score in disguise:
#
# $$\varepsilon_\theta(x_t, t) \approx \mathbb{E}[\varepsilon \mid x_t]
#   = -\sqrt{1-\bar\alpha_t}\;\nabla_{x_t} \log p_t(x_t), \qquad\text{so}\qquad
#   s_\theta(x_t, t) = -\frac{\varepsilon_\theta(x_t, t)}{\sqrt{1-\bar\alpha_t}}.$$
#
# (Why: for one picture, $\log q(x_t \mid x_0) = -\|x_t - \sqrt{\bar\alpha_t} x_0\|^2 /
# (2(1-\bar\alpha_t))$ + const, whose gradient is $-\varepsilon / \sqrt{1-\bar\alpha_t}$;
# averaging over the pictures that could have made $x_t$ gives the formula.) Training a
# denoiser *is* learning the score: "denoising score matching" (Vincent 2011; Song & Ermon 2019).
#
# ### Your turn: the score from the noise prediction
#
# Write `score(predicted_noise, t, schedule)` for an int `t`. Run the check two cells down; the
# collapsed cell between is the solution.

# %%
def score(predicted_noise, t, schedule):
    """predicted_noise: [B, C, H, W]; t: int -> the score s_theta [B, C, H, W] (Tweedie)."""
    raise NotImplementedError("your turn: write score, then run the check below")


# %% jupyter={"source_hidden": true} cellView="form"
# @title Solution (in Colab: double-click to show the code)
# Solution. Running this cell replaces your score with this one.
def score(predicted_noise, t, schedule):
    return -predicted_noise / schedule.sqrt_one_minus_alpha_bars[t]  # Tweedie's formula


# %%
dh.exercises.check_score(score)

# %% [markdown]
# Your model's score at one noisy version of your picture. One step *up* the score, by
# $(1-\bar\alpha_t)$ times it, lands on $\sqrt{\bar\alpha_t}\,\hat x_0$: Tweedie's denoised
# guess, the same $\hat x_0$ notebook 04 watched settle.

# %%
t = 300
noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
noisy, _ = dh.add_noise(x0, torch.tensor([t]), schedule, noise=noise)
with torch.no_grad():
    eps = model(noisy.to(S.device), torch.tensor([t], device=S.device)).float().cpu()
s_theta = score(eps, t, schedule)
abar = schedule.alpha_bars[t].item()
denoised = (noisy + (1 - abar) * s_theta) / abar**0.5  # Tweedie: E[x_0 | x_t]
dh.show_images(torch.cat([x0, noisy, s_theta / s_theta.abs().max(), denoised.clamp(-1, 1)]),
               titles=["your picture", f"x_t at t = {t}", "the score (scaled to fit)",
                       "x_t moved up the score"], ncols=4)

# %% [markdown]
# ## 2 · The two equations a sampler solves
#
# Write $\bar x = x / \sqrt{\bar\alpha}$ and $\bar\sigma = \sqrt{(1-\bar\alpha)/\bar\alpha}$, so
# that eq. 4 becomes $\bar x = x_0 + \bar\sigma\varepsilon$: the picture plus noise of size
# $\bar\sigma$ (not the $\sigma_t$ of Algorithm 2: the table below says which is which). Going
# back from pure noise ($\bar\sigma$ large) to the picture ($\bar\sigma = 0$) can be written in
# two ways (Song et al. 2021, eqs. 6 and 13, in the form of Karras et al. 2022):
#
# $$\text{reverse SDE:}\quad d\bar x = 2\,\varepsilon_\theta\, d\bar\sigma
#   + \sqrt{2\bar\sigma}\, dw
# \qquad\qquad
# \text{probability-flow ODE:}\quad d\bar x = \varepsilon_\theta\, d\bar\sigma .$$
#
# Both carry $\mathcal{N}(0, I)$ to the pictures the model learned: for a perfect model, the
# solutions of either have at every $t$ the distribution of the forward process's $x_t$. The
# SDE adds fresh noise $dw$ all the way down and, to make up for it, removes twice as much
# predicted noise; the ODE adds none, and each starting noise has exactly one end.
#
# - **DDPM** (Algorithm 2) and **DDIM with $\eta = 1$** take steps of the SDE: make their steps
#   infinitely small and they become it.
# - **DDIM with $\eta = 0$** is Euler's method on the ODE (DDIM's eq. 14 is this ODE);
#   **DPM-Solver++** is a second-order solver of the same ODE, and **SDE-DPM-Solver++** of the
#   SDE (the aside below).
#
# That answers notebook 04's question: why did the ODE samplers stop far below the SDE ones on
# your model? A net has errors. On the ODE an early error bends the path, and nothing bends it
# back. On the SDE every step mixes in fresh noise and removes it again with the model's help,
# which pulls a drifting sample back towards the noised pictures: errors are forgotten as they
# go (Karras et al. 2022, sec. 4). With a perfect model both would end at the data.
#
# ### Which $\sigma$, which $s$
#
# Papers reuse these two letters for different things; this tutorial keeps them apart:
#
# | symbol | what it is | notebook |
# |---|---|---|
# | $\sigma_t$ | Algorithm 2's fresh noise: $\sigma_t^2 = \beta_t$ or $\tilde\beta_t$ | 04 |
# | DDIM's $\sigma$ | fresh noise of one DDIM jump: $\eta$ times its posterior's spread | 04 |
# | $\bar\sigma_t$ | $\sqrt{(1-\bar\alpha_t)/\bar\alpha_t}$: noise level of $\bar x_t$ | 07, here |
# | $s_\theta(x_t, t)$ | the score, $-\varepsilon_\theta / \sqrt{1-\bar\alpha_t}$ | 07, part 1 |
# | $s$ | the flow's time in $[0, 1]$: $x_s = (1-s)\,x_0 + s\,\varepsilon$ | 07, part 4 |
# | strength | SDEdit's $t_0 / T$ (no symbol; 06's code loops over it as `s`) | 06 |
#
# DDIM's $\sigma$ with $\eta = 1$, on a jump of one step, is Algorithm 2's $\sigma_t$ with
# $\sigma_t^2 = \tilde\beta_t$: one quantity, written two ways. $\bar\sigma$ is the $\sigma$ of
# Karras et al. and k-diffusion (`sigma` in `diffusion_helpers/score.py`), and
# $\lambda_t = -\log\bar\sigma_t$ in the aside below. Where Lu et al. (DPM-Solver) write
# $\sigma_t$ they mean $\sqrt{1-\bar\alpha_t}$, the spread of the noise in $x_t$ itself; this
# tutorial always writes that out. The score $s_\theta$ is a tensor the shape of a picture; the
# flow's $s$ is one number (SD3 calls it $t$, diffusers' flow schedulers "sigmas").
#
# ### Aside: how DPM-Solver++ takes its steps
#
# *Optional: nothing in this aside is needed to use DPM-Solver++. `S.sampler`, the fast
# sampler of notebooks 04, 06 and 07, is SDE-DPM-Solver++; notebook 05's is DPM-Solver++.*
#
# DDIM treats the model's guess $\hat x_0$ as constant over a whole jump. Lu et al. (2022) do
# better in the variable
# $\lambda_t = \tfrac12 \log\big(\bar\alpha_t/(1-\bar\alpha_t)\big) = -\log\bar\sigma_t$, half
# the log signal-to-noise ratio: there the part of the step that depends on $x_t$ is solved
# exactly, and only $\hat x_0$ is approximated, by a line through the guesses of the last two
# steps. One step of DPM-Solver++(2M), from $t$ to $t'$ with
# $h = \lambda_{t'} - \lambda_t$ ($h_{\rm last}$ the step before):
#
# $$x_{t'} = \sqrt{\frac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}}\,x_t
#   + \sqrt{\bar\alpha_{t'}}\left(1 - e^{-h}\right) D,
# \qquad D = \hat x_0 + \frac{h}{2h_{\rm last}}\left(\hat x_0 - \hat x_0^{\rm last}\right).$$
#
# With $D = \hat x_0$ this is DDIM with $\eta = 0$ exactly; the correction makes it second
# order. With `eta=1` it solves the reverse SDE instead: part of the noise in $x_{t'}$ is
# fresh,
#
# $$x_{t'} = \sqrt{\frac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}}\,e^{-h}\,x_t
#   + \sqrt{\bar\alpha_{t'}}\left(1 - e^{-2h}\right) D
#   + \sqrt{1-\bar\alpha_{t'}}\,\sqrt{1 - e^{-2h}}\;z,$$
#
# and with $D = \hat x_0$ this is DDIM with $\eta = 1$ exactly (`tests/test_reverse.py` checks
# both). So DPM-Solver++ changes two things in DDIM, not one:
#
# - **where it steps**: evenly in $\lambda$, not in $t$ (`diffusion_helpers/timesteps.py`), so
#   its steps are dense near the end, where the fine detail is decided;
# - **the second-order correction** in $D$.
#
# Both count. On a noise-predicting model of the scene (the shipped model before the picture
# recipe; 8 samples, seed 0, 20 steps; `bench/sample_speed.py` separates the two the same
# way) we measured DDIM with $\eta = 1$ at 27.3 dB on steps even in $t$ and 27.6 dB on
# DPM-Solver's; SDE-DPM-Solver++ at 29.1 dB on steps even in $t$ and 31.4 dB on its own. Each
# change alone gains less than half of what the two give together.
#
# ### A corrector: Langevin steps between ODE steps
#
# With the score, there is a third way to add noise. **Langevin dynamics** samples from $p_t$ at
# a fixed $t$: step up the score, add noise, repeat,
#
# $$x \leftarrow x + \delta\, s_\theta(x, t) + \sqrt{2\delta}\; z,
# \qquad z \sim \mathcal{N}(0, I).$$
#
# A *predictor-corrector* sampler (Song et al. 2021, sec. 4.2) takes an ODE step, then one such
# Langevin step at the new $t$ to correct it: twice the model calls.
#
# ### Your turn: one Langevin step

# %%
def langevin_step(x, score, step_size, z):
    """x, score, z: [B, C, H, W]; step_size: a float -> x after one Langevin step."""
    raise NotImplementedError("your turn: write langevin_step, then run the check below")


# %% jupyter={"source_hidden": true} cellView="form"
# @title Solution (in Colab: double-click to show the code)
# Solution. Running this cell replaces your langevin_step with this one.
def langevin_step(x, score, step_size, z):
    return x + step_size * score + (2 * step_size) ** 0.5 * z


# %%
dh.exercises.check_langevin_step(langevin_step)

# %% [markdown]
# Now all of them from the same starting noise, 20 steps each, scored against your picture.
# `dh.sample_with_corrector` is DDIM ($\eta = 0$) with one Langevin step after each step; its
# step size $\delta$ makes the step's drift $r$ times its noise, with $r$ = 0.5 (Song et al.'s
# rule; `diffusion_helpers/score.py`):

# %%
odes_and_sdes = {
    "DDIM, η = 0 (ODE, Euler)": dh.Sampler("ddim", steps=20),
    "DPM-Solver++ (ODE)": dh.Sampler("dpm_solver", steps=20),
    "DDIM, η = 1 (SDE)": dh.Sampler("ddim", steps=20, eta=1.0),
    "SDE-DPM-Solver++": dh.Sampler("dpm_solver", steps=20, eta=1.0),
}
runs = dh.compare_samplers(model, schedule, odes_and_sdes, x0, n=S.num_samples, seed=0)
corrected, calls = dh.sample_with_corrector(model, schedule, S.num_samples, steps=20, seed=0)
mean_db = dh.psnr(corrected, x0).mean()
print(f"{'DDIM, η = 0, + Langevin':<30} {calls:5d} calls          mean PSNR {mean_db:5.1f} dB")
runs["DDIM + Langevin corrector"] = dh.SampleResult(corrected)
shown = ["DDIM, η = 0 (ODE, Euler)", "DDIM + Langevin corrector", "DDIM, η = 1 (SDE)"]
dh.show_runs({k: runs[k] for k in shown}, x0)

# %% [markdown]
# Your numbers are printed above. On notebook 03's model, which predicts your picture, they are
# all alike (every one 58.1 dB in our full run, the corrector too): its guess of $x_0$ is
# right from the first step, so there is no early error to correct. On a noise predictor,
# whose early errors are larger (the shipped model before the picture recipe; 8 samples,
# `python bench/corrector.py`), we measured: DDIM with $\eta=0$ 20.7 dB, with the corrector
# 24.5 dB in 39 calls, DDIM with $\eta = 1$ 27.3 dB in 20, SDE-DPM-Solver++ 31 dB in 20. The
# corrector closes a bit more than half of the gap between Euler on the ODE and Euler on the
# SDE, for twice the calls; SDE-DPM-Solver++ beats both. Adding the noise *inside* the step,
# as the SDE does, is the better buy there. Larger $r$ overshoots (20 dB at $r = 1$).
#
# ## 3 · A 2D world made from your picture
#
# A picture has thousands of dimensions; a point in the plane has two, and there everything
# can be drawn: the data, the noise, the score, the paths. We draw 6,000 points where your
# picture is dark, and treat each point as a "picture" of two numbers. The package runs on
# them unchanged: the same `add_noise`, `train` and `sample`.

# %%
picture = dh.my_image(64)  # the picture of notebook 01 (a cloud needs no more than 64 px)
cloud = dh.points_from_picture(picture, 6000, seed=0)
points, held_out = cloud[:4000], cloud[4000:]  # train on 4,000; judge samples by the other 2,000
dh.plot_points_dissolving(points, schedule, [0, 50, 150, 300, 600, T - 1])

# %% [markdown]
# Eq. 4 on points: the cloud shrinks by $\sqrt{\bar\alpha_t}$ and blurs by
# $\sqrt{1-\bar\alpha_t}$, until it is $\mathcal{N}(0, I)$ (the circle: 2 standard deviations).
#
# A small MLP (`dh.PointNet`, about 130 thousand numbers) learns $\varepsilon_\theta$ by
# Algorithm 1, with the same `dh.train` (under a minute):

# %%
point_net = dh.PointNet(seed=0)
point_run = dh.train(point_net, points, schedule, steps=S.point_steps, batch_size=256,
                     device="cpu", precision="fp32", seed=0)
point_net = point_run.model  # the EMA weights, as for the U-Net

# %% [markdown]
# Its score, by Tweedie's formula, as arrows over the plane. At large $t$ it points to the
# middle of everything; as $t$ falls it sharpens into your picture's lines:

# %%
dh.plot_score_field(point_net, schedule, [600, 150, 30], points=points)

# %% [markdown]
# The two equations, from the same starting points: DDPM's steps of the SDE wander (fresh
# noise at each step), the ODE's paths are smooth, and each start has one end.

# %%
sde = dh.sample(point_net, schedule, 2000, dh.Sampler("ddpm"), seed=1, every=10, progress=False)
ode = dh.sample(point_net, schedule, 2000, dh.Sampler("ddim", steps=50), seed=1, every=1,
                progress=False)
dh.plot_trajectories(sde.frames, ode.frames)

# %% [markdown]
# How close are the samples to the held-out points? The **energy distance** is 0 when two
# clouds come from the same distribution (`diffusion_helpers/metrics/distributions.py`); two
# halves of the held-out points show how far from 0 chance alone puts it.

# %%
halves = dh.energy_distance(held_out[:1000], held_out[1000:])
print(f"two halves of the held-out points: {halves:8.4f}")
print(f"reverse SDE (DDPM, {T} steps):   {dh.energy_distance(sde.images, held_out):8.4f}")
print(f"probability-flow ODE (DDIM, 50):  {dh.energy_distance(ode.images, held_out):8.4f}")

# %% [markdown]
# ### Memorisation, seen directly
#
# With only 12 training points, what is the best a network could do? The loss has an exact
# minimum, the **ideal denoiser** (`dh.ideal_denoiser`): its $\hat x_0$ is an average of the 12
# points weighted by how likely each is to have made $x_t$. Sampling with it can only give
# back the 12 points: a perfect student of this loss copies. A real network, trained on the
# same 12, lands on them too, and a little in between:

# %%
few = points[:12]
few_net = dh.PointNet(seed=0)
few_net = dh.train(few_net, few, schedule, steps=S.point_steps, batch_size=256, device="cpu",
                   precision="fp32", seed=0, progress=False).model
net_samples = dh.sample(few_net, schedule, 1000, S.sampler, seed=2, progress=False).images
ideal = dh.ideal_denoiser(few, schedule)
ideal_samples = dh.sample(ideal, schedule, 1000, S.sampler, seed=2, progress=False).images
dh.plot_memorisation(few, net_samples, ideal_samples, cloud=points)

# %% [markdown]
# That is notebook 03's model of your one picture, in two dimensions: with few pictures the
# optimum of the loss is a copying machine. New pictures come from many training pictures
# *and* a network that cannot reach that optimum (notebook 05).
#
# ## 4 · Flow matching
#
# DDPM's path from a picture to noise curves: $x_t = \sqrt{\bar\alpha_t}\,x_0 +
# \sqrt{1-\bar\alpha_t}\,\varepsilon$. **Flow matching** (Lipman et al. 2023; rectified flow,
# Liu et al. 2023) takes the straight line. Here $s$ runs from 0 (the picture) to 1 (noise),
# the direction of DDPM's $t$ and of Stable Diffusion 3 (Esser et al. 2024); Lipman et al. and
# Liu et al. run their time the other way, noise at 0 and the picture at 1 (so their velocity
# is $x_0 - \varepsilon$):
#
# $$x_s = (1 - s)\,x_0 + s\,\varepsilon, \qquad \frac{dx_s}{ds} = \varepsilon - x_0 .$$
#
# The network learns that velocity, $\|(\varepsilon - x_0) - v_\theta(x_s, s)\|^2$, and a
# sample goes from $s = 1$ back to 0 by Euler steps $x_{s'} = x_s + (s' - s)\,v_\theta$.
#
# It is closer to DDPM than it looks. $x_t$ divided by $\sqrt{\bar\alpha_t} +
# \sqrt{1-\bar\alpha_t}$ *is* a point of the straight line, the one with the same
# signal-to-noise ratio. So two choices are separate: **where each $t$ lies on the path**
# (a schedule: `dh.NoiseSchedule(T, "flow")` puts $t$ at $s = (t+1)/T$) and **what the network
# predicts** (`dh.train(..., prediction="velocity")`). The rest is the same `train` and
# `sample` (`diffusion_helpers/flow.py`). One exception in the schedule: the last $t$ would
# sit at $s = 1$, pure noise with $\bar\alpha = 0$, which DDPM's formulas divide by; so its
# beta is capped at 0.999, as in the cosine schedule, and $t = T - 1$ sits at $s = 0.99997$.
#
# ### Your turn: the flow-matching loss and one Euler step

# %%
def flow_loss(predicted_velocity, x0, noise):
    """All [B, C, H, W] -> the flow-matching loss, one number."""
    raise NotImplementedError("your turn: write flow_loss, then run the check below")


# %% jupyter={"source_hidden": true} cellView="form"
# @title Solution (in Colab: double-click to show the code)
# Solution. Running this cell replaces your flow_loss with this one.
def flow_loss(predicted_velocity, x0, noise):
    return ((predicted_velocity - (noise - x0)) ** 2).mean()  # the velocity is noise - x0


# %%
dh.exercises.check_flow_loss(flow_loss)


# %%
def euler_step(x, v, s, s_next):
    """x, v: [B, C, H, W]; s > s_next: floats -> x at s_next (one Euler step of dx/ds = v)."""
    raise NotImplementedError("your turn: write euler_step, then run the check below")


# %% jupyter={"source_hidden": true} cellView="form"
# @title Solution (in Colab: double-click to show the code)
# Solution. Running this cell replaces your euler_step with this one.
def euler_step(x, v, s, s_next):
    return x + (s_next - s) * v  # s goes down: a step against v, towards the picture


# %%
dh.exercises.check_euler_step(euler_step)

# %% [markdown]
# A flow on the points: the same net, the flow schedule, the velocity as target.

# %%
flow_schedule = dh.NoiseSchedule(T, "flow")
flow_net = dh.PointNet(seed=0)
flow = dh.train(flow_net, points, flow_schedule, steps=S.point_steps, batch_size=256,
                device="cpu", precision="fp32", seed=0, prediction="velocity")
flow_net = flow.net  # outputs the velocity v; flow.model reads it as the noise

# %% [markdown]
# Sampling it by hand with your `euler_step`, in 20 steps, and with `dh.sample`'s DDIM: a flow
# model becomes a noise predictor through $\varepsilon = x_s + (1-s)\,v$
# (`flow.model`, a `dh.NoisePredictor`). DDIM with $\eta = 0$ steps to $\sqrt{\bar\alpha'}\hat x_0 +
# \sqrt{1-\bar\alpha'}\hat\varepsilon$, which on the straight line is $(1-s')\hat x_0 +
# s'\hat\varepsilon$, and so is the Euler step: **DDIM is the Euler sampler of a flow** (Gao et
# al. 2024). The two agree up to float32 rounding, which DDIM's first step magnifies (it
# divides by $\sqrt{\bar\alpha_{T-1}} = 3 \cdot 10^{-5}$): about $10^{-3}$ here, $10^{-10}$ in
# float64 (`tests/test_flow.py`):

# %%
steps = dh.ddim_timesteps(T, 20)  # 999, ..., 0, then -1: the end, s = 0
# x_T, drawn as dh.sample draws it
start = torch.randn(2000, 2, 1, 1, generator=torch.Generator().manual_seed(1))
x = dh.to_flow(start, T - 1, flow_schedule)  # the same start on the straight line (s = 0.99997)
with torch.no_grad():
    for t, t_next in zip(steps[:-1], steps[1:]):
        s, s_next = dh.flow_time(flow_schedule, t, x), dh.flow_time(flow_schedule, t_next, x)
        x = euler_step(x, flow_net(x, torch.full((len(x),), t)), s.item(), s_next.item())
ddim = dh.sample(flow.model, flow_schedule, 2000, dh.Sampler("ddim", steps=20, clip=False),
                 seed=1, progress=False)
gap = (x.clamp(-1, 1) - ddim.images).abs().max()  # dh.sample clamps to [-1, 1]
print(f"Euler by hand vs dh.sample's DDIM: largest difference {gap:.1e}")

# %% [markdown]
# Straight paths are what the flow buys: Euler on them needs fewer steps. DDPM's model with
# Euler (DDIM) and with DPM-Solver++, against the flow with Euler, at 5 to 50 steps (same
# training steps, same starting points; lower is better):

# %%
curves = {"DDPM-trained, DDIM (Euler)": [], "DDPM-trained, DPM-Solver++": [],
          "flow matching, Euler": []}
for k in (5, 10, 20, 50):
    for name, (net, sched, sampler) in {
        "DDPM-trained, DDIM (Euler)": (point_net, schedule, dh.Sampler("ddim", steps=k)),
        "DDPM-trained, DPM-Solver++": (point_net, schedule, dh.Sampler("dpm_solver", steps=k)),
        "flow matching, Euler": (flow.model, flow_schedule,
                                 dh.Sampler("ddim", steps=k, clip=False)),
    }.items():
        drawn = dh.sample(net, sched, 2000, sampler, seed=1, progress=False).images
        curves[name].append((k, 1000 * dh.energy_distance(drawn, held_out)))
dh.plot_sampler_quality(curves, ylabel="energy distance to held-out points (x 1000)")

# %% [markdown]
# On the sample scene we measured (3,000 training steps each; two halves of the held-out
# points differ by about ±0.6 on this scale): at 10 steps DDIM on the DDPM model 18, Euler on
# the flow 7, DPM-Solver++ on the DDPM model 1; at 20 steps 4, 1.5 and 0. At
# equal Euler steps the flow wins by 2-3 times; a second-order solver on DDPM's curved path
# still does better. Rectified flow's full promise, one or two steps, needs "reflow"
# (retraining on its own straightened pairs) or distillation.
#
# ### Flow matching on your picture
#
# The same U-Net as notebook 03, trained twice for the same minutes: once as DDPM, once by
# flow matching; then each sampled in 10 steps, 10 model calls: the DDPM model with
# SDE-DPM-Solver++ (the package's fast sampler), the flow with Euler.

# %%
budget = dict(minutes=S.flow_minutes, steps=S.flow_steps, seed=0, progress=False)
# two fresh copies of 03's net, the same at the start
ddpm_run = dh.train(dh.UNet(model.config, seed=0), x0, schedule, prediction="eps", **budget)
flow_run = dh.train(dh.UNet(model.config, seed=0), x0, flow_schedule, prediction="velocity",
                    **budget)
print(f"DDPM: {ddpm_run.steps} steps; flow matching: {flow_run.steps} steps, "
      f"in {ddpm_run.elapsed:.0f} and {flow_run.elapsed:.0f} s")
sde_dpm_10 = dh.Sampler("dpm_solver", steps=10, eta=1.0)
ddim_10, euler_10 = dh.Sampler("ddim", steps=10), dh.Sampler("ddim", steps=10, clip=False)
n, draw = S.num_samples, dict(seed=0, progress=False)
on_picture = {
    "DDPM, SDE-DPM-Solver++ 10": dh.sample(ddpm_run.model, schedule, n, sde_dpm_10, **draw),
    "DDPM, DDIM 10": dh.sample(ddpm_run.model, schedule, n, ddim_10, **draw),
    "flow matching, Euler 10": dh.sample(flow_run.model, flow_schedule, n, euler_10, **draw),
}
for name, run in on_picture.items():
    print(dh.describe_run(name, run, x0))
dh.show_runs(on_picture, x0)

# %% [markdown]
# Your numbers are printed above. On the sample scene at 64 px (2 minutes each on a 2-core CPU
# without bf16, about 425 steps each; both nets see where each pixel is, as notebook 03's does)
# we measured: the flow with Euler in 10 steps 34.2 dB, the scene clean and whole; the DDPM
# model 21.7 dB with SDE-DPM-Solver++ and 12.5 dB with DDIM, blotches in noise. Early in
# training the straight path pays most. One reason is what each target asks at high noise:
# there $x_t$ is almost $\varepsilon$, so DDPM's net can score well by copying its input, while
# the velocity $\varepsilon - x_0$ makes the net say where the picture is from the first steps
# on. Notebook 03's default, the picture $x_0$ as the target, asks the same of the net and gets
# there too (about 48 dB in 566 steps on two photos, README).
#
# The DDPM model is slower to start, not stuck: trained longer, it catches up (the
# noise-predicting shipped model of earlier versions reached 31 dB after 3,000 steps). We have
# not trained the flow for longer. On many pictures the order changes: `python
# bench/flow_vs_ddpm.py` trains both on the digits, for equal minutes or equal steps, and
# scores them by the Frechet distance and a digit classifier at 1 to 50 steps; in the README's
# run (1,500 steps each) the flow was ahead only at 1 and 2 steps, and DDPM's model with
# DPM-Solver++ from 5 steps on.
#
# ## 5 · Where this leads
#
# Everything in today's image generators is a step from what you built:
#
# - **Latent diffusion** (Rombach et al. 2022, Stable Diffusion). A U-Net's work grows with the
#   pixels (notebook 03's stem was a first answer). An autoencoder, trained once, shrinks
#   each side of the picture 8 times into a "latent": SDXL's 1024 px pictures become
#   128 × 128 × 4 numbers, SD3's and Flux's 128 × 128 × 16. The diffusion model runs there.
#   The schedule, the loss and the samplers are these; only what $x_0$ is changes.
# - **Transformers instead of the U-Net** (DiT, Peebles & Xie 2023; SD3, Flux). The picture (or
#   latent) is cut into patches, the way the patch stem did, and a transformer predicts the
#   noise or the velocity. The network is swapped; the objective stays.
# - **Text as the condition.** Notebook 05 told the model a digit and used classifier-free
#   guidance; a text model's embedding of a prompt takes the label's place, and guidance works
#   the same way (with the "no class" label as the empty prompt).
# - **Flow matching and the shift.** SD3 trains a rectified flow, with its schedule shifted by
#   resolution as in notebook 02. Its code says "velocity", "sigmas" and "shift": the $v$,
#   $s$ and shift of this notebook.
#
# What stays: noise added on a fixed path, a network trained to undo it with a squared
# error, and a solver of an SDE or an ODE to go back. You have written each of them.
