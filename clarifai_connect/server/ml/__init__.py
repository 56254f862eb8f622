"""What the local server computes: embeddings (plugin embedders, the vector index) and search.

- :mod:`.embedders`: the built-in embedders (``wordllama`` for text, ``image-features``);
- :mod:`.embeddings`: the per-server :class:`~.embeddings.EmbeddingService` — background
  embedding at ingest, storage, and the internal API other server code calls;
- :mod:`.vectors`: the in-memory exact vector index of one app and embedder.

Importing this package is light: the plugin manager imports :mod:`.embedders` to collect
the built-ins, and numpy, Pillow and the weights load only when something is embedded.
"""
