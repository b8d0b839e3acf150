"""Files we write and read back: ``checkpoint`` (models that resume exactly, damage named),
``outputs`` (never overwrite a file that is not ours) and ``files`` (atomic writes)."""
