"""Pictures in, checked: ``imagefile`` (reading a file's bytes safely, opened by Pillow),
``images`` (any picture to a tensor in [-1, 1] and back), ``upload`` (the button, Colab's
dialog, the sample), ``data`` (``load_dataset``: the digits, a folder, MNIST and kin, and what
``train`` draws from) and ``masks`` (inpainting masks)."""
