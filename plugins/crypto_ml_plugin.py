"""Airflow plugin of Crypto-ML: the predictions-and-trades view inside the Airflow UI.

* ``fastapi_apps``: the api-server mounts :func:`crypto_ml.web.app.create_plugin_app` at
  ``/crypto-ml`` (HTML page at ``/crypto-ml/``, plot at ``/crypto-ml/plot.png?coin=...``, JSON at
  ``/crypto-ml/api/predictions``). The app checks Airflow's authentication itself: Airflow does
  not authenticate plugin apps.
* ``external_views``: a "Crypto-ML" entry under *Browse* that shows that page in the UI (at
  ``/plugin/crypto-ml``, in an iframe). ``href`` is relative so it follows ``[api] base_url``.

Every Airflow process loads plugins, so this file stays cheap: the app is a :class:`LazyASGIApp`
that imports FastAPI, SQLAlchemy, matplotlib and Airflow's security module on its first request.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from crypto_ml.web import LazyASGIApp

URL_PREFIX = "/crypto-ml"


class CryptoMLPlugin(AirflowPlugin):
    """Registers the Crypto-ML web view (FastAPI app + navigation entry)."""

    name = "crypto_ml"
    fastapi_apps = [
        {
            "app": LazyASGIApp("crypto_ml.web.app:create_plugin_app"),
            "url_prefix": URL_PREFIX,
            "name": "Crypto-ML predictions and trades",
        }
    ]
    external_views = [
        {
            "name": "Crypto-ML",
            "href": URL_PREFIX.lstrip("/") + "/",
            "destination": "nav",
            "category": "browse",
            "url_route": "crypto-ml",
        }
    ]
