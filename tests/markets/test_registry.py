"""The market kinds are one package: one class per kind owning its Connection fields, its data
source, its run-day mapping and its parse-time coin ids; a registry picks the class; the sources
never import the market code (no import circle)."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

from crypto_ml.markets import (
    KINDS,
    CSVMarket,
    ExchangeMarket,
    Market,
    MarketConfig,
    MarketConfigError,
    ReplayMarket,
    SeededMarket,
    conn_fields,
)

ROOT = Path(__file__).resolve().parents[2] / "crypto_ml"
NOW = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "klass", "source", "day"),
    [
        ("crypto-ml-market://replay", ReplayMarket, "ReplaySource", dt.date(2017, 6, 30)),
        ("crypto-ml-market://csv?path=/data", CSVMarket, "CSVSource", dt.date(2026, 11, 30)),
        (
            "crypto-ml-market://kraken?symbols=BTC/USD",
            ExchangeMarket,
            "ExchangeSource",
            dt.date(2026, 11, 29),
        ),
        (
            "crypto-ml-market://kraken?symbols=BTC/USD&seed=/h",
            SeededMarket,
            "ExchangeSource",
            dt.date(2026, 11, 29),
        ),
    ],
)
def test_the_registry_picks_one_class_per_kind_and_the_class_owns_its_parts(text, klass, source, day):
    market = Market.from_env_value(text)
    assert type(market) is klass and klass in KINDS
    assert type(market.source(day)).__name__ == source  # its data source
    assert market.market_day("2026-11-30", now=NOW) == day  # its run day -> market day
    assert set(market.extra) <= klass.keys  # its Connection fields


def test_market_of_a_kind_builds_that_kinds_class():
    assert type(MarketConfig()) is ReplayMarket  # no Connection: the replay
    assert type(Market(kind="exchange", exchange="binance", symbols=("BTC/USDT",))) is ExchangeMarket
    assert type(Market(kind="exchange", exchange="binance", top=3, seed="/h")) is SeededMarket
    assert type(Market(kind="csv", path="/x")) is CSVMarket
    with pytest.raises(ValueError, match="no market kind 'nope'"):
        Market(kind="nope")


def test_a_field_of_another_kind_is_refused_naming_the_kinds_fields():
    with pytest.raises(
        MarketConfigError, match=r"\['seed'\] mean nothing to a csv market \(it reads \['path'\]\)"
    ):
        Market.from_env_value("crypto-ml-market://csv?path=/x&seed=/y")
    with pytest.raises(MarketConfigError, match="given twice"):
        Market.from_env_value("crypto-ml-market://binance?symbols=BTC/USDT&symbols=ETH/USDT")


def test_the_connection_form_offers_every_kinds_fields():
    from crypto_ml.provider_info import MARKET_CONNECTION

    fields = MARKET_CONNECTION["conn-fields"]
    assert fields == conn_fields()
    assert set(fields) == set().union(*(k.conn_fields for k in KINDS)) >= {"symbols", "top", "path", "seed"}


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_the_sources_never_import_the_market_code_nor_the_catalog():
    for path in sorted((ROOT / "sources").glob("*.py")):
        bad = {
            m
            for m in _imports(path)
            if m.startswith(("crypto_ml.markets", "crypto_ml.pipeline.catalog", "crypto_ml.hooks"))
        }
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_the_market_code_never_imports_the_catalog_or_the_hooks():
    for path in sorted((ROOT / "markets").glob("*.py")):
        bad = {m for m in _imports(path) if m.startswith(("crypto_ml.pipeline.catalog", "crypto_ml.hooks"))}
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_the_connection_form_offers_every_field_the_parser_reads():
    from crypto_ml.provider_info import MARKET_CONNECTION

    assert set(MARKET_CONNECTION["conn-fields"]) == set().union(*(k.keys for k in KINDS))
