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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/diffusion-tutorial/ddpm-on-your-picture/blob/main/notebooks/05_new_pictures.ipynb)
#
# # 5 · New pictures, not copies
#
# Trained on your one picture, the model of notebooks 03 and 04 could only give it back. Here
# the same code learns from 1,797 handwritten digits and draws digits that nobody wrote. We
# check that they really are new, ask for a digit of our choice (classifier-free guidance),
# and measure how good and how varied the pictures are.
#
# *About 5 minutes on a 2-core CPU (5 min 8 s measured), 4 of them training on the digits;
# nothing is downloaded unless you ask for it at the end.*

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
import torch.nn.functional as F
from IPython.display import HTML, display

import diffusion_helpers as dh

KEEP_ON_DRIVE = True  # Colab: keep your picture and models on Google Drive, where every notebook finds them
S = dh.start(KEEP_ON_DRIVE, datasets=True)  # the work folder, and the sizes for this machine
schedule = S.schedule()
# S.sampler is DPM-Solver++ in 20 steps (notebook 04): on a digits model, 500 of its samples
# scored as well as DDIM's in 50 steps on the scores this notebook introduces further down
# (README, bench/sample_speed.py --digits), for 2.5 times fewer model calls.
SAMPLER = S.sampler

# %% [markdown]
# ## Why the one-picture model only copies
#
# Training minimises $\lVert \varepsilon - \varepsilon_\theta(x_t, t) \rVert^2$. The best any
# model can do is to predict the *average* noise that could have produced $x_t$. Written with
# the picture instead of the noise (eq. 4 solved for $\varepsilon$), that best prediction is
#
# $$\varepsilon^*(x_t, t) = \frac{x_t - \sqrt{\bar\alpha_t}\;\mathbb{E}[x_0 \mid x_t]}
# {\sqrt{1-\bar\alpha_t}},$$
#
# where $\mathbb{E}[x_0 \mid x_t]$, "the expected $x_0$ given $x_t$", is the average of the
# training pictures, each weighted by how likely it is to have been noised into this $x_t$.
#
# With **one** training picture, $\mathbb{E}[x_0 \mid x_t] = x_0$ whatever $x_t$ is: the best
# model points every noisy picture at yours, and sampling lands on it. Perfect training means
# perfect copying. With **many** pictures, $\mathbb{E}[x_0 \mid x_t]$ is a blur of many at large
# $t$, close to one near $t = 0$. A perfect model of a *finite* set would still end on a
# training picture; a small network trained for minutes cannot store 1,797 of them and learns
# smoother rules ("strokes", "loops"), which is what lets it draw new ones. So we check.
#
# **The copying check.** For each sample, find the nearest training picture (the Euclidean
# distance $d$ between pixel values). One number sums it up, the memorisation ratio
#
# $$\text{ratio} = \frac{\operatorname{median}_i\,
#   d(\text{sample}_i, \text{nearest training picture})}
# {\operatorname{median}_j\,
#   d(\text{training picture}_j, \text{nearest other training picture})}:$$
#
# about 1 when samples are as far from the training set as its pictures are from each other
# (new pictures), about 0 for copies.
#
# The one-picture model first (notebook 03's, or the shipped one). Its training set has only
# one picture, so we compare with it and its neighbours: the picture shifted by 1-2 pixels and
# mirrored, the nearest pictures that are *not* copies.

# %%
one_model, one_schedule, x0 = dh.load_tutorial_model(S.device)
one = dh.sample(one_model, one_schedule, n=8, method="ddim", steps=S.ddim_steps, eta=1.0, seed=0)
variants = dh.picture_variants(x0)  # x0, its mirror, and both shifted by up to 2 px
shift_d = dh.nearest_neighbours(x0, variants[1:])[0].item()  # x0 to its nearest neighbour
one_ratio = dh.memorisation_ratio(one.images, variants)
print(f"your picture moved by one pixel is d = {shift_d:.1f} away from it")
print(f"one-picture model: memorisation ratio {one_ratio:.2f} (0 = copies, 1 = new pictures)")
dh.plot_nearest_neighbours(one.images, variants)

# %% [markdown]
# Every sample is your picture again: it lies far closer to the picture than the picture
# moved by one pixel does (the distance printed first), so the ratio is near 0, the value of a
# perfect copy. Run without notebook 03's model, this cell uses the shipped one and prints
# 0.01. The nearest neighbour of every sample is the picture itself. Now a dataset.
#
# ## A dataset: 1,797 handwritten digits
#
# scikit-learn ships 1,797 small digits, so nothing needs downloading: UCI's optical
# recognition digits (1998), handwritten by 43 people on NIST's forms, scanned as 32×32
# bitmaps and then counted in 4×4 blocks, so each pixel of the 8×8 result is a count from 0 to
# 16. `load_dataset` pads each with a black border and blows it up to our size (16 px on a
# CPU), white ink on black, like MNIST; the soft edges come from that enlargement. Each comes
# with its label, the digit it shows.

# %%
data = dh.load_dataset("digits", S.image_size)
print(data.describe())
dh.plot_class_rows(data.images, data.labels, data.classes, size=0.6)

# %% [markdown]
# ## A U-Net that knows which digit it draws
#
# The network gets a third input, the class $y$: $\varepsilon_\theta(x_t, t, y)$. A learned
# vector per class is added to the timestep's vector, so every residual block knows both how
# much noise to expect and which digit it is looking at. There is an eleventh "no class"
# label $\varnothing$: in training, 10% of the pictures (`cond_drop`) get it instead of their
# own, so the same network also learns $\varepsilon_\theta(x_t, t, \varnothing)$, the noise of
# a digit of any class. Algorithm 1 is otherwise unchanged: draw $(x_0, y)$, $t$, $\varepsilon$,
# and step on $\lVert \varepsilon - \varepsilon_\theta(x_t, t, y) \rVert^2$.
#
# Training runs for `S.train_minutes` minutes (4 on a CPU at 16 px, 2 on a GPU at 32 px).
# Interrupt the kernel to stop early: the model keeps what it learned. It is saved as
# `digits.pt` in the work folder, where notebook 06 finds it.

# %%
model = S.model(1, num_classes=len(data.classes))
result = dh.train(model, data, schedule, minutes=S.train_minutes, steps=S.train_steps,
                  device=S.device, seed=0,
                  checkpoint=dh.fresh_checkpoint_path("digits.pt"))  # notebook 06 uses it too
model = result.model  # the EMA weights (notebook 03)
passes = result.steps * result.config.batch_size / len(data)
print(f"{result.steps} steps in {result.elapsed:.0f} s: each digit seen about {passes:.0f} times")

# %%
dh.plot_losses(result.losses)

# %% [markdown]
# The loss levels off higher than with one picture: a noisy $x_t$ could have come from many
# digits, and the network can only predict their average noise. That is the point.
#
# ## Ask for a digit: classifier-free guidance
#
# At every step the sampler asks the network twice, with the class and with "no class", and
# combines the answers (Ho & Salimans 2022):
#
# $$\tilde\varepsilon = \varepsilon_\theta(x_t, t, \varnothing)
#   + w\,\big(\varepsilon_\theta(x_t, t, y) - \varepsilon_\theta(x_t, t, \varnothing)\big).$$
#
# The bracket is the direction "more like a $y$". With $w = 1$ it is the plain conditional
# model; $w > 1$ pushes further along it; $w = 0$ drops it. (Ho & Salimans write the same
# formula with their $w$ one less than ours, $(1 + w)\,\varepsilon_\theta(x_t, t, y) -
# w\,\varepsilon_\theta(x_t, t, \varnothing)$: their best FID, at $w$ = 0.1 to 0.3, is our 1.1
# to 1.3.) In code, for one step, beside the package's `dh.guidance.guided_noise`:

# %%
x_t, t = torch.randn(2, 1, S.image_size, S.image_size), torch.tensor([500, 500])
seven, nothing = torch.tensor([7, 7]), torch.full((2,), len(data.classes))  # "no class"
w = 1.5
with torch.no_grad():
    eps_y, eps_none = model(x_t, t, seven), model(x_t, t, nothing)
    guided = eps_none + w * (eps_y - eps_none)  # the formula above
    package = dh.guidance.guided_noise(model, x_t, t, seven, nothing, w)
print(f"largest difference from the package: {(guided - package).abs().max():.1e}")

# %% [markdown]
# The package asks the network once, for a batch holding both halves. `dh.sample(...,
# labels=y, guidance_scale=w)` does this at every step. One row per digit, at the package's
# default $w$ (`DEFAULT_GUIDANCE`; how it was chosen comes below):

# %%
PER_CLASS = S.per_class  # samples of each digit
labels = dh.class_labels(len(data.classes), PER_CLASS)  # 0, 0, ..., 1, 1, ..., 9
samples = dh.sample(model, schedule, n=len(labels), labels=labels, seed=0, sampler=SAMPLER).images
dh.plot_class_rows(samples, labels, data.classes, size=0.6)

# %% [markdown]
# ## New digits, or copies?
#
# The same check as for the one-picture model, now against all 1,797 training digits. Look
# for pairs that are the same picture: there should be none.

# %%
ratio = dh.memorisation_ratio(samples, data.images)
print(f"memorisation ratio: digits model {ratio:.2f}, one-picture model {one_ratio:.2f}")
dh.plot_nearest_neighbours(samples[::PER_CLASS], data.images)  # one per digit, 0 to 7

# %% [markdown]
# A ratio near 1 (or above: samples a little off the real digits also sit far from them) and
# neighbours that differ stroke by stroke: the model draws new digits (the README's 4-minute
# run of `bench/dataset_quality.py` measured 1.13 on 500 samples at the default guidance). The
# one-picture model scored well below 1, and its neighbour was always the one picture.
#
# ## No class at all: w = 0
#
# With $w = 0$ the formula leaves only $\varepsilon_\theta(x_t, t, \varnothing)$: the label
# never reaches the network, so asking for a 7 gives the same pictures as asking for nothing
# (`labels=None`, which uses the "no class" label). The network learned this mode from only
# 10% of its training pictures, and it must choose the digit by itself along the way:
# expect fewer clean digits than with a class.

# %%
free = dh.sample(model, schedule, n=len(labels), seed=1, sampler=SAMPLER).images  # no labels
sevens = dh.sample(model, schedule, n=len(labels), labels=7, guidance_scale=0.0, seed=1,
                   sampler=SAMPLER).images
print("labels=7 with w = 0 gives the same pictures as no labels:", torch.equal(free, sevens))
dh.show_images(free[:20], ncols=10, size=0.8)

# %% [markdown]
# ## Try it: pick a digit and a guidance weight
#
# Each change draws 8 new pictures from the same noise, so you see what the change does;
# "new noise" draws others. DPM-Solver++ (20 steps) and DDIM (50 steps) answer in a second or
# two on a CPU. Try $w = 0$ (the class is ignored), $w = 1$, and $w = 7$.

# %%
dh.class_sampler(model, schedule, data.classes)

# %% [markdown]
# ## How strong should guidance be?
#
# To score many pictures we need a judge. A small classifier (three convolutions, trained in
# seconds on the real digits; `dh.train_classifier`) tells which digit a picture shows. With
# it, three scores:
#
# - **accuracy**: how often it reads the digit we asked for;
# - **diversity**: the mean pixel distance between two samples of the same digit (the real
#   digits' value is the dashed line). Copies of one picture would score 0;
# - the **Fréchet distance** (FD): quality and variety of the whole set in one number.
#
# The FD is the idea of the Fréchet Inception Distance (FID; Heusel et al. 2017). It compares
# two sets of pictures through a network's features: fit a Gaussian to the features of each
# set, the real ones ($r$) and the generated ones ($g$), with mean $\mu$ and covariance
# $\Sigma$, and measure
#
# $$\mathrm{FD} = \lVert \mu_r - \mu_g \rVert^2
#   + \operatorname{Tr}\big(\Sigma_r + \Sigma_g - 2\,(\Sigma_r \Sigma_g)^{1/2}\big).$$
#
# Pictures that look wrong move the mean; too little variety shrinks the covariance; both
# raise FD, and 0 means the same statistics: lower is better. Real FID uses the Inception-v3
# network and 50,000 pictures; we use the small classifier's 64 features and a few hundred
# pictures, so the numbers only compare with each other, at equal counts (FD of few pictures
# is biased upwards: two sets of real digits score above 0).
#
# Same starting noise in every row, only $w$ changes:

# %%
classifier = dh.train_classifier(data.images, data.labels, steps=S.classifier_steps, seed=0)
print(f"classifier: {classifier.held_out_accuracy:.0%} right on digits it did not train on")
real_features = dh.features(classifier, data.images)
real_diversity = dh.within_class_diversity(data.images, data.labels)
sweep = dh.guidance_sweep(model, schedule, classifier, per_class=S.sweep_per_class,
                          reference_features=real_features, sampler=SAMPLER)
print(dh.guidance_table(sweep, real_diversity))
dh.plot_guidance_sweep(sweep, data.classes, real_diversity)

# %% [markdown]
# Guidance buys the right digit, and pays for it. At $w = 0$ the classifier reads the
# asked-for digit only by chance (10%), at $w = 1$ most of the time, above that almost always,
# while the digits of one class grow more alike and their strokes thicker and brighter. The
# Fréchet column shows the price: beyond a small $w$ it grows quickly, because guidance makes
# each class look more alike than real digits do. (In our full run on a CPU without bf16,
# 862 training steps: FD 68 at $w = 1$, 58 at 1.5, 206 at 3; with so few pictures per class
# the FD is rough, so compare rows, not runs.)
#
# The package's default, $w = 1.5$ (`DEFAULT_GUIDANCE` in `diffusion_helpers/guidance.py`),
# was picked from this trade, measured on 500 samples of a model trained for 4 minutes on a
# CPU with bf16 (1,653 steps; README): 98% of its digits are the one asked for, against 91% at
# $w = 1$, and the digits of one class vary about as much as real ones (diversity 4.3 against
# the real 4.5; 4.8 at $w = 1$, 3.7 at $w = 3$). On that better-trained model the FD is what
# it gives up, and that is not little: about 36 at $w = 1.5$ against about 13 at $w = 1$ (72 at
# $w = 2$). The default puts the asked-for digit first; when the set of pictures should look
# like the data as a whole, a well-trained model at $w = 1$ is the better choice.
#
# ## Watch a digit appear
#
# The reverse process of one sample per digit, $x_t$ on top and the predicted $\hat x_0$
# below (DDIM, so every frame is one step). The digit is decided early, its strokes late.

# %%
run = dh.sample(model, schedule, n=len(data.classes), labels=torch.arange(len(data.classes)),
                method="ddim", steps=S.ddim_steps, every=1, seed=2)
HTML(dh.animation_html(run.frames, scale=4))

# %% [markdown]
# ## What the Fréchet distance misses: copies
#
# A model that returns its training pictures scores as well as real digits: FD sees only
# statistics, not copying; that is why the memorisation ratio goes with it. Each row below is
# a set of pictures with its FD against all real digits and its ratio:

# %%
per = len(sweep[0].images) // len(data.classes)  # as many of each digit as the sweep drew
real, _ = dh.pick_per_class(data.images, data.labels, per, seed=0)
sets = {
    "real digits\n(= a copier)": real,
    "real, blurred": F.avg_pool2d(real, 3, stride=1, padding=1, count_include_pad=False),
    "real, only 1s": data.images[data.labels == 1][: len(real)],
    **{f"samples w = {r.scale:g}": r.images for r in sweep},
}
dh.plot_frechet_sets(sets, classifier, real_features, data.images)  # FD and ratio of each set

# %% [markdown]
# The copier has the best FD (what this many pictures can reach at best) and a ratio of 0:
# only the two numbers together tell a good *generator*. Blurring (quality) and a single class
# (no variety) both cost FD; so does strong guidance, through both.
#
# ## Your own folder of pictures
#
# `load_dataset` takes a folder: with one subfolder per class (`cats/`, `dogs/`, ...) the
# model learns the classes, with pictures only it learns unconditionally. A few hundred
# pictures of one kind (faces, leaves, your drawings) at 16 or 32 px are a good start; more
# training helps more than anything else. In Colab, upload a `.zip` in the file browser (the
# folder icon on the left) and unzip it with `!unzip -q my_pictures.zip`.

# %%
MY_FOLDER = None  # e.g. "my_pictures": one subfolder per class, or just pictures

if MY_FOLDER is None:
    print("Skipped: set MY_FOLDER to a folder of pictures and run this cell again.")
else:
    mine = dh.load_dataset(MY_FOLDER, S.image_size)
    print(mine.describe())
    mine_model = S.model(mine.images.shape[1], num_classes=len(mine.classes) or None)
    mine_model = dh.train(mine_model, mine, schedule, minutes=S.train_minutes,
                          steps=S.train_steps, device=S.device, seed=0).model
    mine_samples = dh.sample(mine_model, schedule, n=16, seed=0, sampler=SAMPLER).images
    print(f"memorisation ratio {dh.memorisation_ratio(mine_samples, mine.images):.2f}")
    display(dh.plot_nearest_neighbours(mine_samples, mine.images))

# %% [markdown]
# ## Bigger datasets: MNIST, Fashion-MNIST, CIFAR-10 (online, e.g. in Colab)
#
# torchvision downloads these, and we train on their training splits: MNIST's 60,000 digits,
# Fashion-MNIST's 60,000 pictures of clothes, CIFAR-10's 50,000 small colour photos in 10
# classes (the downloads are about 12, 30 and 170 MB). Nothing is downloaded unless you set
# `USE_BIG_DATASET = True` (in Colab, or on any machine that is online); then the download and
# another 4 minutes of training run here. CIFAR-10's
# photos are much harder than digits: expect colourful blobs from a few minutes of training,
# recognisable shapes only after an hour on a GPU.

# %%
USE_BIG_DATASET = False  # True: download it (needs the internet, e.g. Colab) and train on it
BIG_DATASET = "fashion_mnist"  # or "mnist", "cifar10"

big = None
if not USE_BIG_DATASET:
    print("Skipped: set USE_BIG_DATASET = True to download a bigger dataset and train on it.")
else:
    try:
        big = dh.load_dataset(BIG_DATASET, S.image_size, download=True)
        print(big.describe())
    except ValueError as err:  # offline, or a damaged download: the message says what to do
        print(err)

# %%
if big is not None:
    big_model = S.model(big.images.shape[1], num_classes=len(big.classes))
    big_model = dh.train(big_model, big, schedule, minutes=S.train_minutes,
                         steps=S.train_steps, device=S.device, seed=0).model
    big_labels = dh.class_labels(len(big.classes), 6)
    big_samples = dh.sample(big_model, schedule, n=len(big_labels), labels=big_labels, seed=0,
                            sampler=SAMPLER).images
    display(dh.plot_class_rows(big_samples, big_labels, big.classes, size=0.6))

# %% [markdown]
# ## What you have seen
#
# The same training loop and sampler as for your picture, given 1,797 pictures instead of one,
# learned to draw digits that are in no training set, and the nearest-neighbour check showed
# it. A class label and classifier-free guidance let you ask for a digit, trading variety for
# clarity as $w$ grows. A classifier's features turned "how good, how varied" into numbers
# (accuracy, diversity, FD), and the memorisation ratio caught what FD cannot: copying.
#
# **Next:** [06 · Edit and vary](06_edit_and_vary.ipynb): edit your picture with the same model
# (SDEdit), fill in a part of it (inpainting), and train a model of its pieces for variations.
