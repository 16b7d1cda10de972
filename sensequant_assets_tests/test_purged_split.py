import datetime as dt

import numpy as np
import pandas as pd
import pytest

from sensequant_assets.calendar import TradingCalendar
from sensequant_assets.training import (
    TOO_FEW_SAMPLES,
    VALIDATION_TOO_SMALL,
    LeakageError,
    Split,
    WindowSkipped,
    assert_no_leakage,
    purged_time_split,
)
from sensequant_assets.training.split import assert_disjoint_horizons, purged_block_splits

HORIZON = 5


def samples(labels: list[int | None], horizon: int = HORIZON) -> pd.DataFrame:
    """Rows shaped like ``make_labels`` output: one per session, label_end ``horizon`` ahead."""
    sessions = TradingCalendar().sessions(dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    n = len(labels)
    return pd.DataFrame(
        {
            "date": sessions[:n],
            "label_end": sessions[horizon : n + horizon],
            "label": pd.array(labels, dtype="Int8"),
        }
    )


def cycle(n: int) -> list[int | None]:
    return [i % 3 for i in range(n)]


def test_split_is_time_ordered_and_never_shuffled() -> None:
    frame = samples(cycle(60))
    shuffled = frame.sample(frac=1.0, random_state=7).reset_index(drop=True)
    split = purged_time_split(shuffled["date"], shuffled["label_end"], shuffled["label"])
    train_dates = shuffled["date"].to_numpy()[split.train]
    validation_dates = shuffled["date"].to_numpy()[split.validation]
    assert (np.diff(pd.to_datetime(train_dates)).astype(int) > 0).all()
    assert (np.diff(pd.to_datetime(validation_dates)).astype(int) > 0).all()
    assert max(train_dates) < split.boundary == min(validation_dates)
    # Same answer in the original order: the split depends on dates only, not on input order.
    plain = purged_time_split(frame["date"], frame["label_end"], frame["label"])
    assert list(frame["date"].to_numpy()[plain.train]) == list(train_dates)
    assert list(frame["date"].to_numpy()[plain.validation]) == list(validation_dates)
    assert not split.train.flags.writeable


def test_validation_is_the_last_quarter_and_purge_counts_crossing_labels() -> None:
    frame = samples(cycle(60))
    split = purged_time_split(frame["date"], frame["label_end"], frame["label"])
    assert split.validation.tolist() == list(range(45, 60))
    assert split.boundary == frame["date"][45]
    crossing = int((frame["label_end"][:45] >= split.boundary).sum())
    assert split.purged == crossing == HORIZON
    assert split.train.tolist() == list(range(45 - HORIZON))
    assert_no_leakage(frame["date"], frame["label_end"], split)


def test_unknown_labels_are_ignored() -> None:
    frame = samples([*cycle(40), None, None, None])
    frame.loc[40:, "label_end"] = None
    split = purged_time_split(frame["date"], frame["label_end"], frame["label"])
    assert split.validation.tolist() == list(range(30, 40))
    assert len(split.train) + split.purged + len(split.validation) == 40
    assert_no_leakage(frame["date"], frame["label_end"], split)


def test_accepts_plain_sequences() -> None:
    frame = samples(cycle(30))
    split = purged_time_split(
        list(frame["date"]), list(frame["label_end"]), [int(x) for x in frame["label"]]
    )
    assert split.validation.tolist() == list(range(22, 30))


def test_leaky_split_is_rejected() -> None:
    frame = samples(cycle(60))
    good = purged_time_split(frame["date"], frame["label_end"], frame["label"])
    unpurged = Split(
        train=np.arange(45), validation=good.validation, purged=0, boundary=good.boundary
    )
    with pytest.raises(LeakageError, match="5 training sample"):
        assert_no_leakage(frame["date"], frame["label_end"], unpurged)
    overlapping = Split(
        train=np.append(good.train, 50),
        validation=good.validation,
        purged=0,
        boundary=good.boundary,
    )
    with pytest.raises(LeakageError, match="both train and validation"):
        assert_no_leakage(frame["date"], frame["label_end"], overlapping)
    later_train = Split(
        train=np.array([0, 1, 59]), validation=np.arange(45, 55), purged=0, boundary=good.boundary
    )
    with pytest.raises(LeakageError):
        assert_no_leakage(frame["date"], frame["label_end"], later_train)
    assert issubclass(LeakageError, ValueError)


def test_too_few_samples_edge() -> None:
    enough = samples(cycle(20), horizon=1)
    purged_time_split(enough["date"], enough["label_end"], enough["label"], min_samples=20)
    frame = samples(cycle(19), horizon=1)
    with pytest.raises(WindowSkipped) as caught:
        purged_time_split(frame["date"], frame["label_end"], frame["label"], min_samples=20)
    assert caught.value.reason.code == TOO_FEW_SAMPLES
    assert "19" in str(caught.value) and "20" in str(caught.value)


def test_unknown_labels_do_not_count_towards_min_samples() -> None:
    frame = samples([*cycle(19), None, None, None], horizon=1)
    with pytest.raises(WindowSkipped, match="only 19 labelled samples"):
        purged_time_split(frame["date"], frame["label_end"], frame["label"])


def small_window(rare_positions: list[int]) -> list[int | None]:
    labels: list[int | None] = [i % 2 for i in range(24)]
    for position in rare_positions:
        labels[position] = 2
    return labels


def test_adaptive_split_grows_validation_to_hold_a_rare_class() -> None:
    # Default validation is the last 6 samples (18-23); class 2 sits just before it.
    frame = samples(small_window([15, 17]), horizon=2)
    split = purged_time_split(frame["date"], frame["label_end"], frame["label"])
    assert split.validation.tolist() == list(range(15, 24))
    assert split.boundary == frame["date"][15]
    assert split.purged == 2
    assert split.train.tolist() == list(range(13))
    validation_labels = frame["label"].to_numpy()[split.validation]
    assert all((validation_labels == c).sum() >= 2 for c in (0, 1, 2))
    assert_no_leakage(frame["date"], frame["label_end"], split)


def test_adaptive_split_keeps_default_when_validation_already_holds_every_class() -> None:
    frame = samples(small_window([20, 21]), horizon=2)
    split = purged_time_split(frame["date"], frame["label_end"], frame["label"])
    assert split.validation.tolist() == list(range(18, 24))


def test_rare_class_early_in_a_small_window_skips() -> None:
    frame = samples(small_window([1, 3]), horizon=2)
    with pytest.raises(WindowSkipped) as caught:
        purged_time_split(frame["date"], frame["label_end"], frame["label"])
    assert caught.value.reason.code == VALIDATION_TOO_SMALL
    assert "class 2 has only" in str(caught.value)
    assert "training needs at least 2 classes" in str(caught.value)


def test_class_seen_once_skips() -> None:
    frame = samples(small_window([22]), horizon=2)
    with pytest.raises(WindowSkipped, match="class 2 appears 1 time") as caught:
        purged_time_split(frame["date"], frame["label_end"], frame["label"])
    assert caught.value.reason.code == VALIDATION_TOO_SMALL


def test_single_class_training_block_skips() -> None:
    frame = samples([0] * 18 + [1, 0, 1, 0, 1, 0], horizon=2)
    with pytest.raises(WindowSkipped, match="1 class") as caught:
        purged_time_split(frame["date"], frame["label_end"], frame["label"])
    assert caught.value.reason.code == VALIDATION_TOO_SMALL


def test_rejects_inconsistent_inputs() -> None:
    frame = samples(cycle(30))
    with pytest.raises(ValueError, match="differ in length"):
        purged_time_split(frame["date"], frame["label_end"][:-1], frame["label"])
    with pytest.raises(ValueError, match="validation_fraction"):
        purged_time_split(frame["date"], frame["label_end"], frame["label"], validation_fraction=1)
    bad = frame.copy()
    bad.loc[3, "label_end"] = None
    with pytest.raises(ValueError, match="needs a label_end"):
        purged_time_split(bad["date"], bad["label_end"], bad["label"])


def _two_symbols(n: int, horizon: int = HORIZON) -> pd.DataFrame:
    """Two symbols' rows on each of ``n`` sessions, shuffled (a panel arrives in any order)."""
    frame = samples(cycle(n), horizon)
    return pd.concat([frame, frame]).sample(frac=1.0, random_state=3).reset_index(drop=True)


@pytest.mark.parametrize(("embargo", "gap"), [(0, HORIZON), (8, 8)])
def test_cross_fitting_blocks_are_contiguous_and_purged_on_both_sides(
    embargo: int, gap: int
) -> None:
    """``gap``: sessions dropped on each side of a block, by the purge (labels 5 sessions
    long) or by an embargo longer than it."""
    frame = _two_symbols(100)
    day = pd.to_datetime(frame["date"]).to_numpy()
    end = pd.to_datetime(frame["label_end"]).to_numpy()
    distinct = np.unique(day)
    splits = purged_block_splits(frame["date"], frame["label_end"], 4, embargo)
    assert len(splits) == 4
    held = np.sort(np.concatenate([s.validation for s in splits]))
    np.testing.assert_array_equal(held, np.arange(len(frame)))  # every row held out once
    for number, split in enumerate(splits):
        assert_disjoint_horizons(frame["date"], frame["label_end"], split)
        start, stop = 25 * number, 25 * number + 24
        block = np.unique(day[split.validation])
        # one run of 25 consecutive sessions, both symbols of each date in it
        np.testing.assert_array_equal(block, distinct[start : stop + 1])
        assert len(split.validation) == 50 and pd.Timestamp(split.boundary) == distinct[start]
        fit = np.unique(day[split.train])
        before, after = fit[fit < block[0]], fit[fit > block[-1]]
        if number > 0:
            assert before[-1] == distinct[start - gap - 1]
            assert end[split.train][day[split.train] < block[0]].max() < block[0]
        if number < 3:
            assert after[0] == distinct[stop + gap + 1]
            assert after[0] > end[split.validation].max()
        assert split.purged == len(frame) - len(split.validation) - len(split.train)
        assert (np.diff(day[split.train]) >= np.timedelta64(0)).all()  # time order


def test_disjoint_horizons_catch_a_training_row_after_the_block() -> None:
    frame = samples(cycle(40))
    good = purged_block_splits(frame["date"], frame["label_end"], 2, embargo_sessions=0)[0]
    first_after = 20  # dated inside the held labels' horizon (rows 15..19 reach row 24)
    leaky = Split(
        train=np.append(good.train, first_after),
        validation=good.validation,
        purged=0,
        boundary=good.boundary,
    )
    with pytest.raises(LeakageError, match="span the held-out block"):
        assert_disjoint_horizons(frame["date"], frame["label_end"], leaky)
    with pytest.raises(ValueError, match="cannot make 5 blocks"):
        purged_block_splits(frame["date"][:4], frame["label_end"][:4], 5, 0)
    with pytest.raises(ValueError, match="no sample to fit on"):
        purged_block_splits(frame["date"][:6], frame["label_end"][:6], 2, 5)
