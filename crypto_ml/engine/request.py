"""The one engine request: its fields, its check, its JSON form, and how a submit builds it.

>>> request = EngineRequest(coin="bitcoin", as_of="2017-09-01", model="linear", horizon=7)
>>> request.to_json()     # the task's keyword arguments on the broker (JSON, never pickle)
{'coin': 'bitcoin', 'as_of': '2017-09-01', 'model': 'linear', 'horizon': 7}
>>> EngineRequest.from_json(request.to_json()) == request
True

The sender (:mod:`crypto_ml.engine.client`, in Airflow tasks and the triggerer) and the worker
(:mod:`crypto_ml.engine.tasks`) both build it, so a bad request fails in the caller with the
message the worker would give. Light on purpose: the standard library, :mod:`crypto_ml.pipeline.catalog`,
:mod:`crypto_ml.pipeline.params` and :mod:`crypto_ml.utils.dates` (no Celery, no SQLAlchemy, no numpy/pandas).

The wire format is the task's keyword arguments, as before this class: fields left at their
default are not sent, so workers and senders of either side of this change understand each other.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from crypto_ml.engine.protocol import PREDICT_TASK, TRAIN_TASK, EngineInputError
from crypto_ml.pipeline.catalog import DEFAULT_MODEL, MODEL_NAMES
from crypto_ml.pipeline.params import DEFAULT_HORIZON
from crypto_ml.utils.dates import as_date

#: Where the worker reads a coin's closes when a request sends none: ``"bundled"`` (the default)
#: the dataset shipped with the package, ``"database"`` the prices the pipeline stored in the
#: project database (what its ``transform`` task validated: the request then carries a claim, coin
#: and day, instead of the history itself).
HISTORY_SOURCES = ("bundled", "database")

#: The Celery task of each kind of request, and the model each one uses when none is named.
TASK_NAMES = {"predict": PREDICT_TASK, "train": TRAIN_TASK}
DEFAULT_MODELS = {"predict": DEFAULT_MODEL, "train": "linear"}

#: The fields a train request takes; a predict request takes them all.
TRAIN_FIELDS = ("coin", "as_of", "model", "params")
#: The arguments of a submit (:class:`~crypto_ml.operators.engine.EngineSubmitOperator`, and the
#: :class:`~crypto_ml.triggers.engine.EngineSubmitTrigger` it hands them to) that
#: :meth:`EngineRequest.build` makes a request of.
SUBMIT_ARGUMENTS = ("coin", "as_of", "model", "horizon", "closes", "history", "model_params")


def _label(value: Any) -> str:
    return repr(value) if isinstance(value, str) else f"{value!r} ({type(value).__name__})"


def _positive_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class EngineRequest:
    """A ``crypto_ml.predict`` or ``crypto_ml.train`` request, checked and normalised on
    construction (a request that exists is one the engine accepts) or an
    :class:`~crypto_ml.engine.protocol.EngineInputError` naming the coin and the field.

    :param coin: coin id or symbol (the worker resolves it).
    :param as_of: last day of data the model may use (a date or ``YYYY-MM-DD``); None: the coin's
        last day in the bundled data. Required with ``closes`` or ``history="database"``.
    :param model: model name (default: ``naive`` to predict, ``linear`` to train).
    :param horizon: days to forecast (predict; default 10, at most the engine's ``max_horizon``).
    :param version: the stored model version to serve (predict; default: the newest trained up to
        ``as_of``, else a model fitted on the fly).
    :param params: model hyperparameters.
    :param closes: the closes to predict from (predict); None: read them from ``history``.
    :param history: where the worker reads the closes when none are sent (predict;
        :data:`HISTORY_SOURCES`, default ``"bundled"``).
    :param run_id: the caller's run, for the record (predict).
    :param levels: prediction-interval levels in percent (predict; default 80 and 95).
    :param task: ``"predict"`` or ``"train"``.
    """

    coin: str
    as_of: dt.date | None = None
    model: str | None = None
    horizon: int | None = None
    version: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    closes: tuple[float, ...] | None = None
    history: str | None = None
    run_id: str | None = None
    levels: tuple[float, ...] | None = None
    task: str = "predict"

    def __post_init__(self) -> None:
        if self.task not in TASK_NAMES:
            raise EngineInputError(f"task must be one of {', '.join(TASK_NAMES)}, got {self.task!r}")
        if not isinstance(self.coin, str) or not self.coin.strip():
            raise EngineInputError(f"coin must be a non-empty string, got {_label(self.coin)}")
        set_ = object.__setattr__
        set_(self, "coin", self.coin.strip())
        model = DEFAULT_MODELS[self.task] if self.model is None else self.model
        if not isinstance(model, str) or model.strip().lower() not in MODEL_NAMES:
            raise self._error(f"unknown model {model!r}; valid models: {', '.join(MODEL_NAMES)}")
        set_(self, "model", model.strip().lower())
        try:
            set_(self, "as_of", as_date(self.as_of, what="as_of"))
        except ValueError:
            raise self._error(f"as_of must be an ISO date (YYYY-MM-DD), got {self.as_of!r}") from None
        except TypeError:
            raise self._error(f"as_of must be an ISO date string, got {self.as_of!r}") from None
        if self.params is None or self.params == {}:
            set_(self, "params", {})
        elif not isinstance(self.params, Mapping) or not all(isinstance(k, str) for k in self.params):
            raise self._error(f"params must be an object of hyperparameters, got {self.params!r}")
        else:
            set_(self, "params", dict(self.params))
        if self.task == "train":
            given = [
                f.name
                for f in fields(self)
                if f.name not in (*TRAIN_FIELDS, "task") and getattr(self, f.name) is not None
            ]
            if given:
                raise self._error(f"a train request takes {', '.join(TRAIN_FIELDS)}; got {', '.join(given)}")
            return
        self._check_prediction()

    def _check_prediction(self) -> None:
        set_ = object.__setattr__
        horizon = DEFAULT_HORIZON if self.horizon is None else self.horizon
        if not _positive_int(horizon):
            raise self._error(f"horizon must be a positive int (days), got {horizon!r}")
        from crypto_ml.settings.engine import EngineConfig  # the limit is the engine's setting

        limit = EngineConfig.from_env().max_horizon
        if horizon > limit:
            raise self._error(f"horizon {horizon} exceeds the maximum of {limit} days")
        set_(self, "horizon", int(horizon))
        if self.version is not None:
            if not _positive_int(self.version):
                raise self._error(f"version must be a positive int or null, got {self.version!r}")
            set_(self, "version", int(self.version))
        if self.closes is not None:
            if not isinstance(self.closes, (list, tuple)) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in self.closes
            ):
                raise self._error("closes must be a list of finite numbers")
            set_(self, "closes", tuple(float(v) for v in self.closes))
        history = "bundled" if self.history is None else self.history
        if history not in HISTORY_SOURCES:
            raise self._error(f"history must be one of {', '.join(HISTORY_SOURCES)}, got {history!r}")
        set_(self, "history", history)
        if history == "database" and self.closes is not None:
            raise self._error("send closes or history='database', not both")
        if history == "database" and self.as_of is None:
            raise self._error("as_of is required with history='database'")
        if self.closes is not None and self.as_of is None:
            raise self._error("as_of is required when closes are sent")
        if self.run_id is not None and not isinstance(self.run_id, str):
            raise self._error(f"run_id must be a string, got {self.run_id!r}")
        if self.levels is not None:
            from crypto_ml.forecasting import check_levels  # numpy: only when levels are asked

            try:
                set_(self, "levels", check_levels(self.levels))
            except ValueError as exc:
                raise self._error(str(exc)) from None

    def _error(self, problem: str) -> EngineInputError:
        """An :class:`EngineInputError` about this request: ``coin '<coin>': <problem>``."""
        return EngineInputError(f"coin {self.coin!r}: {problem}")

    # -- on the wire ------------------------------------------------------------------------
    @property
    def task_name(self) -> str:
        """The Celery task that serves it (``crypto_ml.predict`` / ``crypto_ml.train``)."""
        return TASK_NAMES[self.task]

    @property
    def queue(self) -> str:
        """The queue it goes to (predictions never wait behind trainings)."""
        from crypto_ml.settings.engine import PREDICT_QUEUE, TRAIN_QUEUE

        return PREDICT_QUEUE if self.task == "predict" else TRAIN_QUEUE

    def to_json(self) -> dict[str, Any]:
        """The task's keyword arguments: JSON-able, ``as_of`` as ``YYYY-MM-DD``, fields left at their
        default omitted (the wire format workers have always read)."""
        data: dict[str, Any] = {
            "coin": self.coin,
            "as_of": None if self.as_of is None else self.as_of.isoformat(),
            "model": self.model,
        }
        if self.task == "predict":
            data.update(
                horizon=self.horizon,
                version=self.version,
                closes=None if self.closes is None else list(self.closes),
                history=None if self.history == "bundled" else self.history,
                run_id=self.run_id,
                levels=None if self.levels is None else list(self.levels),
            )
        data["params"] = dict(self.params) or None
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_json(cls, data: Any, *, task: str = "predict") -> EngineRequest:
        """The request of a task's keyword arguments (:meth:`to_json`); unknown fields are refused,
        naming them and the valid ones."""
        if not isinstance(data, Mapping):
            raise EngineInputError(f"a {task} request is an object of fields, got {_label(data)}")
        allowed = TRAIN_FIELDS if task == "train" else tuple(f.name for f in fields(cls) if f.name != "task")
        extra = sorted(set(data) - set(allowed))
        if extra:
            raise EngineInputError(
                f"coin {data.get('coin')!r}: unknown field(s) {', '.join(extra)}; "
                f"valid fields: {', '.join(allowed)}"
            )
        return cls(**data, task=task)

    # -- from a submit's arguments ----------------------------------------------------------
    @classmethod
    def build(
        cls,
        task: str,
        *,
        coin: str | None = None,
        as_of: Any = None,
        model: str | None = None,
        horizon: Any = None,
        closes: Any = None,
        history: str | None = None,
        model_params: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        default_as_of: Callable[[], str] | None = None,
    ) -> EngineRequest:
        """The request of a submit's arguments (:data:`SUBMIT_ARGUMENTS`) as rendered, on a worker or
        in the triggerer (JSON text decoded), and the run's id (predict).

        ``closes`` may be the transform's dict, whose ``coin`` and ``as_of`` apply when those are not
        given; a transform's dict without ``closes`` is a claim on the project database
        (``history="database"``: the engine reads the closes the transform validated). An empty
        ``as_of`` is ``default_as_of()`` when given (the run's market day). A horizon rendered as
        text is read as an int. A train request keeps coin, day, model and params only.
        """
        if isinstance(closes, Mapping):
            coin, as_of = coin or closes.get("coin"), as_of or closes.get("as_of")
            if "closes" in closes:
                closes = closes["closes"]
            else:
                closes, history = None, history or "database"
        if coin and not as_of and default_as_of is not None:
            as_of = default_as_of()
        if not coin or not as_of:
            raise EngineInputError(
                "the request needs a coin and an as_of day (or a transform output that has them)"
            )
        if task != "predict":
            return cls(coin=coin, as_of=as_of, model=model, params=model_params, task=task)
        if isinstance(horizon, str) and horizon.strip().isdigit():
            horizon = int(horizon)
        return cls(
            coin=coin,
            as_of=as_of,
            model=model,
            horizon=horizon,
            params=model_params,
            closes=closes,
            history=history,
            run_id=run_id,
            task=task,
        )
