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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/diffusion-tutorial/ddpm-on-your-picture/blob/main/notebooks/01_your_image.ipynb)
#
# # 1 · Your image
#
# This tutorial teaches **denoising diffusion** (DDPM, Ho et al. 2020) by doing it on a picture
# of your choice. In seven short notebooks you will
#
# 1. **pick a picture** and turn it into numbers (this notebook);
# 2. **destroy it with noise**, step by step ([02](02_forward_noising.ipynb));
# 3. **train a small U-Net** to predict that noise ([03](03_training_the_unet.ipynb));
# 4. **run the process backwards** and watch your picture come out of pure noise ([04](04_reverse_sampling.ipynb));
# 5. **draw new pictures** from a dataset, and ask for a class ([05](05_new_pictures.ipynb));
# 6. **edit, fill in and vary** your picture with the same model ([06](06_edit_and_vary.ipynb));
# 7. **go beyond DDPM**: the score, the SDE and the ODE, and flow matching ([07](07_beyond_ddpm.ipynb)).
#
# Press *Run all* first. Locally nothing waits for you: a bundled sample picture stands in for
# yours. In Colab the cell that picks the picture (below) opens Colab's file dialog and waits
# there: choose a photo, or press *Cancel upload* to go on with the sample. Then come back and
# try your own photo.
#
# *This notebook takes seconds. All seven took 27.5 minutes on a 2-core CPU without bf16, run
# in order (each notebook says its own time at its top; the README has the table): most of it
# is training for fixed minutes (4 in notebook 03) and sampling. Your first generated picture
# comes about 2.5 minutes in, early in notebook 03. On a GPU runtime the series has not been
# timed; its training cells run for the same minutes by the clock there, about 14 in all, so
# expect at least a quarter of an hour (an estimate).*

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

KEEP_ON_DRIVE = True  # Colab: keep your picture and models on Google Drive, where every notebook finds them
S = dh.start(KEEP_ON_DRIVE)  # the work folder, and the sizes for this machine

# %% [markdown]
# ## Pick a picture
#
# Three ways, use whichever suits you:
#
# - **In Colab, its own file dialog** (the default there): the cell below opens it and waits;
#   choose a photo, or press *Cancel upload* to keep your picture from before (the first time,
#   the sample). It takes phone photos of any size.
# - **The upload button** (Jupyter, VS Code; in Colab with `COLAB_DIALOG = False`): click it,
#   choose a photo, then re-run the cell below it. (In Colab the button drops files over about
#   1 MB, most phone photos: the dialog does not.)
# - **A path**: set `IMAGE_PATH = "my_photo.jpg"` in the cell below
#   (`IMAGE_PATH = dh.sample_image_path()` goes back to the sample).
#
# Nearly anything works: phone photos (rotated the right way up), screenshots with
# transparency, 16-bit PNGs, GIFs. HEIC photos from an iPhone need converting first; the
# message will say how.

# %%
uploader = dh.upload_widget()
uploader

# %% Re-run this cell after uploading.
IMAGE_PATH = None  # e.g. "my_photo.jpg"
COLAB_DIALOG = True  # in Colab, open its file dialog (it waits for you); False: the button

picture, info = dh.choose_my_image(uploader, path=IMAGE_PATH, dialog=COLAB_DIALOG)
dh.show_images(picture, titles=[info.name])

# %% [markdown]
# ## From pixels to numbers in [-1, 1]
#
# A colour picture is three grids of numbers (red, green, blue), each pixel value $p$ in
# 0-255. DDPM scales them linearly to $[-1, 1]$ (Ho et al. 2020, section 3.3):
#
# $$x = \frac{2\,p}{255} - 1 \in [-1, 1].$$
#
# Why this range: the reverse process starts from pure noise, $x_T \sim \mathcal{N}(0, I)$,
# values centred on 0 with a spread (standard deviation) of 1, and every picture in between is a
# mix of your picture and such noise. On $[-1, 1]$ the picture has the same scale as that noise,
# so the network always sees inputs of about the same size, from the first step to the last.
# Raw values 0-255 would be a hundred times larger than the noise.
#
# The model sees a small square version of your picture: cropped to the centre and shrunk, to
# 64 × 64 pixels on a CPU (measured: 4 minutes of training bring it back recognisable, a little
# soft) and 128 × 128 on a GPU (an estimate of what a GPU can learn in the same 4 minutes with
# a larger network: not yet measured on a GPU). That is the size your pictures come back at
# in notebooks 04-07. Small pictures make training take minutes instead of hours; the ideas are
# the same at any size (`dh.settings(size=128)` asks for another, with the time it will take).

# %%
image = dh.load_image(dh.to_pil(picture), size=S.image_size)
print(f"On this machine the model trains at {S.image_size} x {S.image_size} px: the size your samples come back at.")
print(f"tensor shape {tuple(image.shape)} = [batch, channels, height, width]")
print(f"values from {image.min():.2f} to {image.max():.2f}, mean {image.mean():.2f}")
dh.plot_pixel_values(image)

# %% [markdown]
# Each bar counts how many pixel values of that colour fall in that range. Pure black is -1,
# pure white is +1.
#
# Your picture is saved in the work folder (`outputs/`), so the next notebooks use it even when
# you run them on their own. Next: **02_forward_noising**.
