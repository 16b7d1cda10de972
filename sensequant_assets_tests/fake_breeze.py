"""A fake ICICI Breeze server, so the real breeze-connect SDK can be driven end to end offline.

It serves the three URLs the SDK uses for daily history (security master, customer details,
v2 historical charts) on 127.0.0.1 and reproduces what matters to a client: the 1,000-candle
cap counting back from ``to_date``, the per-minute and per-day limits, the silent empty reply
for an unknown stock code, and the error shapes listed in DESIGN.md. Every request is recorded
so tests and the benchmark can count calls, peak calls per minute and candles per reply.

Faults are scripted two ways: ``fail_next`` answers the next few history requests with named
faults, and ``fail_pattern`` makes the server intermittently flaky for a whole backfill (a
repeating mask over history requests, e.g. ``"..F"`` fails every third one), cycling through
``fail_with``. ``drop_connection`` closes the socket without a reply, as a crashed gateway does;
``hang`` holds the connection open without a word, as a stalled gateway does, and ``hang_on``
makes whole endpoints (the import-time security master download, say) do the same.
``echo_request`` answers with an error that quotes the credentials, as a careless proxy might.

    with FakeBreeze() as fake:
        source = BreezeSource(..., base_url=fake.base_url)
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import math
import threading
import time
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.sources.rate_limit import ist_day_start, peak_in_window
from sensequant_assets.universe import INDEX_SYMBOL, Universe, load_universe

FAKE_USER = "FAKEUSER01"
CUSTOMER_DETAILS = "customerdetails"
HISTORICAL_CHARTS = "historicalcharts"
SECURITY_MASTER = "SecurityMaster.zip"
API_ENDPOINTS = (CUSTOMER_DETAILS, HISTORICAL_CHARTS)

MINUTE_LIMIT = {
    "Success": None,
    "Status": 5,
    "Error": "Limit exceed: API call per minute:Try after some time",
}
DAY_LIMIT = {"Success": None, "Status": 5, "Error": "Limit exceed: API call per day: "}
INTERNAL_ERROR = {"Success": None, "Status": 500, "Error": "Internal Server Error"}
# customerdetails' reply for an expired token (SDK issue #210); the SDK turns it into
# "Session key is expired.".
SESSION_RESOURCE_GONE = {"Success": None, "Status": 500, "Error": "Resource not available."}
SESSION_INVALID = {"Success": None, "Status": 500, "Error": "Invalid session."}
APP_KEY_UNKNOWN = {"Success": None, "Status": 500, "Error": "Public Key does not exist."}
# What historicalcharts says once the session has lapsed mid-run. ICICI does not document this
# shape; this one uses the SDK's own wording.
SESSION_EXPIRED_V2 = {"Success": None, "Status": 500, "Error": "Session key is expired."}
HTML_502 = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center></body></html>"
)

#: Scriptable faults for the next historicalcharts calls: name → (HTTP status, body).
FAULTS: dict[str, tuple[int, str | dict[str, Any]]] = {
    "html_502": (502, HTML_502),
    "error_500": (500, INTERNAL_ERROR),
    "minute_limit": (200, MINUTE_LIMIT),
    "day_limit": (200, DAY_LIMIT),
    "session_expired": (200, SESSION_EXPIRED_V2),
}
#: A fault with no reply at all: the server closes the connection after reading the request.
DROP_CONNECTION = "drop_connection"
#: A fault with no reply for ``hang_seconds`` (or until the server stops), then a hang-up.
HANG = "hang"
#: A 400 whose error text quotes the API key, secret, session token and session header.
ECHO_REQUEST = "echo_request"
FAULT_NAMES = (*FAULTS, DROP_CONNECTION, HANG, ECHO_REQUEST)
ENDPOINTS = (SECURITY_MASTER, *API_ENDPOINTS)
# The statuses the request handler reads as "send nothing, hang up" and "wait, then hang up".
_NO_REPLY = 0
_HANG = -1

# The 61 columns of ICICI's NSEScripMaster.txt, in order.
# fmt: off
_MASTER_COLUMNS = (
    "Token", "ShortName", "Series", "CompanyName", "ticksize", "Lotsize", "DateOfListing",
    "DateOfDeListing", "IssuePrice", "FaceValue", "ISINCode", "52WeeksHigh", "52WeeksLow",
    "LifeTimeHigh", "LifeTimeLow", "HighDate", "LowDate", "Symbol", "InstrumentType",
    "PermittedToTrade", "IssueCapital", "WarningPercent", "FreezePercent", "CreditRating",
    "IssueRate", "IssueStartDate", "InterestPaymentDate", "IssueMaturityDate", "BoardLotQty",
    "Name", "ListingDate", "ExpulsionDate", "ReAdmissionDate", "RecordDate", "ExpiryDate",
    "NoDeliveryStartDate", "NoDeliveryEndDate", "MFill", "AON", "ParticipantInMarketIndex",
    "BookClsStartDate", "BookClsEndDate", "EGM", "AGM", "Interest", "Bonus", "Rights", "Dividends",
    "LocalUpdateDateTime", "DeleteFlag", "Remarks", "NormalMarketStatus", "OddLotMarketStatus",
    "SpotMarketStatus", "AuctionMarketStatus", "NormalMarketEligibility",
    "OddLotlMarketEligibility", "SpotMarketEligibility", "AuctionlMarketEligibility",
    "MarginPercentage", "ExchangeCode",
)
# fmt: on


@dataclass(frozen=True)
class Call:
    """One request as the server saw it; ``fault`` names a scripted fault or an enforced limit."""

    time: float
    endpoint: str
    stock_code: str | None = None
    from_date: str | None = None
    to_date: str | None = None
    candles: int = 0
    fault: str | None = None


def fake_candle(code: str, day: dt.date) -> dict[str, Any]:
    """A deterministic, internally consistent daily bar for ``code`` on ``day``."""
    seed = zlib.crc32(code.encode())
    t = day.toordinal()
    level = 50 + seed % 2000
    close = level * (1 + 0.15 * math.sin(t / 97 + seed % 5) + 0.05 * math.sin(t / 11))
    open_ = close * (1 + 0.01 * math.sin(t * 1.7 + seed % 13))
    return {
        "close": round(close, 2),
        "datetime": f"{day.isoformat()} 00:00:00",
        "exchange_code": "NSE",
        "high": round(max(open_, close) * 1.012, 2),
        "low": round(min(open_, close) * 0.988, 2),
        "open": round(open_, 2),
        "stock_code": code,
        "volume": 100_000 + (seed + t * 7_919) % 900_000,
    }


def scrip_master_text(universe: Universe, symbols: Iterable[str]) -> str:
    """A few ``NSEScripMaster.txt`` rows in ICICI's format (quoted, space-padded header)."""
    lines = [", ".join(f'"{name}"' for name in _MASTER_COLUMNS)]
    for position, symbol in enumerate(symbols, start=1):
        instrument = universe.get(symbol)
        cells = {
            "Token": str(position),
            "ShortName": instrument.isec_code,
            "Series": "EQ",
            "CompanyName": instrument.company,
            "ExchangeCode": instrument.symbol,
        }
        lines.append(",".join(f'"{cells.get(name, "")}"' for name in _MASTER_COLUMNS))
    return "\r\n".join(lines) + "\r\n"


def _check_faults(faults: Iterable[str]) -> None:
    unknown = sorted(set(faults) - set(FAULT_NAMES))
    if unknown:
        raise ValueError(f"unknown fault(s) {unknown}; choose from {sorted(FAULT_NAMES)}")


def _known_codes(universe: Universe) -> set[str]:
    symbols = [*universe.default_symbols, INDEX_SYMBOL]
    return {universe.isec_code(s) for s in symbols if s in universe}


class FakeBreeze:
    """The fake server; start it with ``with FakeBreeze(...) as fake`` and use ``base_url``.

    ``clock`` drives the rate limits and the call log, so a test can pair it with the
    ``sleep`` it injects into the client. ``to_date_slack_days`` serves candles a few days past
    ``to_date``, as a server reading dates in another timezone would. ``fail_pattern`` (``.``
    serve, ``F`` fail; repeated over the history requests in arrival order) and ``fail_with``
    (fault names, used in turn) make the server intermittently flaky; assign ``fail_pattern =
    ""`` to heal it. Faults queued with ``fail_next`` come first and do not advance the pattern.
    ``hang_on`` names endpoints (``ENDPOINTS``) that never answer; a hung request is released
    after ``hang_seconds`` or when the server stops.
    """

    def __init__(
        self,
        *,
        api_key: str = "fake-api-key-1234",
        api_secret: str = "fake-api-secret-5678",
        session_token: str = "90817263",
        known_codes: Iterable[str] | None = None,
        candle_cap: int = 1000,
        per_minute: int = 100,
        per_day: int = 5000,
        expired: bool = False,
        to_date_slack_days: int = 0,
        clock: Callable[[], float] = time.time,
        calendar: TradingCalendar | None = None,
        fail_pattern: str = "",
        fail_with: Sequence[str] = ("error_500",),
        hang_on: Iterable[str] = (),
        hang_seconds: float = 600.0,
    ):
        _check_faults(fail_with)
        hang_on = set(hang_on)
        if hang_on - set(ENDPOINTS):
            raise ValueError(f"hang_on names endpoints among {list(ENDPOINTS)}")
        if set(fail_pattern) - {".", "F"} or not fail_with:
            raise ValueError("fail_pattern holds only '.' and 'F'; fail_with names 1+ faults")
        universe = load_universe()
        self.api_key = api_key
        self.api_secret = api_secret
        self.session_token = session_token
        self.session_key = "fake-session-key-24680"
        self.known_codes = set(known_codes) if known_codes is not None else _known_codes(universe)
        self.candle_cap = candle_cap
        self.per_minute = per_minute
        self.per_day = per_day
        self.expired = expired
        self.to_date_slack_days = to_date_slack_days
        self.clock = clock
        self.calendar = calendar or TradingCalendar()
        self.calls: list[Call] = []
        self.fail_pattern = fail_pattern
        self.fail_with = tuple(fail_with)
        self.hang_on = hang_on
        self.hang_seconds = hang_seconds
        self._stopping = threading.Event()
        self._faults: deque[str] = deque()
        self._patterned = 0
        self._injected = 0
        self._lock = threading.Lock()
        self._master_zip = self._build_master(universe)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> FakeBreeze:
        self._stopping.clear()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases hung requests
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeBreeze:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the fake server first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- scripting and inspection --------------------------------------------------------

    def fail_next(self, *faults: str) -> None:
        """Answer the next historicalcharts calls with these faults (``FAULT_NAMES``)."""
        _check_faults(faults)
        with self._lock:
            self._faults.extend(faults)

    def history_calls(self) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.endpoint == HISTORICAL_CHARTS]

    def injected_faults(self) -> list[Call]:
        """History requests answered with a scripted or patterned fault (not enforced limits)."""
        return [c for c in self.history_calls() if c.fault in FAULT_NAMES]

    def peak_calls_per_minute(self) -> int:
        """Most API calls (session + history) received in any 60 s window."""
        with self._lock:
            return peak_in_window([c.time for c in self.calls if c.endpoint in API_ENDPOINTS])

    def max_candles_per_reply(self) -> int:
        return max((c.candles for c in self.history_calls()), default=0)

    # --- request handling (called from server threads) -----------------------------------

    def _build_master(self, universe: Universe) -> bytes:
        symbols = ["RELIANCE", "INFY", "TCS", "HDFCBANK", "GOLDBEES"]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("NSEScripMaster.txt", scrip_master_text(universe, symbols))
        return buffer.getvalue()

    def hang(self, endpoint: str | None = None) -> None:
        """Hold a request without a reply; ``endpoint`` records one hung by ``hang_on``."""
        if endpoint is not None:
            with self._lock:
                self.calls.append(Call(self.clock(), endpoint, fault=HANG))
        self._stopping.wait(self.hang_seconds)

    def security_master(self) -> bytes:
        with self._lock:
            self.calls.append(Call(self.clock(), SECURITY_MASTER))
        return self._master_zip

    def customer_details(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            now = self.clock()
            refusal = self._limit_refusal(now)
            if refusal is None:
                if self.expired:
                    refusal = "session_expired", SESSION_RESOURCE_GONE
                elif body.get("AppKey") != self.api_key:
                    refusal = "app_key_unknown", APP_KEY_UNKNOWN
                elif body.get("SessionToken") != self.session_token:
                    refusal = "session_invalid", SESSION_INVALID
            self.calls.append(Call(now, CUSTOMER_DETAILS, fault=refusal[0] if refusal else None))
        if refusal is not None:
            return refusal[1]
        token = base64.b64encode(f"{FAKE_USER}:{self.session_key}".encode()).decode()
        return {
            "Success": {"session_token": token, "idirect_userid": FAKE_USER},
            "Status": 200,
            "Error": None,
        }

    def historical_charts(
        self, params: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, str | dict[str, Any]]:
        code = params.get("stock_code", "")
        start, end = params.get("from_date", ""), params.get("to_date", "")
        with self._lock:
            now = self.clock()
            fault = self._faults.popleft() if self._faults else self._patterned_fault()
            if fault is not None:
                if fault == "session_expired":
                    self.expired = True
                self.calls.append(Call(now, HISTORICAL_CHARTS, code, start, end, 0, fault))
                if fault == DROP_CONNECTION:
                    return _NO_REPLY, ""
                if fault == HANG:
                    return _HANG, ""
                if fault == ECHO_REQUEST:
                    return 200, self._echo(headers)
                return FAULTS[fault]
            refusal = self._limit_refusal(now) or self._session_refusal(headers)
            if refusal is not None:
                self.calls.append(Call(now, HISTORICAL_CHARTS, code, start, end, 0, refusal[0]))
                return 200, refusal[1]
            candles = self._candles(params)
            self.calls.append(Call(now, HISTORICAL_CHARTS, code, start, end, len(candles)))
        return 200, {"Success": candles, "Status": 200, "Error": None}

    def _patterned_fault(self) -> str | None:
        """The intermittent fault due for this history request, if any (lock held)."""
        pattern = self.fail_pattern
        position = self._patterned
        self._patterned += 1
        if not pattern or pattern[position % len(pattern)] != "F":
            return None
        fault = self.fail_with[self._injected % len(self.fail_with)]
        self._injected += 1
        return fault

    def _echo(self, headers: dict[str, str]) -> dict[str, Any]:
        error = (
            f"Bad request from AppKey {headers.get('apikey')} with X-SessionToken "
            f"{headers.get('x-sessiontoken')} (customer {self.session_token}, "
            f"secret {self.api_secret})"
        )
        return {"Success": None, "Status": 400, "Error": error, "Request": {"headers": headers}}

    def _limit_refusal(self, now: float) -> tuple[str, dict[str, Any]] | None:
        """Breeze counts every API call against the key; refused calls are not counted."""
        served = [c.time for c in self.calls if c.endpoint in API_ENDPOINTS and c.fault is None]
        if sum(1 for t in served if t >= ist_day_start(now)) >= self.per_day:
            return "day_limit", DAY_LIMIT
        if sum(1 for t in served if now - t < 60.0) >= self.per_minute:
            return "minute_limit", MINUTE_LIMIT
        return None

    def _session_refusal(self, headers: dict[str, str]) -> tuple[str, dict[str, Any]] | None:
        if self.expired:
            return "session_expired", SESSION_EXPIRED_V2
        expected = base64.b64encode(f"{FAKE_USER}:{self.session_key}".encode()).decode()
        if headers.get("apikey") != self.api_key or headers.get("x-sessiontoken") != expected:
            return "session_invalid", {"Success": None, "Status": 500, "Error": "Invalid session."}
        return None

    def _candles(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """The last ``candle_cap`` daily candles up to ``to_date``; [] for an unknown code."""
        code = params.get("stock_code", "").upper()
        if params.get("interval") != "1day" or code not in self.known_codes:
            return []
        start = dt.date.fromisoformat(params["from_date"][:10])
        end = dt.date.fromisoformat(params["to_date"][:10])
        end += dt.timedelta(days=self.to_date_slack_days)
        days = self.calendar.sessions(start, end)[-self.candle_cap :]
        return [fake_candle(code, day) for day in days]


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    @property
    def fake(self) -> FakeBreeze:
        return self.server.fake  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        hung = next((e for e in self.fake.hang_on if url.path.endswith("/" + e)), None)
        if hung is not None:
            self.fake.hang(hung)
            self.close_connection = True
        elif url.path.endswith("/" + SECURITY_MASTER):
            self._send(200, self.fake.security_master(), "application/zip")
        elif url.path.endswith("/breezeapi/api/v1/" + CUSTOMER_DETAILS):
            self._send_json(200, self.fake.customer_details(self._json_body()))
        elif url.path.endswith("/api/v2/" + HISTORICAL_CHARTS):
            params = {k: v[-1] for k, v in parse_qs(url.query).items()}
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, body = self.fake.historical_charts(params, headers)
            if status == _HANG:
                self.fake.hang()
            if status in (_NO_REPLY, _HANG):
                self.close_connection = True
            elif isinstance(body, str):
                self._send(status, body.encode(), "text/html")
            else:
                self._send_json(status, body)
        else:
            self._send(404, b"not found", "text/plain")

    def _json_body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            return {}
        return body if isinstance(body, dict) else {}

    def _send_json(self, status: int, body: dict[str, Any]) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(HTTPStatus(status))
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the fake keeps its own call log."""
