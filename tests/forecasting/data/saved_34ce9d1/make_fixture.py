"""Save one fitted model of every kind with this tree's code, and what it forecasts after an update.

The fixture of tests/forecasting/test_persistence.py, written by commit 34ce9d1:
    cd <a checkout of 34ce9d1> && python make_fixture.py <this folder>
"""

import json
import sys
from pathlib import Path

import numpy as np

from crypto_ml.data.loader import CryptoLoader
from crypto_ml.forecasting import make_forecaster

out = Path(sys.argv[1])
y, _ = CryptoLoader().get_prices("ethereum")
y = np.asarray(y, dtype="float64")[-100:]
params = {
    "naive": {},
    "drift": {"window": 20},
    "linear": {},
    "ar": {"lags": 3},
    "lstm": {"window": 8, "units": [3, 3], "epochs": 1, "batch_size": 32, "min_train": 10},
}
expected = {}
for name, p in params.items():
    f = make_forecaster(name, **{k: tuple(v) if isinstance(v, list) else v for k, v in p.items()}).fit(
        y[:-30]
    )
    f.save(out / name)
    f.update(y)
    expected[name] = {"params": p, "after_update": f.predict_with_intervals(12)}
(out / "expected.json").write_text(json.dumps(expected, indent=1))
print("ok")
