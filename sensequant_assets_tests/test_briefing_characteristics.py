"""Each briefing states how far its gate can be trusted: false promotions and power."""

from sensequant_assets.evaluation.gate import GATE_VERSION
from sensequant_assets.evaluation.power import PROTOCOL_VERSION, operating_characteristics
from sensequant_assets.release import briefing, briefing_markdown


def _cell(ic: float, n_symbols: int, approved: int, universes: int, interval: list) -> dict:
    return {
        "gate_version": GATE_VERSION, "protocol": PROTOCOL_VERSION, "ic": ic,
        "n_symbols": n_symbols, "start": "2022-01-01", "end": "2024-12-31", "oos_sessions": 420,
        "approved": approved, "universes": universes, "approval_rate": approved / universes,
        "interval": interval,
    }  # fmt: skip


PAYLOAD = {
    "cells": [
        _cell(0.0, 102, 0, 60, [0.0, 0.0596]),
        _cell(0.05, 102, 17, 20, [0.62, 0.97]),
        _cell(0.05, 30, 5, 20, [0.09, 0.49]),
    ]
}


def test_the_briefing_states_the_measured_bound_and_power_at_the_nearest_scale(
    monkeypatch,
) -> None:
    monkeypatch.setattr(
        briefing,
        "operating_characteristics",
        lambda n, s: operating_characteristics(n, s, payload=PAYLOAD),
    )
    validation = {"out_of_sample": {"symbols": [f"S{i}" for i in range(100)], "sessions": 400}}
    lines = briefing_markdown._characteristics_md(briefing._characteristics(validation))
    text = "\n".join(lines)
    assert "False promotions on universes with no signal: 0/60 (0–6%), at most 6.0%" in text
    assert "planted rank IC of 0.05: 17/20 (62–97%), measured at 102 symbols" in text
    assert "This candidate: 100 symbols, 400 out-of-sample sessions" in text


def test_an_unmeasured_gate_version_says_so(monkeypatch) -> None:
    monkeypatch.setattr(briefing, "operating_characteristics", lambda n, s: None)
    lines = briefing_markdown._characteristics_md(briefing._characteristics(None))
    assert f"Gate version {GATE_VERSION} has no measured false-promotion rate" in lines[-1]
