"""Small helpers every layer shares: :mod:`~crypto_ml.utils.dates` (the one date parser) and
:mod:`~crypto_ml.utils.http` (the one HTTP session: retries, timeouts)."""
