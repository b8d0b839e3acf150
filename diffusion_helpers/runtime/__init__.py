"""Where and how the work runs: ``device`` (CPU or GPU, precision), ``threads`` (CPU threads
left free by other programs), ``memory`` (will it fit, checked first), ``graphs`` (CUDA graphs),
``distributed`` (torchrun), ``interrupts`` (Ctrl-C and SIGTERM at a step boundary),
``environment`` (Colab, quick mode) and ``training_run`` (the machinery around Algorithm 1)."""
