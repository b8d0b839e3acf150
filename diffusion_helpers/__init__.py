"""diffusion_helpers: the tested code behind a hands-on DDPM tutorial (Ho et al. 2020).

The paper is the ground floor, one module per idea, in the order the notebooks meet them:
``schedule`` (beta_t, alpha-bar), ``forward`` (q, eq. 2 and 4), ``prediction`` (what the net
predicts), ``unet`` (eps_theta), ``train`` (Algorithm 1), ``reverse`` (one step back and the
loop: Algorithm 2, DDIM, DPM-Solver++), ``timesteps``, ``guidance`` (classifier-free),
``editing`` (SDEdit, RePaint), and notebook 07's ``score`` and ``flow``. It imports nothing
of the machinery: the front doors ``training`` (``dh.train``) and ``sampling`` (``dh.sample``)
wrap it from above. The rest lives in folders named for their job: ``checks``, ``runtime``,
``pictures``, ``metrics``, ``storage``, ``figures``, ``tutorial`` and ``cli``.

``dh.*`` below is what the notebooks and the README use.
"""

from . import guidance  # noqa: F401  (dh.guidance.guided_noise, notebook 05)
from .editing import edit, inpaint
from .figures.animation import animate, animation_html, save_gif
from .figures.gallery import class_sampler, plot_class_rows, plot_nearest_neighbours
from .figures.plots import (
    plot_chain_vs_closed_form,
    plot_edit_trade,
    plot_loss_by_timestep,
    plot_losses,
    plot_noise_at_sizes,
    plot_noise_prediction,
    plot_noising_grid,
    plot_pixel_values,
    plot_sampler_quality,
    plot_schedules,
    show_images,
)
from .figures.points import (
    plot_memorisation,
    plot_points_dissolving,
    plot_score_field,
    plot_trajectories,
)
from .figures.widgets import MaskPicker, forward_slider, reverse_explorer
from .flow import euler_step, flow_time, to_flow, velocity
from .forward import add_noise, add_noise_chain, add_noise_step
from .metrics.classifier import (
    class_accuracy,
    features,
    frechet_distance,
    train_classifier,
    within_class_diversity,
)
from .metrics.copying import (
    copy_psnr,
    held_out_patch_distance,
    memorisation_ratio,
    nearest_neighbours,
    patch_distance,
    picture_variants,
    sample_spread,
)
from .metrics.distributions import energy_distance
from .metrics.psnr import psnr
from .pictures.data import ImageDataset, load_dataset
from .pictures.images import (
    DEFAULT_IMAGE,
    ImageInfo,
    ImageLoadError,
    load_image,
    load_image_info,
    sample_image_path,
    to_numpy,
    to_pil,
)
from .pictures.masks import mask_preset, masked
from .pictures.upload import pick_image, upload_image, upload_widget, uploaded_files
from .prediction import NoisePredictor, prediction
from .reverse import (
    FAST_SAMPLER,
    Frame,
    Sampler,
    SampleResult,
    ddim_step,
    predict_x0,
    q_posterior,
    reverse_process,
    reverse_step,
)
from .runtime.device import describe_device, pick_device
from .runtime.environment import in_colab, quick_mode
from .sampling import load_for_sampling, sample
from .schedule import NoiseSchedule, make_betas
from .score import langevin_step, sample_with_corrector, score_from_noise
from .storage.checkpoint import CheckpointError, export_weights, load_checkpoint
from .timesteps import ddim_timesteps
from .train import algorithm_1, training_loss
from .training import TrainConfig, TrainingError, TrainResult, default_batch_size, default_lr, train
from .tutorial import derivations, exercises  # noqa: F401  (dh.derivations.*, dh.exercises.*)
from .tutorial.comparisons import compare_samplers, describe_run, quality_by_steps, show_runs
from .tutorial.derivations import noise_prediction_examples
from .tutorial.points import PointNet, ideal_denoiser, points_from_picture
from .tutorial.settings import TutorialSettings, dataset_settings, settings
from .tutorial.sweeps import (
    class_labels,
    guidance_sweep,
    guidance_table,
    pick_per_class,
    plot_frechet_sets,
    plot_guidance_sweep,
)
from .tutorial.variations import (
    RandomCrops,
    patch_model,
    receptive_field,
    sample_variations,
    train_variations,
)
from .tutorial.work_folder import (
    STORED_IMAGE_SIZE,
    checkpoint_path,
    choose_my_image,
    fresh_checkpoint_path,
    load_digits_model,
    load_tutorial_model,
    my_image,
    save_my_image,
    start,
    work_dir,
)
from .unet import UNet, UNetConfig

__version__ = "0.1.0"

__all__ = [
    "add_noise",
    "add_noise_chain",
    "add_noise_step",
    "algorithm_1",
    "animate",
    "animation_html",
    "checkpoint_path",
    "CheckpointError",
    "choose_my_image",
    "class_accuracy",
    "class_labels",
    "class_sampler",
    "compare_samplers",
    "copy_psnr",
    "dataset_settings",
    "ddim_step",
    "ddim_timesteps",
    "default_batch_size",
    "DEFAULT_IMAGE",
    "default_lr",
    "derivations",
    "describe_device",
    "describe_run",
    "edit",
    "energy_distance",
    "euler_step",
    "exercises",
    "export_weights",
    "FAST_SAMPLER",
    "features",
    "flow_time",
    "forward_slider",
    "Frame",
    "frechet_distance",
    "fresh_checkpoint_path",
    "guidance_sweep",
    "guidance_table",
    "held_out_patch_distance",
    "ideal_denoiser",
    "ImageDataset",
    "ImageInfo",
    "ImageLoadError",
    "in_colab",
    "inpaint",
    "langevin_step",
    "load_checkpoint",
    "load_dataset",
    "load_digits_model",
    "load_for_sampling",
    "load_image",
    "load_image_info",
    "load_tutorial_model",
    "make_betas",
    "mask_preset",
    "masked",
    "MaskPicker",
    "memorisation_ratio",
    "my_image",
    "nearest_neighbours",
    "noise_prediction_examples",
    "NoisePredictor",
    "NoiseSchedule",
    "patch_distance",
    "patch_model",
    "pick_device",
    "pick_image",
    "pick_per_class",
    "picture_variants",
    "plot_chain_vs_closed_form",
    "plot_class_rows",
    "plot_edit_trade",
    "plot_frechet_sets",
    "plot_guidance_sweep",
    "plot_loss_by_timestep",
    "plot_losses",
    "plot_memorisation",
    "plot_nearest_neighbours",
    "plot_noise_at_sizes",
    "plot_noise_prediction",
    "plot_noising_grid",
    "plot_pixel_values",
    "plot_points_dissolving",
    "plot_sampler_quality",
    "plot_schedules",
    "plot_score_field",
    "plot_trajectories",
    "PointNet",
    "points_from_picture",
    "predict_x0",
    "prediction",
    "psnr",
    "q_posterior",
    "quality_by_steps",
    "quick_mode",
    "RandomCrops",
    "receptive_field",
    "reverse_explorer",
    "reverse_process",
    "reverse_step",
    "sample",
    "sample_image_path",
    "sample_spread",
    "sample_variations",
    "sample_with_corrector",
    "Sampler",
    "SampleResult",
    "save_gif",
    "save_my_image",
    "score_from_noise",
    "settings",
    "show_images",
    "show_runs",
    "start",
    "STORED_IMAGE_SIZE",
    "to_flow",
    "to_numpy",
    "to_pil",
    "train",
    "train_classifier",
    "train_variations",
    "TrainConfig",
    "training_loss",
    "TrainingError",
    "TrainResult",
    "TutorialSettings",
    "UNet",
    "UNetConfig",
    "upload_image",
    "upload_widget",
    "uploaded_files",
    "velocity",
    "within_class_diversity",
    "work_dir",
]
