"""Webhook notifications against a receiver on 127.0.0.1: Slack-shaped JSON, secrets masked,
and a dead or failing receiver reported, never raised."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from sensequant_assets.live.notify import MASK, TITLES, build_payload, notify
from sensequant_assets_tests.services import free_port
from sensequant_assets_tests.webhook import Receiver, receiving

SECRET = "s3cr3t-breeze-session-token"


@pytest.fixture
def receiver() -> Iterator[str]:
    with receiving() as url:
        yield url


def test_a_notification_arrives_as_slack_json(receiver: str) -> None:
    delivery = notify(
        receiver,
        "demoted",
        "live_candidate_20261201_101500 → live_candidate_20261101_090000",
        {"reason": "rank IC below its band for 5 sessions", "rolling_rank_ic": -0.021},
    )
    assert delivery.status == "sent" and delivery.detail == "HTTP 200"
    (body,) = Receiver.bodies
    assert body["content_type"] == "application/json"
    payload = body["json"]
    assert payload["text"].startswith("[sensequant] Production model demoted: live_candidate_2026")
    section = payload["blocks"][0]["text"]["text"]
    assert "• reason: rank IC below its band for 5 sessions" in section
    assert "• rolling_rank_ic: -0.021" in section


def test_secrets_never_reach_the_payload(receiver: str) -> None:
    notify(
        receiver,
        "run_failed",
        "ingest of RELIANCE",
        {"error": f"Breeze refused session {SECRET} (expired)"},
        secrets=[SECRET, ""],
    )
    raw = json.dumps(Receiver.bodies[0]["json"])
    assert SECRET not in raw and f"session {MASK} (expired)" in raw


def test_a_failing_or_dead_receiver_is_reported_not_raised(receiver: str) -> None:
    Receiver.status = 500
    assert notify(receiver, "deployed", "x").status == "failed"
    dead = f"http://127.0.0.1:{free_port()}/hook"
    delivery = notify(dead, "deployed", "x", timeout=1.0)
    assert delivery.status == "failed" and "/hook" not in delivery.detail
    assert notify(None, "deployed", "x").status == "skipped"


def test_every_event_has_a_title_and_unknown_ones_are_refused() -> None:
    for event in TITLES:
        assert build_payload(event, "s", {})["text"].startswith("[sensequant] ")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown notification event"):
        build_payload("exploded", "s", {})  # type: ignore[arg-type]
