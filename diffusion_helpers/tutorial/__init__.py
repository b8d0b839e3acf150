"""What only the notebooks need: ``settings`` (sizes and budgets for this machine),
``work_folder`` (the picture and models that follow the learner from notebook to notebook, on
Google Drive in Colab), ``exercises`` (the checkers of the "your turn" cells), ``derivations``
(the notebooks' derivations, checked numerically), ``comparisons`` (notebook 04's sampler
comparisons), ``sweeps`` (notebook 05's guidance sweep) and ``points`` (notebook 07's 2D world)."""
