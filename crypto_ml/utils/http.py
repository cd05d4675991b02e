"""The one HTTP session factory: a ``requests`` session that retries and never waits forever.

Retries (urllib3's :class:`~urllib3.util.retry.Retry`) cover connection errors, read timeouts and
the answers that mean "try again later" (429 and 5xx, honouring ``Retry-After``), with exponential
backoff. Every request gets ``timeout`` unless the call passes its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

#: Statuses retried by default: rate limited and server-side errors.
RETRY_STATUSES = (429, 500, 502, 503, 504)


class _TimeoutSession(requests.Session):
    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


def retrying_session(
    *,
    retries: int = 3,
    backoff: float = 0.5,
    timeout: float = 10.0,
    methods: Iterable[str] = ("GET", "POST"),
    statuses: Iterable[int] = RETRY_STATUSES,
) -> requests.Session:
    """A session retrying ``methods`` up to ``retries`` times after the first attempt.

    :param retries: retries after the first attempt (connect, read and status retries alike).
    :param backoff: urllib3 backoff factor (sleep ``backoff * 2**(n-1)`` seconds before retry n).
    :param timeout: default per-attempt timeout in seconds.
    :param methods: HTTP methods that are retried (a POST only when the server is idempotent on it).
    :param statuses: answers that are retried; after the last retry the answer is returned, not raised.
    """
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        backoff_factor=backoff,
        allowed_methods=frozenset(m.upper() for m in methods),
        status_forcelist=tuple(statuses),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    session = _TimeoutSession(timeout)
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
