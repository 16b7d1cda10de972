"""What a Breeze fetch raises beyond the ledger's ``QuotaExhausted``: an expired session (only a
person can log in again), an unknown ICICI code, a call that kept failing.

Kept apart from the source so that the SDK loader (``breeze_sdk``) and the source raise the same
classes, and a caller catches them without importing either.
"""

from __future__ import annotations

from sensequant_assets.sources.base import SourceError

LOGIN_URL = "https://api.icicidirect.com/apiuser/login?api_key=<your BREEZE_API_KEY>"


class BreezeSessionExpired(SourceError):
    """The session token was rejected; only a human can issue a new one."""


class BreezeUnknownCode(SourceError):
    """Breeze returned nothing for a range with sessions: the ICICI code is probably wrong."""


class BreezeRequestFailed(SourceError):
    """A call kept failing after every retry, or failed in a way retrying cannot fix."""


def session_help(detail: str, what: str) -> str:
    return (
        f"Breeze rejected the session for {what} ({detail}). Session tokens are issued daily "
        f"and expire at midnight IST: log in at {LOGIN_URL}, copy the API_Session value into "
        "BREEZE_SESSION_TOKEN, and re-run."
    )
