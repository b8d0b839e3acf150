"""Pictures in, checked: ``imagefile`` (reading a file's bytes safely), ``images`` (any picture
to a tensor in [-1, 1] and back), ``upload`` (the button, Colab's dialog, the sample),
``dataset``/``datasets``/``folders``/``torchvision_sets`` (``load_dataset``: the digits, a folder,
MNIST and kin), ``training_data`` (what ``train`` accepts) and ``masks`` (inpainting masks)."""
