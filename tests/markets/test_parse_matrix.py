"""One market setting, parsed one way: every example of the README (and the issue's Kraken one,
an unencoded URL in an extra) in its URI form and in Airflow's JSON form gives the same market in
the CLI (``--market``), the DAG parser (the ``coin`` param's schema) and the task (the hook, which
gets the Connection from Airflow's own secrets backend as every task does); a setting that is
present but unreadable fails naming the field, never becomes the replay.

Run as a script to print the matrix as a Markdown table (the figure of the report)::

    python tests/markets/test_parse_matrix.py
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV_VAR = "AIRFLOW_CONN_CRYPTO_ML_MARKET"
#: The issue's example: a URL in an extra, unencoded, as anyone would write it.
ISSUE_EXAMPLE = "crypto-ml-market://kraken?symbols=BTC/USD,ETH/USD&api_url=http://127.0.0.1:8000"


def readme_examples() -> list[str]:
    """Every ``crypto-ml-market://`` setting the README writes, in order, once."""
    text = (ROOT / "docs" / "markets.md").read_text()  # the markets page holds every example
    found = re.findall(r"crypto-ml-market://[^\s'`\"|)]+", text)
    out = []
    for uri in [*found, ISSUE_EXAMPLE]:
        uri = uri.rstrip(".,;")
        if "<" not in uri and "..." not in uri and uri not in out:
            out.append(uri)
    return out


def readme_member_settings() -> dict[str, str]:
    """The member Connections the README's several-markets example defines
    (``export AIRFLOW_CONN_MARKET_BINANCE='...'``), set beside each setting read."""
    text = (ROOT / "docs" / "markets.md").read_text()  # the markets page holds every example
    return dict(re.findall(r"export (AIRFLOW_CONN_(?!CRYPTO_ML_MARKET\b)\w+)='([^']+)'", text))


def json_form(uri: str) -> str:
    """The same setting in Airflow's JSON form, split by hand (not by the parser under test)."""
    host, _, query = uri.removeprefix("crypto-ml-market://").partition("?")
    extra = dict(pair.split("=", 1) for pair in query.split("&") if pair)
    return json.dumps({"conn_type": "crypto_ml_market", "host": host, "extra": extra})


def _same(market) -> tuple:
    """A market's meaning, without where it came from."""
    members = tuple(_same(m) for m in getattr(market, "members", ()))
    return (
        dataclasses.astuple(
            dataclasses.replace(market, origin="", extra={}, **({"members": ()} if members else {}))
        ),
        members,
    )


def read_three_ways(text: str) -> dict[str, object]:
    """``{"cli": market | error, "parser": coin schema, "task": market | error, "airflow": fields}``
    with ``text`` as the environment's ``AIRFLOW_CONN_CRYPTO_ML_MARKET``."""
    from airflow.sdk import Connection

    from crypto_ml.commands.data import market_from_arg
    from crypto_ml.hooks.market import CryptoMarketHook
    from crypto_ml.pipeline import catalog

    def attempt(fn):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - the matrix shows it
            return exc

    members = readme_member_settings()
    old = {name: os.environ.get(name) for name in [ENV_VAR, *members]}
    os.environ.update({**members, ENV_VAR: text})
    try:

        def airflow_fields():
            conn = (
                Connection.from_json(text, conn_id="crypto_ml_market")
                if text.startswith("{")
                else Connection.from_uri(text, conn_id="crypto_ml_market")
            )
            return {"host": conn.host, "schema": conn.schema}

        return {
            "cli": attempt(lambda: market_from_arg(text)),
            "cli_env": attempt(lambda: market_from_arg("env")),
            "parser": attempt(catalog.coin_param_schema),
            "task": attempt(lambda: CryptoMarketHook().get_market()),
            "airflow": attempt(airflow_fields),
        }
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _settings() -> list[tuple[str, str]]:
    out = []
    for uri in readme_examples():
        out += [(uri, uri), (f"JSON of {uri}", json_form(uri))]
    return out


@pytest.mark.parametrize(("label", "text"), _settings(), ids=[lbl for lbl, _ in _settings()])
def test_every_readme_setting_is_one_market_in_the_cli_the_parser_and_the_task(label, text):
    got = read_three_ways(text)
    cli, task = got["cli"], got["task"]
    assert not isinstance(cli, Exception), f"CLI: {cli}"
    assert not isinstance(task, Exception), f"task: {task}"
    assert _same(cli) == _same(task) == _same(got["cli_env"])
    expected = cli.parse_time_coin_ids()
    schema = got["parser"]
    if expected is None:
        assert "enum" not in schema and schema["pattern"]
    else:
        assert schema["enum"] == expected
    host = (
        text.removeprefix("crypto-ml-market://").split("?")[0]
        if not text.startswith("{")
        else json.loads(text)["host"]
    )
    assert host in (cli.exchange, cli.kind, cli.name)  # never another market (the replay) by default


def test_the_unencoded_url_is_the_market_airflow_alone_would_have_lost():
    got = read_three_ways(ISSUE_EXAMPLE)
    assert got["airflow"] == {"host": "", "schema": "raken"}  # Airflow's own reading
    task = got["task"]
    assert (task.kind, task.exchange, task.symbols, task.api_url) == (
        "exchange",
        "kraken",
        ("BTC/USD", "ETH/USD"),
        "http://127.0.0.1:8000",
    )
    assert got["parser"]["enum"] == ["btc-usd", "eth-usd"]


def test_a_connection_from_elsewhere_mangled_by_airflows_uri_parser_fails_saying_how_to_write_it():
    """A Connection in the metadata DB or a secrets backend is read from its fields: the issue's
    URI stored that way (``airflow connections add --conn-uri``) has host '' and schema 'raken'."""
    from airflow.sdk import Connection

    from crypto_ml.markets import MarketConfig, MarketConfigError

    conn = Connection.from_uri(ISSUE_EXAMPLE, conn_id="crypto_ml_market")
    with pytest.raises(MarketConfigError) as err:
        MarketConfig.from_fields(conn.host, conn.extra_dejson, schema=conn.schema, origin="Connection")
    assert "schema is 'raken'" in str(err.value) and "URL-encode" in str(err.value)
    with pytest.raises(MarketConfigError, match="host is empty"):  # a form saved without a market
        MarketConfig.from_fields("", {"symbols": "BTC/USD"}, origin="Connection")


BROKEN = [
    ("crypto-ml-market://binance?symbols=BTC/USDT&tpo=5", "unknown extra field(s) ['tpo']"),
    ("crypto-ml-market://binance?top=fifty", "top='fifty' is not a number"),
    ("crypto-ml-market://binance", "needs either extra.symbols"),
    ("crypto-ml-market://?symbols=BTC/USDT", "host is empty"),
    ("crypto-ml-market://replay?symbols=BTC/USDT", "mean nothing to a replay market"),
    ("crypto-ml-market://csv", "a csv market needs extra.path"),
    ("crypto-ml-market://binance?symbols=BTCUSDT", "'BTCUSDT' is not a spot market symbol"),
    ("crypto-ml-market://binance?symbols=BTC/USDT&start=yesterday", "start='yesterday' is not a date"),
    ("postgres://binance?symbols=BTC/USDT", "connection type 'postgres'"),
    ('{"conn_type": "crypto_ml_market", "host": "kraken", "extra": {"symbols": "BTC/USD"', "not valid JSON"),
    (
        '{"conn_type": "crypto_ml_market", "host": "kraken", "port": 80, "extra": {"symbols": "BTC/USD"}}',
        "field(s) ['port'] mean nothing to a market",
    ),
    ("binance?symbols=BTC/USDT", "neither a URI"),
]


@pytest.mark.parametrize(("text", "reason"), BROKEN, ids=[t for t, _ in BROKEN])
def test_a_setting_that_cannot_be_read_fails_naming_the_field_never_the_replay(text, reason, caplog):
    from crypto_ml.markets import MarketConfigError

    got = read_three_ways(text)
    for where in ("cli", "task"):
        assert isinstance(got[where], MarketConfigError), f"{where}: {got[where]!r}"
        assert reason in str(got[where]), f"{where}: {got[where]}"
    # the DAG parser stays up (the DAG and its failing runs stay visible) and logs the reason
    assert "pattern" in got["parser"]
    assert reason in caplog.text


def test_the_dag_parser_reads_the_unencoded_setting(tmp_path):
    """The real DAG parser (a DagBag of dags/, in its own process) with the issue's setting."""
    code = (
        "import json, sys; from airflow.dag_processing.dagbag import DagBag; "
        "b = DagBag(dag_folder=sys.argv[1]); assert not b.import_errors, b.import_errors; "
        "print('SCHEMA=' + json.dumps(b.dags['crypto_ml_coin'].params.get_param('coin').schema))"
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), ENV_VAR: ISSUE_EXAMPLE}
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "dags")], env=env, capture_output=True, text=True, timeout=180
    )
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("SCHEMA=")]
    assert line, out.stdout[-2000:] + out.stderr[-3000:]
    assert json.loads(line[0][len("SCHEMA=") :])["enum"] == ["btc-usd", "eth-usd"]


def _cell(value) -> str:
    if isinstance(value, Exception):
        return f"ERROR {type(value).__name__}: {str(value)[:90]}"
    if isinstance(value, dict) and "pattern" in value:
        return "any id (pattern)"
    if isinstance(value, dict) and "enum" in value:
        ids = value["enum"]
        return f"{len(ids)} ids: {', '.join(ids[:3])}{', ...' if len(ids) > 3 else ''}"
    if isinstance(value, dict):
        return json.dumps(value)
    what = value.exchange or value.name
    members = "+".join(m.exchange for m in getattr(value, "members", ()))
    extra = ", ".join(
        f"{k}={v}"
        for k, v in (
            ("symbols", ",".join(value.symbols)),
            ("top", value.top),
            ("path", value.path),
            ("seed", value.seed),
            ("api_url", value.api_url),
            ("markets", members),
        )
        if v
    )
    return f"{what}({extra})"


def matrix_markdown() -> str:
    rows = [
        "| setting | Airflow's Connection (host, schema) | CLI `--market` | DAG parser (`coin` param) "
        "| task (hook) | same |",
        "|---|---|---|---|---|---|",
    ]
    for label, text in [*_settings(), *((t, t) for t, _ in BROKEN[:4])]:
        got = read_three_ways(text)
        same = (
            "yes"
            if not isinstance(got["cli"], Exception)
            and not isinstance(got["task"], Exception)
            and _same(got["cli"]) == _same(got["task"])
            else "both fail"
            if isinstance(got["cli"], Exception) and isinstance(got["task"], Exception)
            else "NO"
        )
        rows.append(
            f"| `{label}` | {_cell(got['airflow'])} | {_cell(got['cli'])} | "
            f"{_cell(got['parser'])} | {_cell(got['task'])} | {same} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    import logging

    logging.disable(logging.CRITICAL)
    print(matrix_markdown())
