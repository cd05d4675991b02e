"""A local HTTP server on 127.0.0.1 that answers like Binance's ``GET /api/v3/klines``.

It serves the bundled dataset as klines (``[open_ms, "open", "high", "low", "close",
"base_volume", close_ms, "quote_volume", trades, "taker_base", "taker_quote", "0"]``), paginated
by ``startTime``/``endTime``/``limit`` like the real endpoint, and can be told to misbehave per
symbol: rate-limit (HTTP 429 + ``Retry-After``), fail (5xx), hang past the client's timeout,
return a malformed kline or a non-JSON body. Unknown symbols get Binance's
``{"code": -1121, "msg": "Invalid symbol."}`` with HTTP 400.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pandas as pd

from crypto_ml.data_loader import CryptoLoader

DAY_MS = 86_400_000


class BinanceLikeServer:
    def __init__(self, loader: CryptoLoader | None = None) -> None:
        self.loader = loader or CryptoLoader()
        meta = self.loader.coins()
        self.coin_for_symbol = {f"{sym}USDT": coin for coin, sym in meta["symbol"].items() if sym}
        self.behaviour: dict[str, dict] = {}
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> BinanceLikeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def klines(self, symbol: str, start: int, end: int | None, limit: int) -> list:
        df = self.loader.get_df(self.coin_for_symbol[symbol])
        ms = (df["Date"] - pd.Timestamp("1970-01-01")) // pd.Timedelta(milliseconds=1)
        mask = ms >= start
        if end is not None:
            mask &= ms <= end
        out = []
        for t, row in zip(ms[mask].head(limit), df[mask].head(limit).itertuples(index=False)):
            vol = "" if pd.isna(row.Volume) else f"{row.Volume / row.Close:.8f}"
            quote = "0" if pd.isna(row.Volume) else f"{row.Volume:.8f}"
            out.append(
                [int(t), f"{row.Open:.8f}", f"{row.High:.8f}", f"{row.Low:.8f}", f"{row.Close:.8f}",
                 vol, int(t) + DAY_MS - 1, quote, 100, "0", "0", "0"]
            )
        return out

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body, headers: dict | None = None) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path != "/api/v3/klines":
                    return self._send(404, {"code": -1, "msg": "not found"})
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                symbol = q.get("symbol", "")
                with server._lock:
                    server.requests[symbol] += 1
                    n = server.requests[symbol]
                how = server.behaviour.get(symbol, {})
                if "sleep" in how and n <= how.get("sleep_times", 10**9):
                    time.sleep(how["sleep"])
                if n <= how.get("rate_limit", 0):
                    return self._send(
                        429,
                        {"code": -1003, "msg": "Too much request weight used; please use WebSocket Streams."},
                        {"Retry-After": str(how.get("retry_after", 0))},
                    )
                if "status" in how:
                    return self._send(how["status"], {"code": -1000, "msg": "An unknown error occurred."})
                if how.get("not_json"):
                    return self._send(200, b"<html>maintenance</html>")
                if symbol not in server.coin_for_symbol:
                    return self._send(400, {"code": -1121, "msg": "Invalid symbol."})
                rows = server.klines(
                    symbol,
                    int(q.get("startTime", 0)),
                    int(q["endTime"]) if "endTime" in q else None,
                    min(int(q.get("limit", 500)), 1000),
                )
                if how.get("garbage") and rows:
                    rows[0][4] = "12..5"
                return self._send(200, rows)

        return Handler
