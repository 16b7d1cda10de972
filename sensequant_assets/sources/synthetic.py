"""Offline, deterministic daily OHLCV for every instrument in the universe.

The synthetic source lets the whole platform run (and be tested) without a broker account, so
the series must look like real NSE data to every downstream stage: factor structure, volatility
clustering, fat tails, crashes on the real stress windows, valid OHLC bars and volumes.

Model (per weekday from ``ORIGIN``; a holiday's return rolls into the next session)::

    market  m_t = d_t + v_t·σm_t·zm_t
    stock   r_t = β·m_t + σs_t·zs_t + σi_t·zi_t (+ μ_t, the planted signal below)
    index   r_t = m_t                            (NIFTY50: the market factor alone)

Each σ follows GARCH(1,1), ``σ²_t = ω + σ²_{t-1}·(α·z²_{t-1} + b)``, capped at ``VOL_CAP``
times its long-run level, and every z is a Student-t (df 4) scaled to unit variance. The
sector term is shared by all symbols of a sector; β is drawn per symbol in ``BETA_RANGE``
(``ETF_BETA_RANGE`` for the gold/silver ETFs). The market drift d_t is ``MARKET_DRIFT`` a year,
plus ``CRISIS_DEPTH·log(1 + max_drawdown) / weekdays`` on each weekday of each window of
``reference/stress_windows.csv``; there v_t = 1 + (that daily drift / normal daily vol), so a
fast crash is also a volatile one while a slow one is not swamped by noise. Overlapping windows
add their drifts and take the larger v_t, so nothing compounds.

Determinism: every random component comes from its own numpy Generator seeded with a
BLAKE2 hash of (seed, component, symbol or sector) and draws one array over the fixed weekday
grid, so longer requests only append values and a value never depends on the requested range.
Price levels are pinned at ``ANCHOR`` (2023-01-02) to a symbol-specific level.

Planted signal (``signal_strength`` s in [0, 1], setting ``SENSEQUANT_SYNTHETIC_SIGNAL_STRENGTH``):
with s = 0 every return is a stochastic-volatility random walk whose only mean is the constant
market drift and the fixed stress-window drifts, neither of which depends on past prices.
With s > 0 every series except the index gets, on session t+1, the extra log return::

    μ_{t+1} = s·κ·σ̂_t·tanh(z_t),   z_t = log(close_t / close_{t-10}) / (σ̂_t·√10),
    σ̂_t = root mean square of the last 20 session log returns of close,   κ = KAPPA = 0.18

a weak, bounded momentum that depends only on the symbol's own closes up to t.
``planted_signal(close)`` returns ``tanh(z_t)``, that exact observable. At s = 1 its daily rank
correlation with the next session's return is about 0.12 (0.10-0.14 across seeds), at s = 0.5
about 0.06: the drift scales linearly with s. κ stays below 1/√10 so the feedback (drift
raising z, raising the drift) contracts instead of producing runaway trends.

Defects (``defects``, setting ``SENSEQUANT_SYNTHETIC_DEFECTS``) imitate vendor errors so the
quality rules can be exercised. Placement is hashed per (seed, kind, symbol) on the weekday
grid: ``negative_volume``, ``broken_ohlc`` (high and low swapped) and ``missing_days`` each hit
one session in every block of 20 weekdays (in disjoint slots, so kinds never mask each other),
and any 60 sessions span at least two whole blocks; ``unadjusted_split`` puts one ex-date per
symbol per calendar year from which prices are halved and volume doubled, cumulatively, with
the factor equal to 1 at ``ANCHOR`` (so years before it carry doubled prices and halved
volumes, floored at 1 share; the index never splits). A request needs a whole year to be sure
of containing an ex-date.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.settings import DEFECT_KINDS
from sensequant_assets.sources.base import OHLCV_COLUMNS
from sensequant_assets.universe import Universe

ORIGIN = dt.date(2005, 1, 3)
ANCHOR = dt.date(2023, 1, 2)
WEEKDAYS_PER_YEAR = 261

T_DF = 4.0
GARCH_ALPHA = 0.08
GARCH_BETA = 0.90
VOL_CAP = 4.0

MARKET_VOL = 0.16
MARKET_DRIFT = 0.12
SECTOR_VOL = 0.13
IDIO_VOL_RANGE = (0.13, 0.24)
BETA_RANGE = (0.6, 1.4)
ETF_BETA_RANGE = (0.0, 0.3)
PRICE_RANGE = (50.0, 5000.0)
INDEX_LEVEL = 18000.0
VOLUME_RANGE = (2e5, 2e7)
INDEX_VOLUME = 3e8

CRISIS_DEPTH = 1.1

GAP_SHARE = 0.3
GAP_NOISE = 0.3
RANGE_SCALE = 0.5
VOLUME_NOISE = 0.4
VOLUME_SHOCK = 0.3

KAPPA = 0.18
VOL_WINDOW = 20
MOMENTUM_WINDOW = 10

DEFECT_BLOCK = 20
ROW_DEFECTS = ("negative_volume", "broken_ohlc", "missing_days")


def planted_signal(close: pd.Series) -> pd.Series:
    """``tanh(z_t)``: the causal observable behind the planted drift (see the module docstring).

    ``close`` must be one symbol's closes in session order; the value at t uses closes up to t
    only, and is NaN for the first ``VOL_WINDOW`` sessions.
    """
    log_close = np.log(close.astype("float64"))
    returns = log_close.diff()
    sigma = np.sqrt((returns**2).rolling(VOL_WINDOW).mean())
    momentum = log_close - log_close.shift(MOMENTUM_WINDOW)
    return np.tanh(momentum / (sigma * math.sqrt(MOMENTUM_WINDOW))).rename("planted_signal")


def _stable_seed(*parts: object) -> int:
    """A 64-bit seed that, unlike ``hash()``, is the same in every process."""
    key = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")


def _rng(*parts: object) -> np.random.Generator:
    return np.random.default_rng(_stable_seed(*parts))


def _uniform(low: float, high: float, *parts: object) -> float:
    return low + (high - low) * _stable_seed(*parts) / 2.0**64


def _log_uniform(low: float, high: float, *parts: object) -> float:
    return math.exp(_uniform(math.log(low), math.log(high), *parts))


def _student_t(rng: np.random.Generator, n: int) -> np.ndarray:
    """Fat-tailed innovations with unit variance."""
    return rng.standard_t(T_DF, n) / math.sqrt(T_DF / (T_DF - 2.0))


def _garch_sigma(z: np.ndarray, daily_vol: float) -> np.ndarray:
    """Conditional volatility path driven by the innovations ``z`` (σ_t is known before z_t).

    The variance is capped at ``VOL_CAP``² times its long-run level: with df-4 shocks the
    uncapped recursion occasionally spirals into 100 % daily moves that no market shows.
    """
    variance = daily_vol * daily_vol
    omega = variance * (1.0 - GARCH_ALPHA - GARCH_BETA)
    cap = variance * VOL_CAP * VOL_CAP
    path = []
    for shock in z.tolist():
        path.append(variance)
        variance = omega + (GARCH_ALPHA * shock * shock + GARCH_BETA) * variance
        if variance > cap:
            variance = cap
    return np.sqrt(np.asarray(path))


def _add_planted_drift(returns: np.ndarray, strength: float) -> np.ndarray:
    """Session log returns plus μ_{t+1} = strength·κ·σ̂_t·tanh(z_t), built along the path.

    Running window sums reproduce ``planted_signal`` on the generated closes; the drift starts
    once ``VOL_WINDOW`` returns exist, exactly where ``planted_signal`` stops being NaN.
    """
    gain = strength * KAPPA
    root = math.sqrt(MOMENTUM_WINDOW)
    out = returns.tolist()
    squares = sum(r * r for r in out[:VOL_WINDOW])
    momentum = sum(out[VOL_WINDOW - MOMENTUM_WINDOW : VOL_WINDOW])
    drift = 0.0
    sqrt, tanh = math.sqrt, math.tanh
    for t in range(VOL_WINDOW, len(out)):
        r = out[t] + drift
        out[t] = r
        old = out[t - VOL_WINDOW]
        squares += r * r - old * old
        momentum += r - out[t - MOMENTUM_WINDOW]
        sigma = sqrt(squares / VOL_WINDOW)
        drift = gain * sigma * tanh(momentum / (sigma * root))
    return np.asarray(out)


@dataclass(frozen=True)
class _StressWindow:
    start: dt.date
    end: dt.date
    max_drawdown: float


@cache
def _stress_windows() -> tuple[_StressWindow, ...]:
    text = resources.files("sensequant_assets.reference").joinpath("stress_windows.csv")
    rows = csv.DictReader(text.read_text().splitlines())
    return tuple(
        _StressWindow(
            dt.date.fromisoformat(r["start"]),
            dt.date.fromisoformat(r["end"]),
            float(r["nifty50_max_drawdown"]),
        )
        for r in rows
    )


@dataclass(frozen=True)
class _Grid:
    """Weekdays from ORIGIN to a year end, and where the trading sessions sit among them."""

    horizon: dt.date
    weekdays: np.ndarray  # datetime64[D]
    session_pos: np.ndarray  # index into weekdays of each session
    session_of: np.ndarray  # for each weekday, the session its return rolls into
    sessions: np.ndarray  # datetime64[D]
    anchor: int  # session index of ANCHOR (or the first session after it)

    @classmethod
    def build(cls, horizon: dt.date, calendar: TradingCalendar) -> _Grid:
        """Sessions are the weekdays outside ``calendar.holidays``, as in ``calendar.sessions``."""
        weekdays = pd.bdate_range(ORIGIN, horizon).to_numpy().astype("datetime64[D]")
        holidays = np.array(sorted(calendar.holidays), dtype="datetime64[D]")
        session_pos = np.flatnonzero(~np.isin(weekdays, holidays))
        session_of = np.searchsorted(session_pos, np.arange(len(weekdays)))
        sessions = weekdays[session_pos]
        anchor = int(np.searchsorted(sessions, np.datetime64(ANCHOR)))
        return cls(horizon, weekdays, session_pos, session_of, sessions, anchor)

    @property
    def size(self) -> int:
        return len(self.weekdays)

    def to_sessions(self, per_weekday: np.ndarray) -> np.ndarray:
        """Sum a per-weekday quantity into sessions (a holiday's move shows up the day after)."""
        summed = np.bincount(self.session_of, weights=per_weekday, minlength=len(self.sessions))
        return summed[: len(self.sessions)]

    def first_session_from(self, weekday_pos: np.ndarray) -> np.ndarray:
        """Session index of the first session on or after each weekday position."""
        return self.session_of[weekday_pos]


class SyntheticSource:
    """Offline market data with a factor/GARCH model, optional planted signal and defects."""

    name = "synthetic"
    remote = False

    def __init__(
        self,
        universe: Universe,
        calendar: TradingCalendar,
        seed: int = 7,
        signal_strength: float = 0.0,
        defects: Sequence[str] = (),
    ):
        if not 0.0 <= signal_strength <= 1.0:
            raise ValueError(f"signal_strength must lie in [0, 1], got {signal_strength}")
        unknown = sorted(set(defects) - set(DEFECT_KINDS))
        if unknown:
            raise ValueError(f"unknown defect kind(s) {unknown}; choose from {list(DEFECT_KINDS)}")
        self.universe = universe
        self.calendar = calendar
        self.seed = seed
        self.signal_strength = signal_strength
        self.defects = frozenset(defects)
        self._grid: _Grid | None = None
        self._market: tuple[np.ndarray, np.ndarray] | None = None
        self._sectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._frames: dict[str, pd.DataFrame] = {}

    def fetch(self, symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        """Bars for the sessions in ``[start, end]`` (none before ``ORIGIN``)."""
        frame = self._frame(self.universe.get(symbol).symbol, end)
        dates = frame["date"].to_numpy()
        first = np.searchsorted(dates, np.datetime64(start, "ns"), side="left")
        last = np.searchsorted(dates, np.datetime64(end, "ns"), side="right")
        return frame.iloc[first:last].reset_index(drop=True).copy()

    def _frame(self, symbol: str, end: dt.date) -> pd.DataFrame:
        grid = self._grid_until(end)
        if symbol not in self._frames:
            self._frames[symbol] = self._build(symbol, grid)
        return self._frames[symbol]

    def _grid_until(self, end: dt.date) -> _Grid:
        """The cached grid, rebuilt (with every cached series) when ``end`` lies beyond it."""
        if self._grid is None or end > self._grid.horizon:
            horizon = dt.date(max(end.year, ANCHOR.year), 12, 31)
            self._grid = _Grid.build(horizon, self.calendar)
            self._market = None
            self._sectors.clear()
            self._frames.clear()
        return self._grid

    def _market_factor(self, grid: _Grid) -> tuple[np.ndarray, np.ndarray]:
        """Market log returns and their conditional volatility, per weekday."""
        if self._market is None:
            z = _student_t(_rng(self.seed, "market"), grid.size)
            sigma = _garch_sigma(z, MARKET_VOL / math.sqrt(WEEKDAYS_PER_YEAR))
            drift, vol_mult = self._crisis_profile(grid)
            self._market = (drift + vol_mult * sigma * z, vol_mult * sigma)
        return self._market

    @staticmethod
    def _crisis_profile(grid: _Grid) -> tuple[np.ndarray, np.ndarray]:
        drift = np.full(grid.size, MARKET_DRIFT / WEEKDAYS_PER_YEAR)
        vol_mult = np.ones(grid.size)
        for window in _stress_windows():
            inside = (grid.weekdays >= np.datetime64(window.start)) & (
                grid.weekdays <= np.datetime64(window.end)
            )
            days = int(inside.sum())
            if days:
                daily_drift = CRISIS_DEPTH * math.log1p(window.max_drawdown) / days
                drift[inside] += daily_drift
                speed = abs(daily_drift) * math.sqrt(WEEKDAYS_PER_YEAR) / MARKET_VOL
                vol_mult[inside] = np.maximum(vol_mult[inside], 1.0 + speed)
        return drift, vol_mult

    def _sector_factor(self, sector: str, grid: _Grid) -> tuple[np.ndarray, np.ndarray]:
        if sector not in self._sectors:
            z = _student_t(_rng(self.seed, "sector", sector), grid.size)
            sigma = _garch_sigma(z, SECTOR_VOL / math.sqrt(WEEKDAYS_PER_YEAR))
            self._sectors[sector] = (sigma * z, sigma)
        return self._sectors[sector]

    def _weekday_returns(self, symbol: str, grid: _Grid) -> tuple[np.ndarray, np.ndarray]:
        """Log returns and their conditional variance per weekday, before any planted drift."""
        market, market_sigma = self._market_factor(grid)
        instrument = self.universe.get(symbol)
        if instrument.kind == "index":
            return market, market_sigma**2
        low, high = ETF_BETA_RANGE if instrument.kind == "etf" else BETA_RANGE
        beta = _uniform(low, high, self.seed, "beta", symbol)
        sector, sector_sigma = self._sector_factor(instrument.sector, grid)
        idio_vol = _uniform(*IDIO_VOL_RANGE, self.seed, "idio-vol", symbol)
        z = _student_t(_rng(self.seed, "idio", symbol), grid.size)
        idio_sigma = _garch_sigma(z, idio_vol / math.sqrt(WEEKDAYS_PER_YEAR))
        returns = beta * market + sector + idio_sigma * z
        variance = (beta * market_sigma) ** 2 + sector_sigma**2 + idio_sigma**2
        return returns, variance

    def _build(self, symbol: str, grid: _Grid) -> pd.DataFrame:
        is_index = self.universe.get(symbol).kind == "index"
        weekday_returns, weekday_variance = self._weekday_returns(symbol, grid)
        returns = grid.to_sessions(weekday_returns)
        sigma = np.sqrt(grid.to_sessions(weekday_variance))
        if self.signal_strength > 0 and not is_index:
            returns = _add_planted_drift(returns, self.signal_strength)

        level = INDEX_LEVEL if is_index else _log_uniform(*PRICE_RANGE, self.seed, "level", symbol)
        log_close = np.cumsum(returns)
        log_close += math.log(level) - log_close[grid.anchor]

        gap = GAP_SHARE * returns + GAP_NOISE * sigma * self._draw("gap", symbol, grid)
        log_open = log_close - returns + gap
        upper = np.maximum(log_open, log_close)
        lower = np.minimum(log_open, log_close)
        wick_up = RANGE_SCALE * sigma * np.abs(self._draw("high", symbol, grid))
        wick_down = RANGE_SCALE * sigma * np.abs(self._draw("low", symbol, grid))

        base_volume = (
            INDEX_VOLUME if is_index else _log_uniform(*VOLUME_RANGE, self.seed, "volume", symbol)
        )
        log_volume = (
            math.log(base_volume)
            + VOLUME_NOISE * self._draw("volume", symbol, grid)
            + VOLUME_SHOCK * np.abs(returns) / sigma
        )
        bars = {
            "open": np.exp(log_open),
            "high": np.exp(upper + wick_up),
            "low": np.exp(lower - wick_down),
            "close": np.exp(log_close),
            "volume": np.exp(log_volume),
        }
        keep = self._apply_defects(bars, symbol, grid, is_index)
        frame = pd.DataFrame({"date": grid.sessions.astype("datetime64[ns]"), **bars})
        frame["volume"] = frame["volume"].astype("int64")
        return frame[keep].reset_index(drop=True)[list(OHLCV_COLUMNS)]

    def _draw(self, component: str, symbol: str, grid: _Grid) -> np.ndarray:
        """Standard normals drawn over the whole weekday grid, read off at the sessions."""
        return _rng(self.seed, component, symbol).standard_normal(grid.size)[grid.session_pos]

    def _apply_defects(
        self, bars: dict[str, np.ndarray], symbol: str, grid: _Grid, is_index: bool
    ) -> np.ndarray:
        """Corrupt ``bars`` in place as configured; returns the mask of sessions to keep."""
        if "unadjusted_split" in self.defects and not is_index:
            factor = np.exp2(-self._split_count(symbol, grid))
            for column in ("open", "high", "low", "close"):
                bars[column] *= factor
            bars["volume"] /= factor
        bars["volume"] = np.maximum(np.rint(bars["volume"]), 1.0)
        if "negative_volume" in self.defects:
            rows = self._defect_rows("negative_volume", symbol, grid)
            bars["volume"][rows] *= -1
        if "broken_ohlc" in self.defects:
            rows = self._defect_rows("broken_ohlc", symbol, grid)
            bars["high"][rows], bars["low"][rows] = bars["low"][rows], bars["high"][rows]
        keep = np.ones(len(grid.sessions), dtype=bool)
        if "missing_days" in self.defects:
            keep[self._defect_rows("missing_days", symbol, grid)] = False
        return keep

    def _defect_rows(self, kind: str, symbol: str, grid: _Grid) -> np.ndarray:
        """One session per block of DEFECT_BLOCK weekdays, in a slot reserved for ``kind``."""
        slot = DEFECT_BLOCK // len(ROW_DEFECTS)
        blocks = np.arange(grid.size // DEFECT_BLOCK)
        offset = np.floor(_rng(self.seed, "defect", kind, symbol).random(len(blocks)) * slot)
        weekday_pos = blocks * DEFECT_BLOCK + ROW_DEFECTS.index(kind) * slot + offset.astype(int)
        rows = grid.first_session_from(weekday_pos)
        return np.unique(rows[rows < len(grid.sessions)])

    def _split_count(self, symbol: str, grid: _Grid) -> np.ndarray:
        """Per session, the number of ex-dates so far, counted from zero at ANCHOR."""
        years = grid.weekdays.astype("datetime64[Y]")
        first = np.flatnonzero(np.r_[True, years[1:] != years[:-1]])
        lengths = np.diff(np.r_[first, grid.size])
        picks = np.floor(_rng(self.seed, "split", symbol).random(len(first)) * lengths)
        ex_sessions = np.sort(grid.first_session_from(first + picks.astype(int)))
        count = np.searchsorted(ex_sessions, np.arange(len(grid.sessions)), side="right")
        return count - count[grid.anchor]
