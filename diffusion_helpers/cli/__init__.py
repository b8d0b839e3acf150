"""The command line (``python -m diffusion_helpers``): ``main`` (the subcommands and their
options, one Sampler's options added in one place), ``demo`` (the headless tutorial) and
``edit`` (SDEdit and inpainting from the command line)."""
