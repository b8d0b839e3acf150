"""Everything the notebooks draw: ``plots`` (figures of the forward and reverse process, losses,
sampler quality), ``points`` (the 2D world of notebook 07), ``animation`` (the reverse process
as HTML and GIF), ``gallery`` (rows of classes, nearest neighbours, the class picker) and
``widgets`` (sliders, explorers, the mask picker)."""
