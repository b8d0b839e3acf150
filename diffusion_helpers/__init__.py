"""diffusion_helpers: the tested code behind a hands-on DDPM tutorial (Ho et al. 2020).

The schedule, the forward and reverse process, the image loader, the U-Net, training, sampling
and the pictures live in separate modules that meet only through plain tensors.
"""

from .env import describe_device, in_colab, pick_device, quick_mode
from .forward import add_noise, add_noise_chain, add_noise_step
from .images import (
    DEFAULT_IMAGE,
    ImageInfo,
    ImageLoadError,
    load_image,
    load_image_info,
    sample_image_path,
    to_numpy,
    to_pil,
)
from .reverse import ddim_step, predict_x0, q_posterior, reverse_step
from .schedule import NoiseSchedule, make_betas
from .upload import pick_image, upload_image, upload_widget, uploaded_files

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_IMAGE",
    "ImageInfo",
    "ImageLoadError",
    "load_image",
    "load_image_info",
    "pick_image",
    "sample_image_path",
    "to_numpy",
    "to_pil",
    "upload_image",
    "upload_widget",
    "uploaded_files",
    "NoiseSchedule",
    "add_noise",
    "add_noise_chain",
    "add_noise_step",
    "ddim_step",
    "describe_device",
    "in_colab",
    "make_betas",
    "pick_device",
    "predict_x0",
    "q_posterior",
    "quick_mode",
    "reverse_step",
]
