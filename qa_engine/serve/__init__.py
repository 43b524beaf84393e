"""``qa-engine serve``: an HTTP answer service over one QAEngine (the ``[serve]`` extra).

- :mod:`~qa_engine.serve.batcher`: the batching core (no HTTP): windows of all waiting
  requests in token-budgeted, length-bucketed batches, decoded per request;
- :mod:`~qa_engine.serve.service`: admission (429), readiness, warm-up and drain;
- :mod:`~qa_engine.serve.schemas`: the Hugging Face Inference API contract;
- :mod:`~qa_engine.serve.app`: the FastAPI transport (``create_app(engine, settings)``);
- :mod:`~qa_engine.serve.metrics`: Prometheus metrics by stage;
- :mod:`~qa_engine.serve.shutdown`: SIGTERM/SIGINT drain for uvicorn;
- :mod:`~qa_engine.serve.command`: the click command.
"""
