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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/diffusion-tutorial/ddpm-on-your-picture/blob/main/notebooks/06_edit_and_vary.ipynb)
#
# # 6 · Edit and vary your picture
#
# A trained diffusion model does more than draw from pure noise. The reverse process can start
# from *your* picture, noised part of the way (**editing**, SDEdit); it can keep part of a
# picture and draw only the rest (**inpainting**, RePaint); and a model that only ever sees small
# pieces of one picture draws new pictures made of those pieces (**variations**).
#
# *About 5 minutes on a 2-core CPU (4 min 56 s measured), 4 of them training the model of your
# picture's pieces; it uses the models of notebooks 03 and 05, or the shipped ones.*

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
from PIL import Image, ImageDraw

import diffusion_helpers as dh

KEEP_ON_DRIVE = True  # Colab: keep your picture and models on Google Drive, where every notebook finds them
S = dh.start(KEEP_ON_DRIVE)  # the work folder, and the sizes for this machine
model, schedule, x0 = dh.load_tutorial_model(S.device)  # notebook 03's model, or the shipped one
T, SIZE = schedule.num_steps, model.config.image_size
# Edits and fills use S.sampler, SDE-DPM-Solver++ (notebook 04's choice for a model of one
# picture: it steps the reverse SDE, fresh noise at every step, where DDIM with eta = 0 follows
# the noise-free ODE): 20 steps for a whole run, so an edit at strength 0.5 takes 10. On a
# noise-predicting model of the scene (the shipped model before the picture recipe) it filled
# the centre box at 44 dB, where the ODE reached 39 dB in 50 steps (README). The one edit we
# watch uses DDPM's small steps instead (the smoothest animation).
SAMPLER = S.sampler

# %% [markdown]
# ## 1 · Editing: noise part of the way, then denoise (SDEdit)
#
# SDEdit (Meng et al. 2022) needs no new training. Take a picture $y$, noise it to a middle
# step $t_0$ in one jump (eq. 4 of notebook 02),
#
# $$x_{t_0} = \sqrt{\bar\alpha_{t_0}}\,y + \sqrt{1-\bar\alpha_{t_0}}\,\varepsilon,$$
#
# then run the reverse process of notebook 04 from $t_0$ down to 0. The **strength**,
# $t_0 / T$, decides the trade: with little noise the result stays close to $y$ (faithful);
# with much noise only $y$'s rough layout and colours survive and the model redraws the rest as
# it would draw it (realistic). At strength 1 nothing of $y$ is left: it is plain sampling.
#
# Our model learned one picture, so "realistic" means "like that picture". Here is a rough
# drawing of a few shapes, something the model never saw:

# %%
drawing = Image.new("RGB", (64, 64), (70, 70, 160))  # a blue sky
pen = ImageDraw.Draw(drawing)
pen.rectangle([0, 42, 64, 64], fill=(40, 120, 50))  # flat green ground
pen.ellipse([38, 8, 56, 26], fill=(250, 220, 60))  # a sun, on the right this time
pen.rectangle([10, 30, 24, 44], fill=(200, 40, 40))  # a red box: a house?
rough = dh.load_image(drawing, size=SIZE, channels=x0.shape[1])
dh.show_images(torch.cat([x0, rough]), titles=["what the model learned", "a rough drawing"],
               size=2.5)

# %% [markdown]
# SDEdit in code: noise the drawing to $t_0$ with eq. 4, then run the sampler's steps from
# $t_0$ (the package's own loop, `dh.reverse_process`). `dh.edit` is these three lines, plus
# checks; same seed, same picture:

# %%
g = torch.Generator().manual_seed(0)
t0 = round(0.3 * schedule.num_steps) - 1  # strength 0.3
x_t0, _ = dh.add_noise(rough.to(S.device), t0, schedule, generator=g)  # eq. 4, one jump
steps = SAMPLER.timesteps(schedule, start=t0)  # from t0 down to the clean picture
by_hand = dh.reverse_process(model, schedule, x_t0, steps, SAMPLER, generator=g, progress=False)
package = dh.edit(model, schedule, rough, 0.3, SAMPLER, seed=0, progress=False)
print(f"largest difference from dh.edit: {(by_hand.images - package.images).abs().max():.1e}")

# %%
STRENGTHS = [0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0]
edits = torch.cat([dh.edit(model, schedule, rough, s, SAMPLER, seed=0, progress=False).images
                   for s in STRENGTHS])
titles = ["drawing"] + [f"strength {s:g}" for s in STRENGTHS]
dh.show_images(torch.cat([rough, edits]), titles=titles, ncols=6)

# %% [markdown]
# How faithful, how realistic? PSNR (notebook 04) of each edit against the drawing, and
# against the picture the model learned:

# %%
dh.plot_edit_trade(STRENGTHS, edits, rough, x0)

# %% [markdown]
# Where the two lines cross, the edit stops being more the drawing than the picture. With a
# model of one picture that predicts the picture (notebook 03's, or the shipped one) they may
# not cross at all: in our full run every strength, even 0.02, gave the learned picture at
# 58 dB. Such a model has learned that the answer is its picture whatever it is shown, the
# ideal denoiser of a one-picture world (notebook 05: $\mathbb{E}[x_0 \mid x_t] = x_0$), so
# it redraws any drawing as that picture. A model that is less sure leaves room: the
# noise-predicting 4-minute model of earlier versions kept the drawing up to about 0.1 and
# crossed near 0.35. A model of many pictures has more to offer (the digits below).
#
# ### Watch one edit
#
# The reverse process from $t_0 = 0.3\,T$ (DDPM, one small step at a time): top, $x_t$;
# bottom, the model's guess of the final picture at each step. Watch your sun fade and the
# learned one appear.

# %%
one_edit = dh.edit(model, schedule, rough, 0.3, dh.Sampler("ddpm"), seed=0, every=3,
                   progress=False)
HTML(dh.animation_html(one_edit.frames))

# %% [markdown]
# ### A scribble becomes a digit
#
# A model of many pictures has more to offer than one picture. Notebook 05 trained one on
# handwritten digits, **conditional** on the class (it can be told which digit to draw). If
# its checkpoint is in the work folder we use it; otherwise the one shipped with the package.

# %%
# notebook 05's digits model, or the shipped one
digit_model, digit_schedule, _ = dh.load_digits_model(S.device)
cfg = digit_model.config
digits = dh.load_dataset("digits", cfg.image_size, cfg.image_channels)  # at the model's size
CONDITIONAL = cfg.num_classes is not None
DIGIT_LABELS = torch.arange(10) if CONDITIONAL else None  # one of each digit, if it can be told
print(digits.describe(), "| conditional model" if CONDITIONAL else "| unconditional model")

# %% [markdown]
# Draw a scribble (two strokes, roughly a 7) and edit it at strength 0.6, first with no class,
# then asking for each digit 0 to 9 in turn (classifier-free guidance, notebook 05):

# %%
canvas = Image.new("L", (64, 64), 0)  # black, like the digits
ImageDraw.Draw(canvas).line([(18, 14), (46, 14), (30, 54)], fill=255, width=7)
scribble = dh.load_image(canvas, size=digits.images.shape[-1], channels=digits.images.shape[1])
free = dh.edit(digit_model, digit_schedule, scribble.repeat(4, 1, 1, 1), 0.6, SAMPLER, seed=1,
               progress=False)
asked = dh.edit(digit_model, digit_schedule, scribble.repeat(10, 1, 1, 1), 0.6, SAMPLER, seed=1,
                progress=False, labels=DIGIT_LABELS)
titles = ["scribble"] + ["no class"] * 4
titles += [f"asked: {k}" if CONDITIONAL else "no class" for k in range(10)]
dh.show_images(torch.cat([scribble, free.images, asked.images]), titles=titles, ncols=5, size=1.6)

# %% [markdown]
# With no class, the model keeps roughly the stroke's place and thickness and draws a digit of
# its own choosing around it (a 7 or a 9 that shares its top bar, or another). Told a class, it
# bends the same stroke into the digit you asked for: at 0.6 enough noise is added for a 7 to
# become a 0.

# %% [markdown]
# ## 2 · Inpainting: keep part of the picture, fill the rest (RePaint)
#
# RePaint (Lugmayr et al. 2022) runs the reverse process from pure noise, and after every step
# replaces the part you keep (mask $m = 1$) by your picture noised to that step:
#
# $$x_{t-1} = m \odot \big(\sqrt{\bar\alpha_{t-1}}\,y + \sqrt{1-\bar\alpha_{t-1}}\,\varepsilon\big)
# + (1 - m) \odot x_{t-1}^{\text{model}}.$$
#
# So the model only ever draws the missing part, always beside the right amount of noise on the
# rest. RePaint also goes back a few steps now and then (adds noise again) and redoes them, so
# that the filled part has time to agree with what is kept (**resampling**). Here it is off
# (`resample=1`, the default): with DDPM's 1000 steps it gained nothing on the earlier,
# noise-predicting shipped model, and SDE-DPM-Solver++ already adds fresh noise at every step
# (notebook 07 explains why that corrects errors). For an ODE sampler such as DDIM it helps:
# `dh.inpaint(..., resample=4)`, at 4 times the cost (the figures are in
# `diffusion_helpers/editing.py`).
#
# Choose what to rub out: a preset from the menu, or `rectangle` and the sliders. Then run the
# next cell (running all cells unattended uses the centre box).

# %%
picker = dh.MaskPicker(x0)
picker

# %%
chosen = picker.mask()
presets = [dh.mask_preset(name, SIZE, seed=0) for name in ("left_half", "strokes")]
all_masks = torch.cat([chosen] + presets)
n = len(all_masks)
filled = dh.inpaint(model, schedule, x0.repeat(n, 1, 1, 1), all_masks, SAMPLER, seed=0,
                    progress=False)
scores = dh.psnr(filled.images, x0, mask=all_masks)
given = dh.masked(x0.repeat(n, 1, 1, 1), all_masks)
titles = ["given"] * n + [f"filled: {s:.1f} dB" for s in scores]
dh.show_images(torch.cat([given, filled.images]), titles=titles, ncols=n, size=2.5)

# %% [markdown]
# The model has learned this picture, so it restores the missing part from memory (the titles
# give the PSNR of the filled pixels only; above 30 dB they are hard to tell from the
# original). The shipped model fills the centre box at about 64 dB: it has the picture by
# heart.
#
# The digits model learned many digits, not these ones by heart. Give it the top half of ten
# real digits and let it draw the bottom half, first freely, then told the right class:

# %%
real, real_labels = dh.pick_per_class(digits.images, digits.labels, 1, seed=0)  # one of each digit
bottom = dh.mask_preset("bottom_half", real.shape[-1])
guess = dh.inpaint(digit_model, digit_schedule, real, bottom, SAMPLER, seed=2, progress=False)
told = dh.inpaint(digit_model, digit_schedule, real, bottom, SAMPLER, seed=2, progress=False,
                  labels=real_labels if CONDITIONAL else None)
titles = [f"real {int(y)}" for y in real_labels] + ["given"] * 10 + ["free"] * 10 + ["told"] * 10
rows = torch.cat([real, dh.masked(real, bottom), guess.images, told.images])
dh.show_images(rows, titles=titles, ncols=10, size=1.2)

# %% [markdown]
# ## 3 · Variations: a model of your picture's pieces
#
# Trained on the whole picture, the U-Net memorises it: every sample is the picture. Two
# changes make it draw *new* pictures that look like yours (the idea of SinDDM, Kulikov et al.
# 2023, and SinFusion, Nikankin et al. 2023):
#
# 1. it trains on **random crops** of the picture, half its side;
# 2. it has a small **receptive field**: no attention and only one downsampling, so each output
#    pixel depends only on a window of the input (37 × 37 px of a 48 px picture), not on the
#    whole picture; and in training, beyond the 24 px crop there is nothing to see.
#
# It learns what the pieces of your picture look like, but not where they go. Run the reverse
# process on a canvas and every window of the result looks like some part of your picture,
# while the whole is a new arrangement, at any size you like.

# %%
VARY_SIZE = S.vary_size  # the picture's side (48 px: about 4 minutes on a CPU)
CROP = VARY_SIZE // 2  # the side of the crops
picture = dh.my_image(size=VARY_SIZE)
crops = dh.RandomCrops(picture, CROP)
dh.show_images(torch.stack([crops[i] for i in range(8)]),
               titles=[f"crop at {crops.where(i)[:2]}" for i in range(8)], ncols=8, size=1.4)

# %%
patch_net = dh.patch_model(CROP, picture.shape[1], seed=0)
print(f"{patch_net.num_parameters() / 1e6:.2f} M parameters; each output pixel sees a "
      f"{dh.receptive_field(patch_net)} x {dh.receptive_field(patch_net)} px window "
      f"of a {VARY_SIZE} px picture")

# %% [markdown]
# Training is Algorithm 1 again, on the crops: `dh.train` draws crop indices as it drew
# pictures. On a CPU, 4 minutes give rough but recognisable variations; longer is better.

# %%
variations = dh.train_variations(picture, schedule, model=patch_net, seed=0, device=S.device,
                                 steps=S.vary_steps, minutes=S.vary_minutes)
dh.plot_losses(variations.losses)

# %% [markdown]
# Samples on a canvas the size of your picture, and on one twice as wide and tall. The sampler
# (`S.vary_sampler`) is DDIM with $\eta = 1$ in 100 steps, a tenth of DDPM's: like DDPM it adds
# fresh noise at every step (notebook 04; on a noise-predicting model of one picture, DDIM with
# $\eta = 1$ in 50 steps gave 29 dB against DDPM's 31 dB in 1000, README):

# %%
same = dh.sample_variations(variations.model, schedule, 4, VARY_SIZE, S.vary_sampler, seed=1,
                            progress=False)
wide = dh.sample_variations(variations.model, schedule, 2, 2 * VARY_SIZE, S.vary_sampler, seed=2,
                            progress=False)
dh.show_images(torch.cat([picture, same.images]), titles=["your picture"] + ["variation"] * 4,
               ncols=5, size=2.2)

# %%
dh.show_images(wide.images, titles=[f"{2 * VARY_SIZE} x {2 * VARY_SIZE} px"] * 2, ncols=2, size=4)

# %% [markdown]
# ### Is it a copy?
#
# Three numbers (`diffusion_helpers/metrics/copying.py`):
#
# - **copy PSNR**: the best PSNR of the picture (and its mirror image, shifted by up to 4 px)
#   against each sample. How high a copy scores depends on how sharp it is: the samples of
#   notebook 03's 4-minute model scored about 58 dB in our full run, the shipped model's about
#   65 dB, the noise-predicting models of earlier versions 22-38 dB; the variations of the five
#   pictures of `bench/vary_quality.py` scored about 10-19 dB (README). So read it against the
#   memorised model's line printed below: well under it, not a copy.
# - **patch distance**: for every 7 × 7 piece of a sample, how far the nearest piece of your
#   picture is (RMS, in pixel values from -1 to 1). Beside it, the same for parts of your
#   picture that were held out: a new part of the same picture. Near it: the same look.
# - **spread**: how different two samples are from each other (0: all the same).
#
# For contrast, two samples of the memorised model of notebook 03 (at its own size, against
# its own picture):

# %%
memorised = dh.sample(model, schedule, 2, S.vary_sampler, seed=3, progress=False).images
print(f"memorised model:  copy PSNR {dh.copy_psnr(memorised, x0).max():5.1f} dB")
print(f"variations:       copy PSNR {dh.copy_psnr(same.images, picture).max():5.1f} dB "
      "(the most copy-like of 4)")
print(f"patch distance:   {dh.patch_distance(same.images, picture).mean():.3f} "
      f"(held-out parts of your picture: {dh.held_out_patch_distance(picture):.3f})")
print(f"spread:           {dh.sample_spread(same.images):.3f}")

# %% [markdown]
# What a few CPU minutes give (`bench/vary_quality.py` trains on five pictures, 1,500 steps
# each; README): the pieces are the picture's own, put together anew (on the sample scene:
# houses with lit doors, hills, sky bands). Shapes are where it falls short: on the scene the
# sun comes out as yellow blobs of any size, and edges are soft. Textures (stones, tiles,
# foliage) come out best.
#
# ## What you have seen
#
# The same trained network, started from something other than pure noise, edits (SDEdit) and
# fills in (RePaint); told a class, it steers towards it. And what a network can see decides
# what it learns: the whole picture gives a copy, windows of it give variations.
#
# Try: your own drawing in the first cell (any shapes and colours); smaller crops (`CROP = 16`)
# for busier variations, larger ones (`CROP = 32`) for more of your layout (and more copying:
# watch the copy PSNR); `flip=True` in `train_variations` for mirrored pieces.
#
# **Next:** [07 · Beyond DDPM](07_beyond_ddpm.ipynb): the score inside your model, the SDE and
# the ODE every sampler solves, a 2D world made from your picture, and flow matching.
