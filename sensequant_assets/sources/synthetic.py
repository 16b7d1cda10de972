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
The draws are :mod:`.synthetic_draws`, the weekday grid and the stress windows
:mod:`.synthetic_grid`.

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
How ``signal_ic`` is defined and measured, and the observable a model can find, are
:mod:`.synthetic_signal`.

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

import datetime as dt
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.settings import DEFECT_KINDS, MAX_SIGNAL_IC
from sensequant_assets.sources.base import OHLCV_COLUMNS
from sensequant_assets.sources.synthetic_draws import (
    garch_sigma,
    generator,
    log_uniform,
    student_t,
    uniform,
)
from sensequant_assets.sources.synthetic_grid import ANCHOR, Grid, stress_windows
from sensequant_assets.sources.synthetic_signal import SIGNAL_PHI, signal_gain
from sensequant_assets.universe import Universe

WEEKDAYS_PER_YEAR = 261

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

DEFECT_BLOCK = 20
ROW_DEFECTS = ("negative_volume", "broken_ohlc", "missing_days")


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
        self._grid: Grid | None = None
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

    def _grid_until(self, end: dt.date) -> Grid:
        """The cached grid, rebuilt (with every cached series) when ``end`` lies beyond it."""
        if self._grid is None or end > self._grid.horizon:
            horizon = dt.date(max(end.year, ANCHOR.year), 12, 31)
            self._grid = Grid.build(horizon, self.calendar)
            self._market = None
            self._sectors.clear()
            self._frames.clear()
        return self._grid

    def _market_factor(self, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
        """Market log returns and their conditional volatility, per weekday."""
        if self._market is None:
            z = student_t(generator(self.seed, "market"), grid.size)
            sigma = garch_sigma(z, MARKET_VOL / math.sqrt(WEEKDAYS_PER_YEAR))
            drift, vol_mult = self._crisis_profile(grid)
            self._market = (drift + vol_mult * sigma * z, vol_mult * sigma)
        return self._market

    @staticmethod
    def _crisis_profile(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
        """The market's drift and volatility multiplier per weekday.

        Windows are placed shortest first, and a window's depth is what its own weekdays must
        fall in all: a nested window's fall counts towards the one around it (the 2022
        rate-hike selloff contains the Russia-Ukraine fall), and only the remainder is spread
        over the weekdays no shorter window covers.
        """
        crisis = np.zeros(grid.size)
        for window in sorted(stress_windows(), key=lambda w: w.end - w.start):
            inside = (grid.weekdays >= np.datetime64(window.start)) & (
                grid.weekdays <= np.datetime64(window.end)
            )
            free = inside & (crisis == 0.0)
            remaining = CRISIS_DEPTH * math.log1p(window.max_drawdown) - crisis[inside].sum()
            if free.any() and remaining < 0:
                crisis[free] = remaining / int(free.sum())
        speed = np.abs(crisis) * math.sqrt(WEEKDAYS_PER_YEAR) / MARKET_VOL
        return MARKET_DRIFT / WEEKDAYS_PER_YEAR + crisis, 1.0 + speed

    def _sector_factor(self, sector: str, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
        if sector not in self._sectors:
            z = student_t(generator(self.seed, "sector", sector), grid.size)
            sigma = garch_sigma(z, SECTOR_VOL / math.sqrt(WEEKDAYS_PER_YEAR))
            self._sectors[sector] = (sigma * z, sigma)
        return self._sectors[sector]

    def _weekday_returns(self, symbol: str, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
        """Log returns and their conditional variance per weekday, before any planted drift."""
        market, market_sigma = self._market_factor(grid)
        instrument = self.universe.get(symbol)
        if instrument.kind == "index":
            return market, market_sigma**2
        beta, idio_vol = self._loadings(symbol)
        sector, sector_sigma = self._sector_factor(instrument.sector, grid)
        z = student_t(generator(self.seed, "idio", symbol), grid.size)
        idio_sigma = garch_sigma(z, idio_vol / math.sqrt(WEEKDAYS_PER_YEAR))
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

    def _factor(self, symbol: str, grid: Grid) -> np.ndarray:
        """The AR(1) latent factor per weekday, started in its stationary law (unit variance)."""
        shocks = generator(self.seed, "factor", symbol).standard_normal(grid.size)
        shocks[1:] *= math.sqrt(1.0 - SIGNAL_PHI * SIGNAL_PHI)
        return lfilter([1.0], [1.0, -SIGNAL_PHI], shocks)

    def _loadings(self, symbol: str) -> tuple[float, float]:
        """The symbol's market beta and annual idiosyncratic volatility."""
        low, high = ETF_BETA_RANGE if self.universe.get(symbol).kind == "etf" else BETA_RANGE
        beta = uniform(low, high, self.seed, "beta", symbol)
        return beta, uniform(*IDIO_VOL_RANGE, self.seed, "idio-vol", symbol)

    def _vol_scale(self, symbol: str) -> float:
        """The symbol's long-run daily volatility, from its model parameters (not its path)."""
        beta, idio_vol = self._loadings(symbol)
        annual = math.sqrt((beta * MARKET_VOL) ** 2 + SECTOR_VOL**2 + idio_vol**2)
        return annual / math.sqrt(WEEKDAYS_PER_YEAR)

    def _planted_drift(self, symbol: str, grid: Grid) -> np.ndarray:
        """Per weekday, g·σ_i·f of the weekday before (nothing on the first weekday)."""
        drift = np.zeros(grid.size)
        drift[1:] = self.gain * self._vol_scale(symbol) * self._factor(symbol, grid)[:-1]
        return drift

    def _build(self, symbol: str, grid: Grid) -> pd.DataFrame:
        is_index = self.universe.get(symbol).kind == "index"
        weekday_returns, weekday_variance = self._weekday_returns(symbol, grid)
        returns = grid.to_sessions(weekday_returns)
        sigma = np.sqrt(grid.to_sessions(weekday_variance))
        if self.gain > 0 and not is_index:
            returns = returns + grid.to_sessions(self._planted_drift(symbol, grid))

        level = INDEX_LEVEL if is_index else log_uniform(*PRICE_RANGE, self.seed, "level", symbol)
        log_close = np.cumsum(returns)
        log_close += math.log(level) - log_close[grid.anchor]

        gap = GAP_SHARE * returns + GAP_NOISE * sigma * self._draw("gap", symbol, grid)
        log_open = log_close - returns + gap
        upper = np.maximum(log_open, log_close)
        lower = np.minimum(log_open, log_close)
        wick_up = RANGE_SCALE * sigma * np.abs(self._draw("high", symbol, grid))
        wick_down = RANGE_SCALE * sigma * np.abs(self._draw("low", symbol, grid))

        base_volume = (
            INDEX_VOLUME if is_index else log_uniform(*VOLUME_RANGE, self.seed, "volume", symbol)
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

    def _draw(self, component: str, symbol: str, grid: Grid) -> np.ndarray:
        """Standard normals drawn over the whole weekday grid, read off at the sessions."""
        return generator(self.seed, component, symbol).standard_normal(grid.size)[grid.session_pos]

    def _apply_defects(
        self, bars: dict[str, np.ndarray], symbol: str, grid: Grid, is_index: bool
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

    def _defect_rows(self, kind: str, symbol: str, grid: Grid) -> np.ndarray:
        """One session per block of DEFECT_BLOCK weekdays, in a slot reserved for ``kind``."""
        slot = DEFECT_BLOCK // len(ROW_DEFECTS)
        blocks = np.arange(grid.size // DEFECT_BLOCK)
        offset = np.floor(generator(self.seed, "defect", kind, symbol).random(len(blocks)) * slot)
        weekday_pos = blocks * DEFECT_BLOCK + ROW_DEFECTS.index(kind) * slot + offset.astype(int)
        rows = grid.first_session_from(weekday_pos)
        return np.unique(rows[rows < len(grid.sessions)])

    def _split_count(self, symbol: str, grid: Grid) -> np.ndarray:
        """Per session, the number of ex-dates so far, counted from zero at ANCHOR."""
        years = grid.weekdays.astype("datetime64[Y]")
        first = np.flatnonzero(np.r_[True, years[1:] != years[:-1]])
        lengths = np.diff(np.r_[first, grid.size])
        picks = np.floor(generator(self.seed, "split", symbol).random(len(first)) * lengths)
        ex_sessions = np.sort(grid.first_session_from(first + picks.astype(int)))
        count = np.searchsorted(ex_sessions, np.arange(len(grid.sessions)), side="right")
        return count - count[grid.anchor]
