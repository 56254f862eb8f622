"""What the local server computes: embeddings (plugin embedders, the vector index), search,
and the models that stand on them.

- :mod:`.embedders`: the built-in embedders (``wordllama`` for text, ``image-features``);
- :mod:`.embeddings`: the per-server :class:`~.embeddings.EmbeddingService` — background
  embedding at ingest, storage, and the internal API other server code calls;
- :mod:`.vectors`: the in-memory exact vector index of one app and embedder;
  :mod:`.image_features`: the built-in picture features;
- :mod:`.searches` (PostInputsSearches, PostAnnotationsSearches), :mod:`.search_query`
  (a Query → one SQL condition and the vector ranks), :mod:`.search_index` (the indexed
  facts filters read, kept current by triggers and a catch-up);
- :mod:`.features`: the one door from models to embeddings;
- :mod:`.models`, :mod:`.model_types`, :mod:`.builtin`: models, versions, model types, the
  built-in embedder models; :mod:`.training` and :mod:`.heads`: training classifier heads
  (scikit-learn); :mod:`.predict`: PostModelOutputs and the one ``predict`` every caller
  uses; :mod:`.evaluations` and :mod:`.metrics`; :mod:`.exports` (``model.tar``).

Importing this package is light: the plugin manager imports :mod:`.embedders` to collect
the built-ins, and numpy, Pillow and the weights load only when something is embedded.
"""
