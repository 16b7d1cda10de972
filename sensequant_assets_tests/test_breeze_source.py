"""BreezeSource driving the real breeze-connect SDK against the fake server on 127.0.0.1.

The fault section drives it against servers that never answer, fail for good, echo the
credentials or sit behind a locked call ledger.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import logging
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from logging.handlers import RotatingFileHandler
from pathlib import Path
from random import Random
from typing import Any
from urllib.request import urlopen

import pytest

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.settings import load_settings
from sensequant_assets.sources import build_source
from sensequant_assets.sources.backoff import Backoff
from sensequant_assets.sources.base import MarketDataSource, SourceError
from sensequant_assets.sources.breeze import BreezeSource
from sensequant_assets.sources.breeze_errors import (
    BreezeRequestFailed,
    BreezeSessionExpired,
    BreezeUnknownCode,
)
from sensequant_assets.sources.breeze_logs import rotate_sdk_logs
from sensequant_assets.sources.breeze_replies import candles_frame, classify_reply
from sensequant_assets.sources.rate_limit import (
    LOCK_KEY,
    CallLedger,
    LedgerUnavailable,
    QuotaExhausted,
    peak_in_window,
)
from sensequant_assets.universe import Universe, load_universe, scrip_master_codes
from sensequant_assets_tests.databases import DRIVER_ERRORS, execute, write_locked
from sensequant_assets_tests.fake_breeze import (
    CUSTOMER_DETAILS,
    ECHO_REQUEST,
    HANG,
    HISTORICAL_CHARTS,
    SECURITY_MASTER,
    FakeBreeze,
)

API_KEY = "apikey-7Q2WX9"
API_SECRET = "secret-K8ZP31"
SESSION_TOKEN = "51234987"
ACTIONABLE = (
    "https://api.icicidirect.com/apiuser/login?api_key=<your BREEZE_API_KEY>",
    "API_Session",
    "BREEZE_SESSION_TOKEN",
    "midnight IST",
)
# 2026-03-02 10:00 IST, a Monday.
T0 = dt.datetime(2026, 3, 2, 4, 30, tzinfo=dt.UTC).timestamp()


class FakeClock:
    """A clock that only moves when someone sleeps; safe to share between threads."""

    def __init__(self, start: float = T0):
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


@pytest.fixture(scope="session")
def calendar() -> TradingCalendar:
    return TradingCalendar()


@pytest.fixture(scope="session")
def sdk_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SDK home for the session: the SDK is imported once per process, logs and all."""
    return tmp_path_factory.mktemp("breeze_sdk")


@pytest.fixture
def fake() -> Iterator[FakeBreeze]:
    with FakeBreeze(api_key=API_KEY, api_secret=API_SECRET, session_token=SESSION_TOKEN) as server:
        yield server


@pytest.fixture
def make_source(tmp_path: Path, sdk_home: Path, calendar: TradingCalendar):
    def build(
        server: FakeBreeze,
        *,
        universe: Universe | None = None,
        ledger: CallLedger | None = None,
        **options: Any,
    ) -> tuple[BreezeSource, list[float]]:
        sleeps: list[float] = []
        options.setdefault("sleep", sleeps.append)
        # No jitter unless a test asks for it, so that waits can be compared exactly.
        options.setdefault("random", lambda: 0.0)
        source = BreezeSource(
            api_key=API_KEY,
            api_secret=API_SECRET,
            session_token=SESSION_TOKEN,
            universe=universe or load_universe(),
            calendar=calendar,
            ledger=ledger or CallLedger(tmp_path / "calls.sqlite"),
            sdk_home=sdk_home,
            base_url=server.base_url,
            **options,
        )
        return source, sleeps

    return build


def _dates(frame: Any) -> list[dt.date]:
    return [dt.date.fromisoformat(d[:10]) for d in frame["date"]]


# --- fetching ------------------------------------------------------------------------------


def test_three_years_for_one_symbol_take_one_call(
    fake: FakeBreeze, make_source, calendar: TradingCalendar, tmp_path: Path
) -> None:
    source, sleeps = make_source(fake)
    assert isinstance(source, MarketDataSource)
    start, end = dt.date(2023, 1, 2), dt.date(2025, 12, 31)

    frame = source.fetch("RELIANCE", start, end)

    assert source.calls_made == 1 and len(fake.history_calls()) == 1
    call = fake.history_calls()[0]
    assert (call.stock_code, call.from_date, call.to_date) == (
        "RELIND",
        "2023-01-02T07:00:00.000Z",
        "2025-12-31T07:00:00.000Z",
    )
    assert list(frame.columns) == ["date", "open", "high", "low", "close", "volume", "symbol"]
    assert _dates(frame) == calendar.sessions(start, end)
    assert frame["date"].iloc[0] == "2023-01-02 00:00:00"
    assert set(frame["symbol"]) == {"RELIANCE"}
    assert sleeps == []
    assert not (tmp_path / "logs").exists(), "the SDK's logs/ belongs under sdk_home"


@pytest.mark.parametrize(
    ("cap", "start", "end", "expected_calls"),
    [
        (100, dt.date(2024, 1, 1), dt.date(2024, 12, 31), 3),
        (1000, dt.date(2019, 1, 1), dt.date(2023, 12, 31), 2),
    ],
)
def test_ranges_beyond_the_cap_split_by_candles_counting_back(
    make_source,
    calendar: TradingCalendar,
    cap: int,
    start: dt.date,
    end: dt.date,
    expected_calls: int,
) -> None:
    with FakeBreeze(api_key=API_KEY, session_token=SESSION_TOKEN, candle_cap=cap) as server:
        source, _ = make_source(server, chunk_candles=cap)
        frame = source.fetch("INFY", start, end)

    calls = server.history_calls()
    assert len(calls) == expected_calls == source.calls_made
    assert calls[0].to_date == f"{end}T07:00:00.000Z"
    assert all(c.candles == cap for c in calls[:-1]) and server.max_candles_per_reply() == cap
    assert calls[-1].from_date == f"{start}T07:00:00.000Z"
    for earlier, later in itertools.pairwise(calls):
        assert later.to_date < earlier.to_date
    assert _dates(frame) == calendar.sessions(start, end)


def test_candles_repeated_across_a_chunk_boundary_are_dropped(
    make_source, calendar: TradingCalendar
) -> None:
    # A server that serves a few days past to_date repeats the previous chunk's first candles.
    with FakeBreeze(
        api_key=API_KEY, session_token=SESSION_TOKEN, candle_cap=50, to_date_slack_days=4
    ) as server:
        source, _ = make_source(server, chunk_candles=50)
        frame = source.fetch("TCS", dt.date(2024, 1, 1), dt.date(2024, 6, 28))

    assert len(server.history_calls()) > 2
    assert frame["date"].is_unique
    assert _dates(frame) == calendar.sessions(dt.date(2024, 1, 1), dt.date(2024, 7, 2))


def test_a_range_without_sessions_makes_no_call(fake: FakeBreeze, make_source) -> None:
    source, _ = make_source(fake)
    frame = source.fetch("TCS", dt.date(2024, 1, 6), dt.date(2024, 1, 7))
    assert frame.empty and list(frame.columns)[-1] == "symbol"
    assert fake.calls == [] and source.calls_made == 0


def test_rows_stay_as_received_and_a_foreign_stock_code_stays_visible() -> None:
    candles = [
        {"datetime": "2024-01-03 00:00:00", "open": "1", "close": 2, "stock_code": "RELIND"},
        {"datetime": "2024-01-02 00:00:00", "open": 5, "close": 6, "stock_code": "TCS"},
        {"datetime": "2024-01-02 00:00:00", "open": 5, "close": 6, "stock_code": "TCS"},
    ]
    frame = candles_frame(candles, "RELIANCE", "RELIND")
    assert list(frame["symbol"]) == ["TCS", "TCS", "RELIANCE"]
    assert frame["open"].iloc[2] == "1"


def test_security_master_has_icici_header_format(fake: FakeBreeze, tmp_path: Path) -> None:
    with urlopen(f"{fake.base_url}/SecurityMaster.zip") as reply:
        archive = zipfile.ZipFile(io.BytesIO(reply.read()))
    path = tmp_path / "NSEScripMaster.txt"
    path.write_bytes(archive.read("NSEScripMaster.txt"))
    assert scrip_master_codes(path)["RELIANCE"] == "RELIND"


# --- error shapes --------------------------------------------------------------------------


def test_per_minute_limit_reply_is_retried_with_backoff(fake: FakeBreeze, make_source) -> None:
    source, sleeps = make_source(fake)
    fake.fail_next("minute_limit", "minute_limit")
    frame = source.fetch("TCS", dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    assert not frame.empty
    assert sleeps == [2.0, 4.0] and source.calls_made == 3


def test_non_json_and_5xx_replies_are_retried(fake: FakeBreeze, make_source) -> None:
    source, sleeps = make_source(fake, backoff_seconds=0.5)
    fake.fail_next("html_502", "error_500")
    frame = source.fetch("TCS", dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    assert len(frame) > 50
    assert sleeps == [0.5, 1.0]
    assert [c.fault for c in fake.history_calls()] == ["html_502", "error_500", None]


def test_exhausted_retries_name_symbol_code_range_and_last_error(
    fake: FakeBreeze, make_source
) -> None:
    source, sleeps = make_source(fake, max_retries=2)
    fake.fail_next("error_500", "html_502", "error_500")
    with pytest.raises(BreezeRequestFailed) as caught:
        source.fetch("RELIANCE", dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    message = str(caught.value)
    for part in ("RELIANCE", "RELIND", "2024-01-01", "2024-03-31", "Internal Server Error"):
        assert part in message
    assert source.calls_made == 3 and sleeps == [2.0, 4.0]


def test_per_day_limit_reply_raises_quota_exhausted_at_once(fake: FakeBreeze, make_source) -> None:
    source, sleeps = make_source(fake)
    fake.fail_next("day_limit")
    with pytest.raises(QuotaExhausted, match="midnight IST"):
        source.fetch("TCS", dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    assert sleeps == [] and source.calls_made == 1


def test_server_day_limit_is_honoured(make_source) -> None:
    with FakeBreeze(api_key=API_KEY, session_token=SESSION_TOKEN, per_day=2) as server:
        source, _ = make_source(server)
        source.fetch("TCS", dt.date(2024, 1, 1), dt.date(2024, 3, 31))
        with pytest.raises(QuotaExhausted, match="per day"):
            source.fetch("INFY", dt.date(2024, 1, 1), dt.date(2024, 3, 31))


def test_ledger_day_budget_stops_calls_before_they_are_made(
    fake: FakeBreeze, make_source, new_database
) -> None:
    ledger = CallLedger(new_database("tight"), per_day=2)
    source, _ = make_source(fake, ledger=ledger)
    source.fetch("TCS", dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    with pytest.raises(QuotaExhausted, match=r"2 of 2 calls.*resets at midnight IST"):
        source.fetch("INFY", dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    assert len(fake.history_calls()) == 1


def test_expired_session_at_start_is_actionable(make_source) -> None:
    with FakeBreeze(api_key=API_KEY, session_token=SESSION_TOKEN, expired=True) as server:
        source, sleeps = make_source(server)
        with pytest.raises(BreezeSessionExpired) as caught:
            source.fetch("TCS", dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    assert all(part in str(caught.value) for part in ACTIONABLE)
    assert "expired" in str(caught.value)
    assert server.history_calls() == [] and sleeps == []


def test_wrong_session_token_is_reported_as_a_session_problem(make_source) -> None:
    with FakeBreeze(api_key=API_KEY, session_token="99999999") as server:
        source, _ = make_source(server)
        with pytest.raises(BreezeSessionExpired, match="check session key"):
            source.fetch("TCS", dt.date(2024, 1, 1), dt.date(2024, 3, 31))


def test_session_expiring_mid_run_stops_at_once(fake: FakeBreeze, make_source) -> None:
    source, sleeps = make_source(fake)
    source.fetch("TCS", dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    fake.fail_next("session_expired")
    with pytest.raises(BreezeSessionExpired) as caught:
        source.fetch("INFY", dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    assert all(part in str(caught.value) for part in ACTIONABLE)
    assert sleeps == [] and source.calls_made == 2


def test_silent_empty_reply_means_unknown_code(fake: FakeBreeze, make_source) -> None:
    universe = load_universe().with_codes({"RELIANCE": "RELXYZ"})
    source, _ = make_source(fake, universe=universe)
    with pytest.raises(BreezeUnknownCode) as caught:
        source.fetch("RELIANCE", dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    message = str(caught.value)
    for part in ("RELIANCE", "RELXYZ", "NSEScripMaster.txt", "SENSEQUANT_SCRIP_MASTER"):
        assert part in message
    assert isinstance(caught.value, SourceError)


def test_reply_classification() -> None:
    assert classify_reply({"Success": [], "Status": 200, "Error": None}).kind == "ok"
    assert classify_reply({"Status": 5, "Error": "Limit exceed: API call per day: "}).kind == (
        "quota"
    )
    assert classify_reply({"Success": None, "Status": 500, "Error": "Oops"}).kind == "retry"
    assert classify_reply({"Success": None, "Status": 400, "Error": "Bad code"}).kind == "fail"
    assert classify_reply(None).kind == "retry"


# --- rate limits ---------------------------------------------------------------------------


def test_ledger_never_exceeds_the_minute_budget_across_threads(new_database) -> None:
    clock = FakeClock()
    location = new_database("calls")
    ledger = CallLedger(location, per_minute=10, clock=clock, sleep=clock.sleep)

    def worker() -> None:
        for _ in range(15):
            ledger.acquire("test")

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stamps = [ts for (ts,) in execute(location, "SELECT ts FROM calls")]
    stats = ledger.stats()
    assert stats.calls_today == len(stamps) == 90
    assert stats.peak_minute_today == peak_in_window(stamps) == 10
    assert clock.sleeps, "the ledger must have waited"


def test_ledger_day_budget_resets_at_midnight_ist(new_database) -> None:
    clock = FakeClock(dt.datetime(2026, 3, 2, 18, 29, tzinfo=dt.UTC).timestamp())  # 23:59 IST
    ledger = CallLedger(new_database("calls"), per_day=3, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        ledger.acquire()
    with pytest.raises(QuotaExhausted, match=r"3 of 3 calls used today.*midnight IST"):
        ledger.acquire("breeze:TCS")
    clock.sleep(61)
    ledger.acquire()
    assert ledger.stats().calls_today == 1


def test_ledger_keeps_the_server_within_its_minute_limit(make_source, new_database) -> None:
    clock = FakeClock()
    ledger = CallLedger(new_database("calls"), per_minute=3, clock=clock, sleep=clock.sleep)
    with FakeBreeze(
        api_key=API_KEY, session_token=SESSION_TOKEN, per_minute=3, clock=clock
    ) as server:
        source, _ = make_source(server, ledger=ledger, sleep=clock.sleep)
        for symbol in ("TCS", "INFY", "RELIANCE", "HDFCBANK", "ITC"):
            source.fetch(symbol, dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    assert [c.fault for c in server.calls if c.fault] == []
    assert server.peak_calls_per_minute() == 3
    assert sum(clock.sleeps) > 60


# --- secrets and import hygiene ------------------------------------------------------------


def test_secrets_never_leak(
    fake: FakeBreeze, make_source, sdk_home: Path, tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    source, _ = make_source(fake)
    source.fetch("TCS", dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    fake.fail_next("html_502", "error_500", "session_expired")
    with pytest.raises(BreezeSessionExpired) as caught:
        source.fetch("INFY", dt.date(2024, 1, 1), dt.date(2024, 3, 31))

    secrets = (API_KEY, API_SECRET, SESSION_TOKEN, fake.session_key)
    sdk = sys.modules["breeze_connect.breeze_connect"]
    files = [p for p in sdk_home.rglob("*") if p.is_file()]
    files += [Path(sdk.api_handler.baseFilename), tmp_path / "calls.sqlite"]
    assert any(p.name == "apiLogs.log" for p in files)
    texts = [str(caught.value), repr(source), str(vars(source))]
    texts += [r.getMessage() for r in caplog.records]
    texts += [p.read_bytes().decode("utf-8", "replace") for p in files]
    assert any("INFY" in r.getMessage() for r in caplog.records)
    for secret in secrets:
        assert not any(secret in text for text in texts), secret


def test_sources_aimed_at_different_servers_each_reach_their_own(make_source) -> None:
    with (
        FakeBreeze(api_key=API_KEY, session_token=SESSION_TOKEN) as first,
        FakeBreeze(api_key=API_KEY, session_token=SESSION_TOKEN) as second,
    ):
        source_a, _ = make_source(first)
        source_b, _ = make_source(second)
        for source in (source_a, source_b, source_a):
            source.fetch("TCS", dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    assert len(first.history_calls()) == 2 and len(second.history_calls()) == 1


SDK_IMPORT_SCRIPT = """
import datetime as dt, os, pathlib, sys, types
from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.sources.breeze import BreezeSource
from sensequant_assets.sources.rate_limit import CallLedger
from sensequant_assets.universe import load_universe
from sensequant_assets_tests.fake_breeze import (
    CUSTOMER_DETAILS,
    ECHO_REQUEST,
    HANG,
    HISTORICAL_CHARTS,
    SECURITY_MASTER,
    FakeBreeze,
)

project_config = types.ModuleType("config")
sys.modules["config"] = project_config
path_before = list(sys.path)
home = pathlib.Path(sys.argv[1])
with FakeBreeze() as fake:
    source = BreezeSource(
        api_key=fake.api_key, api_secret=fake.api_secret, session_token=fake.session_token,
        universe=load_universe(), calendar=TradingCalendar(),
        ledger=CallLedger(home / "calls.sqlite"), sdk_home=home / "sdk", base_url=fake.base_url,
    )
    assert len(source.fetch("TCS", dt.date(2024, 1, 1), dt.date(2024, 1, 31))) > 15
assert sys.modules["config"] is project_config, "config not restored"
assert sys.path == path_before, "sys.path not restored"
assert (home / "sdk" / "logs" / "apiLogs.log").is_file()
assert not pathlib.Path("logs").exists()
"""


def test_sdk_import_leaves_config_path_and_cwd_as_found(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", SDK_IMPORT_SCRIPT, str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]


def test_importing_the_module_does_not_import_the_sdk() -> None:
    code = (
        "import sys, sensequant_assets.sources.breeze; "
        "assert 'breeze_connect' not in sys.modules, 'SDK imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- faults: servers that never answer, bounded retries, a busy ledger, echoed secrets ------

# Slack for a shared 2-core machine on top of a timeout; the point is "bounded", not "fast".
MARGIN_SECONDS = 2.0


def test_a_server_that_never_answers_fails_within_the_timeout_naming_the_symbol(
    make_source,
) -> None:
    with FakeBreeze(
        api_key=API_KEY, session_token=SESSION_TOKEN, hang_on=[HISTORICAL_CHARTS]
    ) as server:
        source, sleeps = make_source(server, timeout_seconds=1.0, max_retries=0)
        started = time.monotonic()
        with pytest.raises(SourceError) as caught:
            source.fetch("RELIANCE", dt.date(2024, 1, 1), dt.date(2024, 3, 31))
        elapsed = time.monotonic() - started
    message = str(caught.value)
    assert isinstance(caught.value, BreezeRequestFailed)
    assert elapsed < 1.0 + MARGIN_SECONDS
    for part in ("NSE symbol RELIANCE", "2024-01-01", "2024-03-31", "no reply within 1 s"):
        assert part in message
    assert "SENSEQUANT_BREEZE_TIMEOUT_SECONDS" in message and "\n" not in message
    assert [c.fault for c in server.history_calls()] == [HANG] and sleeps == []


def test_the_timeout_setting_reaches_the_source(
    monkeypatch: pytest.MonkeyPatch, calendar: TradingCalendar
) -> None:
    with FakeBreeze(
        api_key=API_KEY, session_token=SESSION_TOKEN, hang_on=[HISTORICAL_CHARTS]
    ) as server:
        for name, value in {
            "SENSEQUANT_DATA_SOURCE": "breeze",
            "BREEZE_API_KEY": API_KEY,
            "BREEZE_API_SECRET": API_SECRET,
            "BREEZE_SESSION_TOKEN": SESSION_TOKEN,
            "BREEZE_BASE_URL": server.base_url,
            "SENSEQUANT_BREEZE_TIMEOUT_SECONDS": "1",
            "SENSEQUANT_BREEZE_MAX_RETRIES": "0",
        }.items():
            monkeypatch.setenv(name, value)
        source = build_source(load_settings(), load_universe(), calendar)
        with pytest.raises(BreezeRequestFailed, match=r"no reply within 1 s"):
            source.fetch("ITC", dt.date(2024, 1, 1), dt.date(2024, 1, 31))


def test_a_session_call_that_never_answers_is_bounded_too(make_source) -> None:
    with FakeBreeze(
        api_key=API_KEY, session_token=SESSION_TOKEN, hang_on=[CUSTOMER_DETAILS]
    ) as server:
        source, _ = make_source(server, timeout_seconds=1.0, max_retries=0)
        started = time.monotonic()
        with pytest.raises(BreezeRequestFailed, match=r"session opening .* NSE symbol TCS"):
            source.fetch("TCS", dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    assert time.monotonic() - started < 1.0 + MARGIN_SECONDS
    assert server.history_calls() == []


def test_a_stalled_security_master_at_session_opening_is_bounded(
    fake: FakeBreeze, make_source
) -> None:
    """The SDK downloads the master again in ``generate_session`` (and shrugs off failures)."""
    make_source(fake)[0].fetch("TCS", dt.date(2024, 1, 1), dt.date(2024, 1, 31))  # SDK loaded
    fake.hang_on = {SECURITY_MASTER}
    source, _ = make_source(fake, timeout_seconds=1.0)
    started = time.monotonic()
    frame = source.fetch("INFY", dt.date(2024, 1, 1), dt.date(2024, 1, 31))
    assert time.monotonic() - started < 2 * 1.0 + MARGIN_SECONDS
    assert not frame.empty
    assert any(c.endpoint == SECURITY_MASTER and c.fault == HANG for c in fake.calls)


def test_timeouts_and_dropped_connections_are_retried(fake: FakeBreeze, make_source) -> None:
    source, sleeps = make_source(fake, timeout_seconds=1.0)
    fake.fail_next(HANG, "drop_connection")
    frame = source.fetch("TCS", dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    assert not frame.empty and source.calls_made == 3
    assert sleeps == [2.0, 4.0]


def test_retries_are_bounded_and_waits_capped_and_jittered(make_source) -> None:
    draws = iter([0.0, 0.5, 1.0, 0.2])
    with FakeBreeze(
        api_key=API_KEY, session_token=SESSION_TOKEN, fail_pattern="F", fail_with=["error_500"]
    ) as server:
        source, sleeps = make_source(
            server,
            max_retries=4,
            backoff_seconds=1.0,
            backoff_max_seconds=3.0,
            random=lambda: next(draws),
        )
        with pytest.raises(BreezeRequestFailed, match=r"failed after 5 attempt\(s\)"):
            source.fetch("TCS", dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    assert source.calls_made == 5 == len(server.history_calls())
    # Ceilings 1, 2, 3 (capped), 3 (capped); each less half of it times the draw.
    assert sleeps == pytest.approx([1.0, 1.5, 1.5, 2.7])


def test_backoff_doubles_up_to_the_cap_and_jitter_stays_within_its_share() -> None:
    ceilings = [2.0, 4.0, 8.0, 10.0, 10.0]
    assert [Backoff(2.0, 10.0, random=lambda: 0.0).delay(n) for n in range(5)] == ceilings
    assert [Backoff(2.0, 10.0, random=lambda: 1.0).delay(n) for n in range(5)] == [
        c / 2 for c in ceilings
    ]
    seeded = Backoff(2.0, 10.0, random=Random(7).random)
    delays = [seeded.delay(n) for n in range(5)]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays[3:])) == 2, "capped waits are still spread out"
    assert Backoff(2.0, 10.0, random=lambda: 0.0).delay(10_000) == 10.0
    with pytest.raises(ValueError):
        Backoff(2.0, 10.0, jitter=1.5)


def test_definite_failures_are_not_retried(fake: FakeBreeze, make_source) -> None:
    source, sleeps = make_source(fake, timeout_seconds=1.0)
    fake.fail_next(ECHO_REQUEST)  # a 400: the request itself is wrong
    with pytest.raises(BreezeRequestFailed, match="Status 400"):
        source.fetch("TCS", dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    assert source.calls_made == 1 and sleeps == []


def test_a_reply_quoting_the_credentials_is_redacted(
    fake: FakeBreeze, make_source, caplog, capfd
) -> None:
    caplog.set_level(logging.DEBUG)
    source, _ = make_source(fake)
    source.fetch("TCS", dt.date(2024, 1, 1), dt.date(2024, 1, 31))
    fake.fail_next(ECHO_REQUEST)
    with pytest.raises(BreezeRequestFailed) as caught:
        source.fetch("INFY", dt.date(2024, 2, 1), dt.date(2024, 2, 29))

    message = str(caught.value)
    assert "\n" not in message and "***" in message
    for part in ("NSE symbol INFY", "2024-02-01", "2024-02-29", "Status 400"):
        assert part in message
    header = source._client.api_handler.base64_session_token
    secrets = (API_KEY, API_SECRET, SESSION_TOKEN, fake.session_key, header)
    captured = capfd.readouterr()
    texts = [message, captured.out, captured.err, *(r.getMessage() for r in caplog.records)]
    for secret in secrets:
        assert not any(secret in text for text in texts), secret


def test_a_busy_ledger_is_a_source_error(new_database) -> None:
    location = new_database("calls")
    ledger = CallLedger(location, busy_timeout=0.1)
    with write_locked(location, LOCK_KEY), pytest.raises(LedgerUnavailable) as caught:
        ledger.acquire("breeze:TCS")
    assert isinstance(caught.value, SourceError)
    assert not isinstance(caught.value, DRIVER_ERRORS)
    assert "locked" in str(caught.value) and ledger.where in str(caught.value)
    assert "\n" not in str(caught.value)
    assert "breeze:TCS" in str(caught.value)
    ledger.acquire("breeze:TCS")  # free again once the other writer is done


def test_a_busy_ledger_fails_the_fetch_by_name_before_any_call(
    fake: FakeBreeze, make_source, new_database
) -> None:
    location = new_database("busy")
    ledger = CallLedger(location, busy_timeout=0.1)
    source, _ = make_source(fake, ledger=ledger)
    with write_locked(location, LOCK_KEY), pytest.raises(LedgerUnavailable) as caught:
        source.fetch("TCS", dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    message = str(caught.value)
    for part in ("NSE symbol TCS", "2024-01-01", "2024-03-31", "locked", ledger.where):
        assert part in message
    assert fake.calls == []


IMPORT_TIMEOUT_SCRIPT = """
import datetime as dt, pathlib, sys, time
from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.sources.breeze_errors import BreezeRequestFailed
from sensequant_assets.sources.breeze import BreezeSource
from sensequant_assets.sources.rate_limit import CallLedger
from sensequant_assets.universe import load_universe
from sensequant_assets_tests.fake_breeze import HANG, SECURITY_MASTER, FakeBreeze

home, timeout, bound = pathlib.Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
with FakeBreeze(hang_on=[SECURITY_MASTER]) as fake:
    source = BreezeSource(
        api_key=fake.api_key, api_secret=fake.api_secret, session_token=fake.session_token,
        universe=load_universe(), calendar=TradingCalendar(), ledger=CallLedger(home / "c.db"),
        sdk_home=home / "sdk", base_url=fake.base_url, timeout_seconds=timeout,
    )
    started = time.monotonic()
    try:
        source.fetch("TCS", dt.date(2024, 1, 1), dt.date(2024, 1, 31))
    except BreezeRequestFailed as exc:
        message = str(exc)
    else:
        raise AssertionError("the import should have timed out")
    elapsed = time.monotonic() - started
    assert elapsed < bound, elapsed
    assert "breeze_connect" not in sys.modules, "a failed import must not linger"
    for part in ("SecurityMaster.zip", "at import time", "no reply within", "NSE symbol TCS"):
        assert part in message, message
    assert [c.fault for c in fake.calls] == [HANG], fake.calls
    fake.hang_on = set()  # healed: the next fetch imports the SDK and succeeds
    assert len(source.fetch("TCS", dt.date(2024, 1, 1), dt.date(2024, 1, 31))) > 15
"""


def test_the_import_time_security_master_download_is_bounded(tmp_path: Path) -> None:
    # A fresh interpreter: the SDK is imported (and downloads the master) once per process.
    timeout, bound = 1.0, 1.0 + MARGIN_SECONDS
    run = subprocess.run(
        [sys.executable, "-c", IMPORT_TIMEOUT_SCRIPT, str(tmp_path), str(timeout), str(bound)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]


def test_the_sdk_logs_rotate(fake: FakeBreeze, make_source, tmp_path: Path) -> None:
    """The SDK's DEBUG file logs would grow without bound on a long-lived run worker.

    The SDK is imported once per process, under whichever test's SDK home came first, so
    only the handlers' kind and the file's name are the SDK's own here."""
    source, _ = make_source(fake)
    source.fetch("RELIANCE", dt.date(2024, 1, 1), dt.date(2024, 1, 31))
    handlers = logging.getLogger("APILogger").handlers
    files = [h for h in handlers if isinstance(h, logging.FileHandler)]
    assert files and all(isinstance(h, RotatingFileHandler) for h in files)
    assert all(Path(h.baseFilename).parts[-2:] == ("logs", "apiLogs.log") for h in files)

    probe = logging.getLogger("sensequant-test-sdk-probe")
    plain = logging.FileHandler(tmp_path / "probe.log")
    probe.addHandler(plain)
    rotated = rotate_sdk_logs(("sensequant-test-sdk-probe",), max_bytes=200, backups=2)
    assert rotated == [str(tmp_path / "probe.log")]
    for _ in range(20):
        probe.warning("x" * 50)
    assert sorted(p.name for p in tmp_path.glob("probe.log*")) == [
        "probe.log", "probe.log.1", "probe.log.2"
    ]  # fmt: skip
    for handler in list(probe.handlers):
        probe.removeHandler(handler)
        handler.close()
