"""The daily pipeline: what the DAG files read at parse time, and the steps their tasks run.

- :mod:`~crypto_ml.pipeline.catalog`: light facts for parsing (coins, models, replay days);
- :mod:`~crypto_ml.pipeline.params`: what a trigger may ask (the DAGs' params, checked);
- :mod:`~crypto_ml.pipeline.steps`: the steps as plain functions (poll, transform, decide, ...);
  the operators in :mod:`crypto_ml.operators` are thin wrappers around them;
- :mod:`~crypto_ml.pipeline.preload`: what a task-forking parent imports once.

Importing this package imports nothing: the DAG parser pays only for what it reads.
"""
