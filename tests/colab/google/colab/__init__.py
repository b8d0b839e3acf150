"""A stand-in for Colab's ``google.colab`` package (see tests/colab/README.md)."""

from . import drive, files  # noqa: F401  (Colab's package has both as attributes)
