"""Operator: validate one coin's stored history and compute its features."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class CoinTransformOperator(BaseOperator):
    """Read a coin's prices up to ``as_of`` from the project DB, validate them, add features.

    Returns (XCom) the dict of :func:`crypto_ml.pipeline.steps.transform` without its closes: coin,
    as_of, rows, dates, last close, latest features and warnings. The closes stay in the project
    database, where they were validated: the engine reads them there (``history="database"``;
    fed this output, :class:`~crypto_ml.operators.engine.EngineSubmitOperator` asks for that), so
    a coin's price history is neither an XCom row in the metadata DB nor a broker message. Bad
    input (unknown coin, invalid prices) fails at once, naming the coin and the row, without
    retries; a coin with too little history on that day (e.g. its first day) is skipped, with the
    reason in the log.

    :param coin: coin id (templated).
    :param as_of: the last day the pipeline may see, ``YYYY-MM-DD`` (templated).
    :param min_rows: fewest rows worth predicting from.
    :param market_conn_id: Connection id of the market (templated; see
        :class:`~crypto_ml.hooks.market.CryptoMarketHook`), read when the coin's history up to
        ``as_of`` is not in the project DB yet (a coin run triggered on its own).
    :param db_conn_id: Connection id of the project database (templated; see
        :class:`~crypto_ml.hooks.database.CryptoDatabaseHook`).
    :param model: the model the run predicts with (templated; optional): one served only from a
        trained version (:data:`crypto_ml.pipeline.params.TRAINED_ONLY`) without a version trained up to
        ``as_of`` fails, naming the command that trains it.
    :param refuse_unknown_conf: refuse a run whose conf has a key that is not a param of the DAG
        (Airflow does not, see :mod:`crypto_ml.pipeline.params`): the transform is the coin run's first task.

    An ``as_of`` after the market's last closed day (at the run's ``run_after``) fails, naming it.
    """

    template_fields: Sequence[str] = ("coin", "as_of", "model", "market_conn_id", "db_conn_id")
    ui_color = "#fdf2d0"

    def __init__(
        self,
        *,
        coin: str,
        as_of: str,
        min_rows: int = 2,
        market_conn_id: str = "crypto_ml_market",
        db_conn_id: str = "crypto_ml_db",
        model: str | None = None,
        refuse_unknown_conf: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.coin = coin
        self.as_of = as_of
        self.min_rows = min_rows
        self.market_conn_id = market_conn_id
        self.db_conn_id = db_conn_id
        self.refuse_unknown_conf = refuse_unknown_conf
        self.model = model

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        from crypto_ml.hooks.database import CryptoDatabaseHook
        from crypto_ml.hooks.market import CryptoMarketHook
        from crypto_ml.markets import MarketConfigError
        from crypto_ml.pipeline.params import TriggerRefused, check_run_conf
        from crypto_ml.pipeline.steps import (
            NotEnoughHistory,
            PipelineInputError,
            check_model_trained,
            transform,
        )

        dag_run = context["dag_run"]
        try:
            if self.refuse_unknown_conf:
                check_run_conf(dag_run, context["dag"])
            url = CryptoDatabaseHook(self.db_conn_id).get_url()
            if self.model:
                check_model_trained([self.coin], self.model, self.as_of, url=url)
            out = transform(
                self.coin,
                self.as_of,
                min_rows=self.min_rows,
                url=url,
                market=CryptoMarketHook(self.market_conn_id).get_market,  # read only when needed
                now=dag_run.run_after,  # the run's clock for which candles have closed
            )
        except NotEnoughHistory as exc:
            raise AirflowSkipException(f"not enough history, skipped: {exc}") from None
        except (TriggerRefused, PipelineInputError, MarketConfigError) as exc:
            raise AirflowFailException(str(exc)) from None
        self.log.info(
            "%s up to %s: %d rows (%s..%s), last close %s, features %s",
            out["coin"],
            out["as_of"],
            out["rows"],
            out["first_date"],
            out["last_date"],
            out["last_close"],
            out["features"],
        )
        for warning in out["warnings"]:
            self.log.warning("%s: %s", out["coin"], warning)
        out.pop("closes")
        return out
