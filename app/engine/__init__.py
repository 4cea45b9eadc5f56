"""The engine: one long-running process that owns the index, the embedder and the model (`vigie serve`)."""
