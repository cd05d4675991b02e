"""The market setting: the replay never runs out in silence, a CSV folder is re-read each day, and
the coin list checked at trigger time follows the configured universe (parse time: no network)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from crypto_ml import storage
from crypto_ml.markets import ENV_VAR, MarketConfig
from crypto_ml.pipeline.steps import ReplayExhausted, poll

ROOT = Path(__file__).resolve().parents[2]


def test_a_replayed_day_past_the_bundled_history_fails_saying_how_to_move_the_anchors(sqlite_url):
    last = poll("2027-02-23", url=sqlite_url)  # ↦ 2017-09-23, the last bundled day (7 coins)
    assert last["history_day"] == "2017-09-23" and len(last["coins"]) == 7
    with pytest.raises(ReplayExhausted) as err:
        poll("2027-02-24", url=sqlite_url)
    text = str(err.value)
    assert "its day 2027-02-24 maps to history day 2017-09-24" in text
    assert "after the end of the bundled history (2017-09-23)" in text
    assert "CRYPTO_ML_REPLAY_ANCHOR_REAL=2027-02-24" in text and ENV_VAR in text


def test_a_csv_folder_is_re_read_each_day(tmp_path, sqlite_url, monkeypatch):
    folder = tmp_path / "prices"
    folder.mkdir()
    header = "Date,Open,High,Low,Close,Volume,Market Cap\n"
    (folder / "Alpha Coin.csv").write_text(
        header + '"Nov 02, 2026",2,2,2,2,10,-\n"Nov 01, 2026",1,1,1,1,10,-\n'
    )
    monkeypatch.setenv(ENV_VAR, f"crypto-ml-market://csv?path={folder}")
    market = MarketConfig.from_env_value(os.environ[ENV_VAR])
    assert market.path == str(folder)
    assert market.parse_time_coin_ids() is None  # the folder's files are the universe, each day
    first = poll("2026-11-02", market=market, url=sqlite_url)
    assert first["coins"] == ["alpha-coin"] and first["inserted"] == 2
    # the user drops a new file and a new day into the folder: the next run sees both
    (folder / "Beta.csv").write_text(header + '"Nov 03, 2026",5,5,5,5,1,-\n')
    (folder / "Alpha Coin.csv").write_text(
        header + '"Nov 03, 2026",3,3,3,3,10,-\n"Nov 02, 2026",2,2,2,2,10,-\n"Nov 01, 2026",1,1,1,1,10,-\n'
    )
    second = poll("2026-11-03", market=market, url=sqlite_url)
    assert second["coins"] == ["alpha-coin", "beta"] and second["inserted"] == 2
    assert storage.count_rows("prices", url=sqlite_url) == 4


def coin_param(env_value: str | None, tmp_path) -> dict:
    """The ``coin`` param's schema of ``crypto_ml_coin`` as the DAG parser builds it."""
    code = (
        "import json, sys; from airflow.dag_processing.dagbag import DagBag; "
        "b = DagBag(dag_folder=sys.argv[1]); assert not b.import_errors, b.import_errors; "
        "print('SCHEMA=' + json.dumps(b.dags['crypto_ml_coin'].params.get_param('coin').schema))"
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    env.pop(ENV_VAR, None)
    if env_value is not None:
        env[ENV_VAR] = env_value
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "dags")], env=env, capture_output=True, text=True, timeout=120
    )
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("SCHEMA=")]
    assert line, out.stdout[-2000:] + out.stderr[-3000:]
    import json

    return json.loads(line[0][len("SCHEMA=") :])


def test_the_trigger_time_coin_check_follows_the_configured_universe(tmp_path):
    replay = coin_param(None, tmp_path)
    assert "bitcoin" in replay["enum"] and len(replay["enum"]) == 97
    listed = coin_param("crypto-ml-market://binance?symbols=BTC/USDT,ETH/USDT", tmp_path)
    assert listed["enum"] == ["btc-usdt", "eth-usdt"]
    top = coin_param("crypto-ml-market://binance?top=50", tmp_path)
    assert "enum" not in top and top["pattern"]  # resolved each day: checked when the run starts
    # a broken setting never breaks parsing: the tasks that read it say what is wrong
    broken = coin_param("crypto-ml-market://binance", tmp_path)
    assert "pattern" in broken
