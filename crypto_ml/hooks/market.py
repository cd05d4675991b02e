"""Hook to the market the pipeline reads: the Connection ``crypto_ml_market``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from crypto_ml.market import MarketConfig


class CryptoMarketHook(BaseHook):
    """Where daily prices come from: the replay (default), a CSV folder, or an exchange via ccxt.

    The Connection (type ``crypto_ml_market``) names the market in its *host* field (``replay``,
    ``csv``, or a ccxt exchange id such as ``binance``) and the rest in *extra*: ``symbols``
    (``"BTC/USDT,ETH/USDT"``) or ``top`` (N) with ``quote``, ``path`` for a CSV folder, and
    optionally ``start``, ``api_url``, ``timeout``, ``retries``, ``backoff``, ``rate_limit_ms``.
    See :mod:`crypto_ml.market`. Without that Connection the replay of the bundled history is
    used (no network). The connection form's fields are declared in the provider's metadata
    (:data:`crypto_ml.provider_info.MARKET_CONNECTION`).

    :param market_conn_id: Connection id of the market.
    """

    conn_name_attr = "market_conn_id"
    default_conn_name = "crypto_ml_market"
    conn_type = "crypto_ml_market"
    hook_name = "Crypto-ML market"

    def __init__(self, market_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.market_conn_id = market_conn_id

    def get_market(self) -> MarketConfig:
        """The market this Connection defines; the replay default when it does not exist."""
        from airflow.sdk.exceptions import AirflowNotFoundException

        from crypto_ml.market import MarketConfig

        try:
            conn = self.get_connection(self.market_conn_id)
        except AirflowNotFoundException:
            return MarketConfig()
        return MarketConfig.from_fields(
            conn.host, conn.extra_dejson if conn.extra else {},
            origin=f"Connection {self.market_conn_id!r}",
        )

    def test_connection(self) -> tuple[bool, str]:
        """Resolve the day's universe (an exchange: one markets call, one tickers call for top N)."""
        from crypto_ml.market import EXCHANGE

        try:
            market = self.get_market()
            if market.kind != EXCHANGE:
                return True, f"{market.describe()}; no network needed"
            from crypto_ml.sources.exchange import ExchangeSource

            source = ExchangeSource(market)
            universe = source.universe()
        except Exception as exc:  # noqa: BLE001 - any failure is reported in the UI
            return False, str(exc)
        failed = source.report.failed_coins
        text = f"{market.describe()}: {len(universe)} markets" + (
            f"; failing: {'; '.join(failed.values())}" if failed else "")
        return not failed, text
