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
plus a crisis drift on the weekdays of each window of ``reference/stress_windows.csv`` that
sums to ``CRISIS_DEPTH·log(1 + max_drawdown)`` over the window; there v_t = 1 + (that daily
drift / normal daily vol), so a fast crash is also a volatile one while a slow one is not
swamped by noise. A window inside another counts towards it: the outer window's weekdays
outside the inner one carry only what is left of its depth, so nothing compounds. The
drawdowns this gives, against the NIFTY 50's, are tabulated in docs/synthetic.md.

Determinism: every random component comes from its own numpy Generator seeded with a
BLAKE2 hash of (seed, component, symbol or sector) and draws one array over the fixed weekday
grid, so longer requests only append values and a value never depends on the requested range.
Price levels are pinned at ``ANCHOR`` (2023-01-02) to a symbol-specific level.

Planted signal (``signal_ic``, setting ``SENSEQUANT_SYNTHETIC_SIGNAL_IC``, in [0, 0.15]). At 0
nothing is added: every return is a stochastic-volatility random walk whose only mean is the
constant market drift and the fixed stress-window drifts. Otherwise every symbol but the index
carries a latent factor, drawn per weekday w from its own generator::

    f_w = φ·f_{w-1} + √(1 - φ²)·ε_w,   f_0 = ε_0,   ε ~ N(0, 1),   φ = 2^(-1/SIGNAL_HALF_LIFE)

with unit stationary variance and a half-life of 40 weekdays: momentum- and value-like effects
fade over one to three months, and 40 sessions is within reach of the features' 20-50 session
windows. The next weekday's return gains μ_{w+1} = g·σ·f_w, σ the symbol's long-run daily
volatility √(β²·σm² + σs² + σi²) from its parameters, so one g moves every symbol by the same
share of its own noise. f is a function of no price: it shows only through the drift it adds,
under noise about 1/g times larger.

``signal_ic`` is the mean over sessions t of the cross-sectional Spearman correlation, across
the default universe's 100 equities, between ``planted_signal`` at t and the log return from
close t to close t+7 in excess of the NIFTY 50's, over 2022-2024 (``signal_ics`` computes it).
``planted_signal(close)`` is the best causal observable of f: its steady-state Kalman filter
from the symbol's own log returns in the weak-signal limit, Σ_k (1 - φ)·φ^k·r_{t-k}, divided by
an EWMA estimate of σ. ``signal_gain`` finds g in ``_IC_TABLE``, measured on 20 seeds by
``bench/bench_synthetic_signal.py``; docs/synthetic.md has the tables. At 0.05 the latent f's
own IC is about 0.16: most of what drives prices cannot be seen in them, as in markets.

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
from scipy.signal import lfilter

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.settings import DEFECT_KINDS, MAX_SIGNAL_IC
from sensequant_assets.sources.base import OHLCV_COLUMNS
from sensequant_assets.universe import INDEX_SYMBOL, Universe

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

SIGNAL_HALF_LIFE = 40
SIGNAL_PHI = 0.5 ** (1.0 / SIGNAL_HALF_LIFE)
SCALE_HALF_LIFE = 250
SIGNAL_WARMUP = 120
IC_HORIZON = 7
MOMENTUM_HORIZONS = (5, 10, 20)

# (g, mean daily rank IC of planted_signal) as printed by bench/bench_synthetic_signal.py
_IC_TABLE: tuple[tuple[float, float], ...] = (
    (0.0, 0.0), (0.015, 0.0054), (0.02, 0.0101), (0.025, 0.0161), (0.03, 0.023),
    (0.035, 0.0308), (0.04, 0.0395), (0.045, 0.0489), (0.05, 0.0588), (0.06, 0.0799),
    (0.07, 0.1019), (0.08, 0.1243), (0.09, 0.1468), (0.1, 0.1689),
)  # fmt: skip

DEFECT_BLOCK = 20
ROW_DEFECTS = ("negative_volume", "broken_ohlc", "missing_days")


def planted_signal(close: pd.Series) -> pd.Series:
    """The steady-state estimate of the latent factor from one symbol's own closes up to t.

    ``close`` must be one symbol's closes in session order. The filter starts from the prior
    mean 0 at the first close, so the value at t uses closes up to t only; it is NaN for the
    first ``SIGNAL_WARMUP`` sessions, while the volatility scale is still settling.
    """
    returns = np.log(close.astype("float64")).diff()
    level = returns.fillna(0.0).ewm(alpha=1.0 - SIGNAL_PHI, adjust=False).mean()
    scale = np.sqrt((returns**2).ewm(halflife=SCALE_HALF_LIFE, ignore_na=True).mean())
    signal = level / scale
    signal.iloc[:SIGNAL_WARMUP] = np.nan
    return signal.rename("planted_signal")


def signal_gain(signal_ic: float) -> float:
    """The drift gain g whose ``planted_signal`` has mean daily rank IC ``signal_ic``.

    Interpolated against √IC: for weak signals IC ∝ g² (how well f can be estimated and how
    much it moves prices each grow with g), so √IC is nearly linear in g down to 0.
    """
    gains, ics = zip(*_IC_TABLE, strict=True)
    return float(np.interp(math.sqrt(signal_ic), np.sqrt(ics), gains))


def daily_rank_ic(scores: pd.DataFrame, forward: pd.DataFrame) -> pd.Series:
    """Per date (row), the Spearman correlation across symbols (columns) of the two tables."""
    both = scores.notna() & forward.notna()
    ic = scores.where(both).rank(axis=1).corrwith(forward.where(both).rank(axis=1), axis=1)
    return ic[both.sum(axis=1) >= 3]


def signal_ics(
    source: SyntheticSource, symbols: Sequence[str], start: dt.date, end: dt.date
) -> dict[str, float]:
    """Mean daily rank IC over ``[start, end]`` of the planted observable and its rivals.

    Scores are ``planted_signal``, the latent factor itself and the 5/10/20-session log
    returns; the forward return is the ``IC_HORIZON``-session log return in excess of the
    index. Closes from a year before ``start`` warm the filter up.
    """
    history = start - dt.timedelta(days=365)
    closes = pd.DataFrame(
        {s: source.fetch(s, history, end).set_index("date")["close"] for s in symbols}
    )
    log_close = np.log(closes)
    index = np.log(source.fetch(INDEX_SYMBOL, history, end).set_index("date")["close"])
    forward = log_close.shift(-IC_HORIZON) - log_close
    forward = forward.sub(index.shift(-IC_HORIZON) - index, axis=0)
    scores = {
        "planted_signal": closes.apply(planted_signal),
        "latent_factor": pd.DataFrame({s: source.latent_factor(s, history, end) for s in symbols}),
        **{f"momentum_{h}": log_close - log_close.shift(h) for h in MOMENTUM_HORIZONS},
    }
    measured = closes.index >= pd.Timestamp(start)
    return {
        name: float(daily_rank_ic(score[measured], forward[measured]).mean())
        for name, score in scores.items()
    }


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
    """Offline market data with a factor/GARCH model, optional planted signal and defects.

    ``gain`` sets the drift gain g directly instead of deriving it from ``signal_ic``: that is
    how the calibration bench measures the table ``signal_ic`` is read from.
    """

    name = "synthetic"
    remote = False

    def __init__(
        self,
        universe: Universe,
        calendar: TradingCalendar,
        seed: int = 7,
        signal_ic: float = 0.0,
        defects: Sequence[str] = (),
        *,
        gain: float | None = None,
    ):
        if not 0.0 <= signal_ic <= MAX_SIGNAL_IC:
            raise ValueError(f"signal_ic must lie in [0, {MAX_SIGNAL_IC}], got {signal_ic}")
        if gain is not None and not gain >= 0.0:
            raise ValueError(f"gain must be at least 0, got {gain}")
        unknown = sorted(set(defects) - set(DEFECT_KINDS))
        if unknown:
            raise ValueError(f"unknown defect kind(s) {unknown}; choose from {list(DEFECT_KINDS)}")
        self.universe = universe
        self.calendar = calendar
        self.seed = seed
        self.signal_ic = signal_ic
        self.gain = signal_gain(signal_ic) if gain is None else gain
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
        """The market's drift and volatility multiplier per weekday.

        Windows are placed shortest first, and a window's depth is what its own weekdays must
        fall in all: a nested window's fall counts towards the one around it (the 2022
        rate-hike selloff contains the Russia-Ukraine fall), and only the remainder is spread
        over the weekdays no shorter window covers.
        """
        crisis = np.zeros(grid.size)
        for window in sorted(_stress_windows(), key=lambda w: w.end - w.start):
            inside = (grid.weekdays >= np.datetime64(window.start)) & (
                grid.weekdays <= np.datetime64(window.end)
            )
            free = inside & (crisis == 0.0)
            remaining = CRISIS_DEPTH * math.log1p(window.max_drawdown) - crisis[inside].sum()
            if free.any() and remaining < 0:
                crisis[free] = remaining / int(free.sum())
        speed = np.abs(crisis) * math.sqrt(WEEKDAYS_PER_YEAR) / MARKET_VOL
        return MARKET_DRIFT / WEEKDAYS_PER_YEAR + crisis, 1.0 + speed

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
        beta, idio_vol = self._loadings(symbol)
        sector, sector_sigma = self._sector_factor(instrument.sector, grid)
        z = _student_t(_rng(self.seed, "idio", symbol), grid.size)
        idio_sigma = _garch_sigma(z, idio_vol / math.sqrt(WEEKDAYS_PER_YEAR))
        returns = beta * market + sector + idio_sigma * z
        variance = (beta * market_sigma) ** 2 + sector_sigma**2 + idio_sigma**2
        return returns, variance

    def latent_factor(self, symbol: str, start: dt.date, end: dt.date) -> pd.Series:
        """f at each session in ``[start, end]``, indexed by date: what drives the next drift."""
        grid = self._grid_until(end)
        factor = self._factor(self.universe.get(symbol).symbol, grid)[grid.session_pos]
        dates = pd.DatetimeIndex(grid.sessions.astype("datetime64[ns]"), name="date")
        series = pd.Series(factor, index=dates, name="latent_factor")
        return series[(dates >= pd.Timestamp(start)) & (dates <= pd.Timestamp(end))]

    def _factor(self, symbol: str, grid: _Grid) -> np.ndarray:
        """The AR(1) latent factor per weekday, started in its stationary law (unit variance)."""
        shocks = _rng(self.seed, "factor", symbol).standard_normal(grid.size)
        shocks[1:] *= math.sqrt(1.0 - SIGNAL_PHI * SIGNAL_PHI)
        return lfilter([1.0], [1.0, -SIGNAL_PHI], shocks)

    def _loadings(self, symbol: str) -> tuple[float, float]:
        """The symbol's market beta and annual idiosyncratic volatility."""
        low, high = ETF_BETA_RANGE if self.universe.get(symbol).kind == "etf" else BETA_RANGE
        beta = _uniform(low, high, self.seed, "beta", symbol)
        return beta, _uniform(*IDIO_VOL_RANGE, self.seed, "idio-vol", symbol)

    def _vol_scale(self, symbol: str) -> float:
        """The symbol's long-run daily volatility, from its model parameters (not its path)."""
        beta, idio_vol = self._loadings(symbol)
        annual = math.sqrt((beta * MARKET_VOL) ** 2 + SECTOR_VOL**2 + idio_vol**2)
        return annual / math.sqrt(WEEKDAYS_PER_YEAR)

    def _planted_drift(self, symbol: str, grid: _Grid) -> np.ndarray:
        """Per weekday, g·σ_i·f of the weekday before (nothing on the first weekday)."""
        drift = np.zeros(grid.size)
        drift[1:] = self.gain * self._vol_scale(symbol) * self._factor(symbol, grid)[:-1]
        return drift

    def _build(self, symbol: str, grid: _Grid) -> pd.DataFrame:
        is_index = self.universe.get(symbol).kind == "index"
        weekday_returns, weekday_variance = self._weekday_returns(symbol, grid)
        returns = grid.to_sessions(weekday_returns)
        sigma = np.sqrt(grid.to_sessions(weekday_variance))
        if self.gain > 0 and not is_index:
            returns = returns + grid.to_sessions(self._planted_drift(symbol, grid))

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
