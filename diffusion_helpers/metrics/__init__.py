"""How good and how new the pictures are: ``psnr``, ``copying`` (nearest neighbours, the
memorisation ratio, the copy checks of one picture), ``classifier`` (a small digit classifier
and the Fréchet distance) and ``distributions`` (the energy distance of two clouds)."""
