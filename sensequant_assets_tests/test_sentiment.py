import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.defs import build_defs
from sensequant_assets.defs.jobs import SENTIMENT_JOB
from sensequant_assets.defs.partitions import one_symbol_range_tags
from sensequant_assets.features.sentiment import (
    HeadlineFileError,
    coverage,
    read_headlines,
    score_headlines,
)
from sensequant_assets.settings import load_settings

HEADLINES = """Date,Symbol,Headline
2024-01-02,tcs,TCS shares surge after record profit and strong guidance
2024-01-02,TCS,TCS wins a large deal
2024-01-03,TCS,TCS slumps as weak demand and layoffs hurt outlook
2024-01-06,TCS,TCS announces a great buyback on Saturday
"""


def test_scores_are_daily_means_and_weekend_news_moves_to_monday(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text(HEADLINES)
    daily = score_headlines(read_headlines(path), TradingCalendar())
    by_day = daily.set_index(daily["date"].dt.date)
    assert by_day.loc[dt.date(2024, 1, 2), "headline_count"] == 2
    assert by_day.loc[dt.date(2024, 1, 2), "sentiment_score"] > 0.3
    assert by_day.loc[dt.date(2024, 1, 3), "sentiment_score"] < -0.3
    assert dt.date(2024, 1, 8) in by_day.index  # Saturday's headline belongs to Monday
    keys = [(dt.date(2024, 1, d), "TCS") for d in (2, 3, 4, 5)]
    assert coverage(daily, keys) == 0.5


def test_bad_date_names_file_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("date,symbol,headline\n2024-01-02,TCS,ok\nyesterday,TCS,bad\n")
    with pytest.raises(HeadlineFileError, match=r"row 3, column date: 'yesterday'"):
        read_headlines(path)


def test_sentiment_asset_reports_coverage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "h.csv"
    path.write_text(HEADLINES)
    monkeypatch.setenv("SENSEQUANT_SENTIMENT_HEADLINES_FILE", str(path))
    settings = load_settings()
    job = build_defs(settings).resolve_job_def(SENTIMENT_JOB)
    tags = one_symbol_range_tags("TCS", dt.date(2024, 1, 1), dt.date(2024, 1, 12))
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, tags=tags)
    materialization = result.asset_materializations_for_node("sentiment_snapshots")[0]
    assert materialization.metadata["coverage"].value == pytest.approx(
        3 / 10
    )  # 10 sessions, 3 with headlines
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        assert con.execute("select count(*) from market.sentiment_snapshots").fetchone()[0] == 3


def test_for_keys_keeps_only_requested_symbol_days(tmp_path: Path) -> None:
    from sensequant_assets.features.sentiment import for_keys

    path = tmp_path / "h.csv"
    path.write_text(HEADLINES)
    daily = score_headlines(read_headlines(path), TradingCalendar())
    kept = for_keys(daily, [(dt.date(2024, 1, 3), "TCS"), (dt.date(2024, 1, 3), "INFY")])
    assert list(kept["date"].dt.date) == [dt.date(2024, 1, 3)] and list(kept["symbol"]) == ["TCS"]
