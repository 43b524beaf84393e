"""qa-engine on Ray (the ``[ray]`` extra): thin adapters over the one engine.

- :mod:`qa_engine.ray.batch`: ``predict --ray``, Ray Data with an actor pool of engines,
  each answering chunks through :func:`qa_engine.corpus.answer_rows`.
- :mod:`qa_engine.ray.serve_app`: ``serve --ray``, a Ray Serve deployment whose replicas
  each hold one engine and the serve batching core behind the same FastAPI app.
"""
