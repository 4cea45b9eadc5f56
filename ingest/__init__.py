"""Batch ingestion: discover files, parse them in isolation with `unstructured`, chunk, embed, index."""

import index  # noqa: F401  (sets the offline, telemetry-free environment before any parser import)
