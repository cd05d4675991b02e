"""The market setting: moved to the package :mod:`crypto_ml.markets` (one class per kind); this
module re-exports it for the code that imports ``crypto_ml.market``."""

from crypto_ml.markets import *  # noqa: F403
from crypto_ml.markets import __all__  # noqa: F401
