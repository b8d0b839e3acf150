"""diffusion_helpers: the tested code behind a hands-on DDPM tutorial (Ho et al. 2020).

The schedule, the forward and reverse process, the image loader, the datasets, the U-Net,
training, sampling, editing, evaluation and the pictures live in separate modules that meet
only through plain tensors (the README's package table lists them in the order data flows).
"""

from .checkpoint import CheckpointError, export_weights, load_checkpoint, load_for_sampling
from .datasets import DATASET_NAMES, ImageDataset, load_dataset
from .distributed import is_main_process
from .editing import edit, inpaint
from .env import describe_device, in_colab, pick_device, quick_mode
from .evaluate import (
    DigitClassifier,
    class_accuracy,
    diversity,
    features,
    frechet_distance,
    memorisation_ratio,
    nearest_neighbours,
    plot_nearest_neighbours,
    train_classifier,
)
from .forward import add_noise, add_noise_chain, add_noise_step
from .guidance import DEFAULT_GUIDANCE
from .images import (
    DEFAULT_IMAGE,
    IMAGE_SUFFIXES,
    ImageInfo,
    ImageLoadError,
    load_image,
    load_image_info,
    sample_image_path,
    to_numpy,
    to_pil,
)
from .interrupts import Interrupted
from .masks import MaskPicker, mask_preset, region_psnr
from .reverse import CLIP_X0, ddim_step, dpm_solver_2m_step, predict_x0, q_posterior, reverse_step
from .sampling import Frame, SampleResult, ddim_timesteps, psnr, reverse_process, sample
from .schedule import NoiseSchedule, make_betas
from .train import TrainConfig, TrainingError, TrainResult, train
from .tutorial import (
    STORED_IMAGE_SIZE,
    TutorialSettings,
    checkpoint_path,
    dataset_settings,
    fresh_checkpoint_path,
    load_tutorial_model,
    my_image,
    noise_prediction_examples,
    save_my_image,
    settings,
    work_dir,
)
from .unet import UNet, UNetConfig
from .upload import pick_image, upload_image, upload_widget, uploaded_files
from .vary import copy_psnr, patch_model, sample_variations, train_variations
from .viz import (
    animate,
    animation_html,
    plot_chain_vs_closed_form,
    plot_loss_by_timestep,
    plot_losses,
    plot_noise_prediction,
    plot_noising_grid,
    plot_pixel_values,
    plot_sampler_quality,
    plot_schedules,
    save_gif,
    show_images,
)
from .widgets import forward_slider, reverse_explorer

__version__ = "0.1.0"

__all__ = [
    "add_noise",
    "add_noise_chain",
    "add_noise_step",
    "animate",
    "animation_html",
    "checkpoint_path",
    "CheckpointError",
    "class_accuracy",
    "CLIP_X0",
    "copy_psnr",
    "DATASET_NAMES",
    "dataset_settings",
    "ddim_step",
    "ddim_timesteps",
    "DEFAULT_GUIDANCE",
    "DEFAULT_IMAGE",
    "describe_device",
    "DigitClassifier",
    "diversity",
    "dpm_solver_2m_step",
    "edit",
    "export_weights",
    "features",
    "forward_slider",
    "Frame",
    "frechet_distance",
    "fresh_checkpoint_path",
    "IMAGE_SUFFIXES",
    "ImageDataset",
    "ImageInfo",
    "ImageLoadError",
    "in_colab",
    "inpaint",
    "Interrupted",
    "is_main_process",
    "load_checkpoint",
    "load_dataset",
    "load_for_sampling",
    "load_image",
    "load_image_info",
    "load_tutorial_model",
    "make_betas",
    "mask_preset",
    "MaskPicker",
    "memorisation_ratio",
    "my_image",
    "nearest_neighbours",
    "noise_prediction_examples",
    "NoiseSchedule",
    "patch_model",
    "pick_device",
    "pick_image",
    "plot_chain_vs_closed_form",
    "plot_loss_by_timestep",
    "plot_losses",
    "plot_sampler_quality",
    "plot_nearest_neighbours",
    "plot_noise_prediction",
    "plot_noising_grid",
    "plot_pixel_values",
    "plot_schedules",
    "predict_x0",
    "psnr",
    "q_posterior",
    "quick_mode",
    "region_psnr",
    "reverse_explorer",
    "reverse_process",
    "reverse_step",
    "sample",
    "sample_image_path",
    "sample_variations",
    "SampleResult",
    "save_gif",
    "save_my_image",
    "settings",
    "show_images",
    "STORED_IMAGE_SIZE",
    "to_numpy",
    "to_pil",
    "train",
    "train_classifier",
    "train_variations",
    "TrainConfig",
    "TrainingError",
    "TrainResult",
    "TutorialSettings",
    "UNet",
    "UNetConfig",
    "upload_image",
    "upload_widget",
    "uploaded_files",
    "work_dir",
]
