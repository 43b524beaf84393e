"""Benchmark harness: every variant side by side with the stacks users would otherwise pick.

``qa-engine bench`` (:mod:`qa_engine.bench.command`) and ``benchmarks/speed_suite.py``
share these modules, one concern each:

- :mod:`~qa_engine.bench.plan`: which runners a set of model dirs gives, with one set of
  QA settings (max_seq_length, doc_stride, max answer length) for all of them;
- :mod:`~qa_engine.bench.runners`: the common :class:`~qa_engine.bench.runners.Runner`
  interface and the qa-engine runner; :mod:`~qa_engine.bench.peers`: the transformers and
  Optimum pipelines;
- :mod:`~qa_engine.bench.measure`: interleaved latency and throughput;
- :mod:`~qa_engine.bench.memory`: peak RSS of each runner in a fresh subprocess;
- :mod:`~qa_engine.bench.environment`: CPU, GPU and library versions;
- :mod:`~qa_engine.bench.harness`: runs it all and assembles ``results.json``
  (schema in :mod:`~qa_engine.bench.results`); :mod:`~qa_engine.bench.report`: the
  Markdown table and the plots.

Nothing here is imported by the runtime; torch, transformers, optimum, psutil and
matplotlib are imported inside functions, on use.
"""
