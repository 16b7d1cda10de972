import datetime as dt

from sensequant_assets.training import TrainingWindow, diagnostics
from sensequant_assets.training.teacher_record import TeacherRun

WINDOW = TrainingWindow("TCS", dt.date(2024, 3, 13), dt.date(2024, 9, 8))


def completed(**changes: object) -> TeacherRun:
    run = TeacherRun(
        window_label=WINDOW.label,
        symbol="TCS",
        start=WINDOW.start,
        end=WINDOW.end,
        status="completed",
        class_balance={"train": {"down": 30, "neutral": 30, "up": 30}},
        split_boundary=dt.date(2024, 8, 1),
        train_last_label_end=dt.date(2024, 7, 31),
    )
    run.counts["nonfinite_features"] = 0
    for key, value in changes.items():
        setattr(run, key, value)
    return run


def test_a_healthy_window_breaks_no_rule() -> None:
    runs = [completed()]
    assert diagnostics.short_windows(runs) == []
    assert diagnostics.unbalanced_windows(runs) == []
    assert diagnostics.nonfinite_windows(runs) == []
    assert diagnostics.leaky_windows(runs) == []


def test_each_rule_names_the_offending_window() -> None:
    rare = completed(class_balance={"train": {"down": 2, "neutral": 49, "up": 49}})
    assert diagnostics.unbalanced_windows([rare]) == [
        f"{WINDOW.label} {rare.class_balance['train']}"
    ]
    leaky = completed(train_last_label_end=dt.date(2024, 8, 1))
    assert diagnostics.leaky_windows([leaky]) == [WINDOW.label]
    broken = completed()
    broken.counts["nonfinite_features"] = 3
    assert diagnostics.nonfinite_windows([broken]) == [WINDOW.label]
    short = completed(
        status="skipped",
        skip_reason={"code": "too_few_samples", "message": "12 samples < 20"},
    )
    future = completed(
        status="skipped",
        skip_reason={"code": "insufficient_future_data", "message": "needs 2025-01-10"},
    )
    assert diagnostics.short_windows([short, future]) == [f"{WINDOW.label}: 12 samples < 20"]


def test_span_key_round_trips_with_the_label() -> None:
    assert WINDOW.span_key == "2024-03-13_to_2024-09-08"
    assert (
        TrainingWindow.from_span_key("M&M", WINDOW.span_key).label == "M&M_2024-03-13_to_2024-09-08"
    )
