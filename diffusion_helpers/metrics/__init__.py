"""How good and how new the pictures are: ``psnr`` (against the picture, optionally inside a
mask), ``copying`` (nearest neighbours, the memorisation ratio, copy PSNR, patch distances),
``classifier`` (a small digit classifier, its features and the Frechet distance) and
``distributions`` (the energy distance between two clouds of points)."""
