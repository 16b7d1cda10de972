"""The OhlcvBars Dagster type: the stored bar's contract, checked on every ohlcv_daily output."""

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import OHLCV_JOB
from sensequant_assets.defs.partitions import one_symbol_range_tags
from sensequant_assets.defs.types import OhlcvBars
from sensequant_assets.quality import validate_ohlcv
from sensequant_assets.quality.contract import BAR_DTYPES
from sensequant_assets.settings import load_settings
from sensequant_assets.sources.ingest import BAR_COLUMNS, Ingestor, IngestResult
from sensequant_assets_tests.bar_files import clean_bars
from sensequant_assets_tests.jobs import JAN, run_job, stored

SESSIONS = TradingCalendar().sessions(*JAN)


def _bars() -> pd.DataFrame:
    """What the ingest hands the IO manager: validated bars plus their source."""
    frame, _ = validate_ohlcv(clean_bars(SESSIONS).rename(columns=str.lower), "INFY", SESSIONS)
    frame["source"] = "files"
    return frame[BAR_COLUMNS]


def _check(frame: pd.DataFrame) -> dg.TypeCheck:
    return dg.check_dagster_type(OhlcvBars, frame)


def test_validated_bars_meet_the_contract_even_with_high_below_low() -> None:
    frame = _bars()
    assert _check(frame).success
    swapped = frame.copy()
    swapped.loc[2, ["high", "low"]] = swapped.loc[2, ["low", "high"]].to_numpy()
    assert swapped.loc[2, "high"] < swapped.loc[2, "low"]
    assert _check(swapped).success  # the ohlc_consistent check's WARN, not a refusal


def test_a_negative_price_is_rejected_naming_the_bar() -> None:
    frame = _bars()
    frame.loc[3, "close"] = -1.0
    result = _check(frame)
    assert not result.success
    assert '"close"' in result.description and f"INFY {SESSIONS[3]}" in result.description


@pytest.mark.parametrize(
    ("spoil", "named"),
    [
        (lambda f: f.assign(volume=f["volume"].where(f.index != 1, -5)), '"volume"'),
        (lambda f: f.assign(open=f["open"].where(f.index != 1, np.nan)), '"open"'),
        (lambda f: f.assign(symbol=f["symbol"].where(f.index != 1, None)), '"symbol"'),
        (lambda f: f.assign(date=f["date"].dt.tz_localize("Asia/Kolkata")), '"date"'),
        (lambda f: f.astype({"volume": "float64"}), '"volume"'),
        (lambda f: pd.concat([f, f.tail(1)], ignore_index=True), "One row per (symbol, date)"),
        (lambda f: f.drop(columns="source"), "source"),
        (lambda f: f[list(reversed(BAR_COLUMNS))], "ordering"),
    ],
)
def test_each_rule_of_the_contract_is_enforced(spoil, named: str) -> None:
    result = _check(spoil(_bars()))
    assert not result.success and named in result.description


def test_ohlcv_daily_declares_the_type_with_every_column_shown() -> None:
    assets_def = build_defs(load_settings()).resolve_assets_def("ohlcv_daily")
    dagster_type = assets_def.op.output_def_named("result").dagster_type
    assert dagster_type.unique_name == "OhlcvBars"
    for column, dtype in BAR_DTYPES.items():
        assert f"**{column}**: `{dtype}`" in dagster_type.description
    schema = assets_def.specs_by_key[dg.AssetKey("ohlcv_daily")].metadata["dagster/column_schema"]
    assert [(c.name, c.type) for c in schema.columns] == list(BAR_DTYPES.items())


def test_a_frame_breaking_the_contract_fails_the_run_and_stores_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A frame the guardrails never saw (a bug after them) is stopped before the warehouse."""
    with dg.DagsterInstance.ephemeral() as instance:
        settings = load_settings()
        tags = one_symbol_range_tags("INFY", *JAN)
        assert run_job(settings, instance, OHLCV_JOB, tags).success
        before = stored(settings)
        real_run = Ingestor.run

        def negative_close(self: Ingestor, *args, **kwargs) -> IngestResult:
            result = real_run(self, *args, **kwargs)
            result.frame.loc[0, "close"] = -result.frame.loc[0, "close"]
            return result

        monkeypatch.setattr(Ingestor, "run", negative_close)
        result = run_job(settings, instance, OHLCV_JOB, tags)
        assert not result.success
        failure = next(e for e in result.all_events if e.is_step_failure)
        error = failure.step_failure_data.error
        assert error.cls_name == "DagsterTypeCheckDidNotPass"
        assert "OhlcvBars" in error.message
        pd.testing.assert_frame_equal(stored(settings), before)
