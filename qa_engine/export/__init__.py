"""The export stage: a QA checkpoint -> verified ONNX variants -> an export dir.

Needs the ``[export]`` extra. Entry points: ``qa-engine export`` (:mod:`.command`) and
:func:`qa_engine.export.pipeline.run_export` with :class:`.options.ExportOptions`.
"""
