"""Vigie's user-facing layer: the command line (and, later, the engine and the chat). Nothing imports it."""

import index  # noqa: F401  (offline, telemetry-free environment first)
