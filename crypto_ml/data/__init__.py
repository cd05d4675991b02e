"""Daily prices in: the loader, the row checks and the ingest step, beside the bundled dataset.

- :mod:`~crypto_ml.data.loader`: :class:`~crypto_ml.data.loader.CryptoLoader` (``get_df``,
  ``get_prices``, ``get_crypto_names``) over any source of :mod:`crypto_ml.sources`;
- :mod:`~crypto_ml.data.validation`: parsing and validation of daily OHLCV rows;
- :mod:`~crypto_ml.data.ingest`: load, validate, store (the CLI's and the DAGs' ingest);
- :mod:`~crypto_ml.data.features`: feature transforms and the checks before predicting;
- ``coins.csv`` and ``crypto_daily.csv.gz``: the bundled 2013-2017 history (package data).
"""
