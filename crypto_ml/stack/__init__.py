"""Airflow on this machine, run and followed the same way for both executors.

- :mod:`crypto_ml.stack.supervisor`: the supervised process groups (restart with backoff, give up
  loudly with :class:`~crypto_ml.stack.supervisor.ComponentFailed`), and what every Airflow stack
  shares (health, its REST client);
- :mod:`crypto_ml.stack.local`: the embedded default (LocalExecutor, SQLite): ``crypto-ml pipeline``;
- :mod:`crypto_ml.stack.celery`: the production shape (CeleryExecutor on PostgreSQL and Redis,
  FAB auth, Flower): ``crypto-ml stack``;
- :mod:`crypto_ml.stack.follow`: the one REST client (Airflow 3's public API ``/api/v2``) that
  triggers, follows and reads a run on either stack, and the progress lines and day report.

Nothing is imported here, so ``python -m crypto_ml.stack.celery`` runs cleanly.
"""
