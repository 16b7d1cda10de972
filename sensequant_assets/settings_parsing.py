"""Reading settings from text: the spelling rules of the values that are more than a number or
a word, and the one message a failed read becomes.

:mod:`sensequant_assets.settings` declares the variables and how they combine; these are the
plain rules its validators apply (a registry URL, a list of kinds, an http(s) URL, a warehouse
URI) and the translation of pydantic's errors into lines that name the environment variable,
never quoting a secret's value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from pydantic import AliasChoices, SecretStr, ValidationError
from pydantic.fields import FieldInfo

SECRET_ENV_NAMES = frozenset(
    {
        "BREEZE_API_KEY",
        "BREEZE_API_SECRET",
        "BREEZE_SESSION_TOKEN",
        "DAGSTER_PG_PASSWORD",
        "SENSEQUANT_REGISTRY_URL",
        "SENSEQUANT_WEBHOOK_URL",
    }
)
OBJECT_STORE_SCHEMES = ("s3", "s3a")


def registry_database(value: SecretStr | None, embedded: str) -> SecretStr | None:
    """``value`` if it is a postgresql:// URL or ``embedded`` (the SQLite files)."""
    if value is None or value.get_secret_value() == embedded:
        return value
    try:
        url = sa.make_url(value.get_secret_value())
    except sa.exc.ArgumentError:
        raise ValueError("must be a postgresql:// URL or sqlite") from None
    if url.get_backend_name() != "postgresql":
        raise ValueError(f"must be a postgresql:// URL or sqlite, not {url.drivername}://")
    return value


def defect_kinds(value: str, known: Sequence[str]) -> str:
    """A comma-separated list of ``known`` defect kinds (``all``: every one), without blanks."""
    kinds = [k.strip() for k in value.split(",") if k.strip()]
    if kinds == ["all"]:
        return ",".join(known)
    unknown = sorted(set(kinds) - set(known))
    if unknown:
        raise ValueError(f"unknown defect kind(s) {unknown}; choose from {list(known)} or 'all'")
    return ",".join(kinds)


def http_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/") if value else value


def warehouse_uri(value: str | None) -> str | None:
    """An s3:// URI or a local path (blank: unset), without its trailing slash."""
    if value is None or not value.strip():
        return None
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme not in OBJECT_STORE_SCHEMES and scheme not in ("", "file"):
        raise ValueError("must be an s3:// URI or a local path")
    return value.strip().rstrip("/")


def env_name(loc: str, fields: Mapping[str, FieldInfo], prefix: str) -> str:
    """The variable(s) a validation error refers to; ``loc`` is a field name or an alias."""
    for name, info in fields.items():
        alias = info.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        if loc == name or loc in choices:
            if isinstance(alias, AliasChoices):
                return " or ".join(str(c) for c in choices)
            return alias if isinstance(alias, str) else f"{prefix}{name.upper()}"
    return loc


def error_message(exc: ValidationError, fields: Mapping[str, FieldInfo], prefix: str) -> str:
    """``invalid configuration:`` and a line per error, naming its variable and the value it
    got (unless that is a secret)."""
    lines = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        where = env_name(loc[0], fields, prefix) if loc else "configuration"
        got = err.get("input")
        secret = where in SECRET_ENV_NAMES
        shown = "" if not loc or secret or isinstance(got, dict) else f" (got {got!r})"
        message = err["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}{shown}" if loc else message)
    return "invalid configuration:\n  " + "\n  ".join(lines)
