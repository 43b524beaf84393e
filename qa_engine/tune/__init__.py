"""``qa-engine tune``: measure how to run an export fastest on this machine, write the plan.

:mod:`qa_engine.tune.search` runs the search; :mod:`qa_engine.tune.command` is the CLI;
the plan itself (and how an engine decides whether it applies) is :mod:`qa_engine.plan`.
"""
