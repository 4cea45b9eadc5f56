"""The browser UI of Vigie (Streamlit): a client of the engine over loopback HTTP, holding no index or model."""

from app.ui.launch import HARDENED_FLAGS

__all__ = ["HARDENED_FLAGS"]
