"""Hook to the market the pipeline reads: the Connection ``crypto_ml_market``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from crypto_ml.markets import MarketConfig


class CryptoMarketHook(BaseHook):
    """Where daily prices come from: the replay (default), a CSV folder, or an exchange via ccxt.

    The Connection (type ``crypto_ml_market``) names the market in its *host* field (``replay``,
    ``csv``, or a ccxt exchange id such as ``binance``) and the rest in *extra*: ``symbols``
    (``"BTC/USDT,ETH/USDT"``) or ``top`` (N) with ``quote``, ``path`` for a CSV folder, and
    optionally ``start``, ``api_url``,
    ``timeout``, ``retries``, ``backoff``, ``rate_limit_ms``. See :mod:`crypto_ml.markets`. Without
    that Connection the replay of the bundled history is used (no network). The connection form's
    fields are declared in the provider's metadata (:data:`crypto_ml.provider_info.MARKET_CONNECTION`).

    One setting, parsed one way: the Connection is looked up as any task does; when it is the
    environment's ``AIRFLOW_CONN_<ID>``, the variable's text is read with the parser the DAG
    parser and the ``crypto-ml`` CLI use (:meth:`~crypto_ml.markets.Market.from_env_value`),
    because Airflow's URI parser empties the host of a URI whose extra holds an unencoded URL
    (``...&api_url=http://...``). A Connection from elsewhere (the metadata DB, a secrets backend)
    is read from its fields, and one that Airflow's URI parser mangled that way fails, saying how
    to write it.

    :param market_conn_id: Connection id of the market.
    """

    conn_name_attr = "market_conn_id"
    default_conn_name = "crypto_ml_market"
    conn_type = "crypto_ml_market"
    hook_name = "Crypto-ML market"

    def __init__(self, market_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.market_conn_id = market_conn_id

    def get_market(self, *, required: bool = False, member: bool = False) -> MarketConfig:
        """The market this Connection defines; the replay default when it does not exist (with
        ``required``: fails, naming it). The markets a multi market names are read the same way,
        each from its own Connection (``member``: one of them, which may not name markets in turn).

        The Connection is looked up the way every task does (:meth:`get_connection`: Airflow's
        secrets backends in their order). When the one found is the environment's
        ``AIRFLOW_CONN_<ID>`` (its fields equal Airflow's own parse of that variable), the
        variable's text is read with the parser of the DAG parser and the CLI, so the three read
        one market; otherwise its fields are read, and a Connection without a market in its host
        fails naming the field (it never becomes the replay)."""
        from airflow.sdk.exceptions import AirflowNotFoundException

        from crypto_ml.markets import MarketConfig, env_var
        from crypto_ml.markets.base import refuse_nested

        text = os.environ.get(env_var(self.market_conn_id), "")
        origin = env_var(self.market_conn_id)
        resolve = refuse_nested if member else _member
        try:
            conn = self.get_connection(self.market_conn_id)
        except Exception as exc:  # noqa: BLE001
            if text.strip():  # set, but Airflow could not read it: say what is wrong with it
                return MarketConfig.from_env_value(text, origin=origin, resolve=resolve)
            if isinstance(exc, AirflowNotFoundException):
                if required:
                    raise _config_error(
                        f"Connection {self.market_conn_id!r} (a market of the multi market) "
                        f"does not exist: define it ({origin}, or the UI)"
                    ) from None
                return MarketConfig()
            raise
        if text.strip() and _same_connection(conn, text):
            return MarketConfig.from_env_value(text, origin=origin, resolve=resolve)
        try:
            extra = conn.extra_dejson if conn.extra else {}
        except Exception as exc:  # noqa: BLE001 - Airflow's own parse of extra
            raise _config_error(f"Connection {self.market_conn_id!r}: extra is not JSON: {exc}") from None
        return MarketConfig.from_fields(
            conn.host,
            extra,
            schema=conn.schema,
            origin=f"Connection {self.market_conn_id!r}",
            resolve=resolve,
        )

    def test_connection(self) -> tuple[bool, str]:
        """Resolve the day's universe (an exchange: one markets call, one tickers call for top N)."""
        try:
            market = self.get_market()
            if not market.is_exchange:
                return True, f"{market.describe()}; no network needed"
            import datetime as dt

            source = market.source(dt.datetime.now(dt.UTC).date())
            universe = source.universe()
        except Exception as exc:  # noqa: BLE001 - any failure is reported in the UI
            return False, str(exc)
        failed = source.report.failed_coins
        text = f"{market.describe()}: {len(universe)} markets" + (
            f"; failing: {'; '.join(failed.values())}" if failed else ""
        )
        return not failed, text


def _member(conn_id: str) -> MarketConfig:
    """A market that a multi market names, looked up as a task looks up any Connection."""
    return CryptoMarketHook(conn_id).get_market(required=True, member=True)


def _fields(conn) -> tuple:
    try:
        extra = conn.extra_dejson if conn.extra else {}
    except Exception:  # noqa: BLE001
        extra = conn.extra
    return (conn.conn_type, conn.host, conn.schema, conn.login, conn.password, conn.port, extra)


def _same_connection(conn, text: str) -> bool:
    """Whether ``conn`` is Airflow's parse of the environment variable's ``text``."""
    from airflow.sdk import Connection

    try:
        own = (
            Connection.from_json(text, conn_id=conn.conn_id)
            if text.lstrip().startswith("{")
            else Connection.from_uri(text.strip(), conn_id=conn.conn_id)
        )
    except Exception:  # noqa: BLE001 - Airflow could not parse it either: then it is not conn
        return False
    return _fields(own) == _fields(conn)


def _config_error(text: str):
    from crypto_ml.markets import MarketConfigError

    return MarketConfigError(text)
