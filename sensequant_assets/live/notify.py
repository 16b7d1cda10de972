"""Notifications to a Slack-compatible incoming webhook (``SENSEQUANT_WEBHOOK_URL``).

A person should hear of a candidate waiting for review, an approval, a staging trial's start
and result, a deployment, a demotion and a failed run without watching Dagit. The payload is
Slack's ``text`` plus one ``section`` block, which Slack, Mattermost, Rocket.Chat and Teams'
Slack-compatible connectors all accept.

Two rules shape it. A notification never fails the work it reports: delivery errors come
back as a :class:`Delivery`, never as an exception. And no secret reaches the payload: it is
built only from the fields passed, and every secret value the caller knows (the settings'
``SecretStr`` fields) is replaced by ``***`` wherever it appears, as a last line of defence
against an error message that quoted one.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from sensequant_assets.settings import Settings

Event = Literal[
    "candidate_ready",
    "approved",
    "staging_started",
    "staging_result",
    "deployed",
    "demoted",
    "run_failed",
]
TITLES: dict[str, str] = {
    "candidate_ready": "Candidate ready for review",
    "approved": "Candidate approved",
    "staging_started": "Staging trial started",
    "staging_result": "Staging trial finished",
    "deployed": "Model deployed to production",
    "demoted": "Production model demoted",
    "run_failed": "Run failed",
}
TIMEOUT_SECONDS = 5.0
MASK = "***"


@dataclass(frozen=True)
class Delivery:
    """What happened to one notification: sent (HTTP 2xx), skipped (no URL) or failed."""

    status: Literal["sent", "skipped", "failed"]
    detail: str = ""


def build_payload(
    event: Event, subject: str, details: Mapping[str, object], secrets: Iterable[str] = ()
) -> dict[str, object]:
    """The JSON body: a one-line ``text`` and a Markdown section listing ``details``."""
    if event not in TITLES:
        raise ValueError(f"unknown notification event {event!r}; expected one of {list(TITLES)}")
    lines = [f"*{TITLES[event]}*: {subject}"]
    lines += [f"• {key}: {value}" for key, value in details.items()]
    masked = [s for s in secrets if s]
    text = _mask(f"[sensequant] {TITLES[event]}: {subject}", masked)
    body = _mask("\n".join(lines), masked)
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": body}}],
    }


def notify(
    url: str | None,
    event: Event,
    subject: str,
    details: Mapping[str, object] | None = None,
    secrets: Iterable[str] = (),
    timeout: float = TIMEOUT_SECONDS,
) -> Delivery:
    """POST the notification to ``url``; ``skipped`` when no URL is configured."""
    if not url:
        return Delivery("skipped", "no webhook configured")
    secrets = list(secrets)
    payload = build_payload(event, subject, details or {}, secrets)
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Delivery("sent", f"HTTP {response.status}")
    except urllib.error.HTTPError as exc:
        return Delivery("failed", f"HTTP {exc.code} from the webhook")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Delivery("failed", _mask(f"webhook unreachable: {reason}", secrets))


def _mask(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


@dataclass(frozen=True)
class Notifier:
    """:func:`notify` bound to a configuration's webhook and secrets: what the assets, sensors
    and commands call (``Notifier.of(settings)``)."""

    url: str | None
    secrets: tuple[str, ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> Notifier:
        url = settings.webhook_url.get_secret_value() if settings.webhook_url else None
        return cls(url, settings.secret_values)

    def __call__(
        self, event: Event, subject: str, details: Mapping[str, object] | None = None
    ) -> Delivery:
        return notify(self.url, event, subject, details, self.secrets)
