"""Vigie's retrieval core: settings, embeddings, sparse encoding and the Qdrant index behind one interface.

Importing this package first makes the whole process offline (see `index.offline`).
"""

from index.offline import enforce_offline

enforce_offline()
