"""Timeouts on breeze-connect's network calls, without forking the SDK.

breeze-connect 1.0.69 calls ``requests.get/post/put/delete`` and ``urllib.request.urlopen``
with no timeout, so a server that accepts the connection and never answers hangs a run for
good. The SDK looks both names up in its module's globals at call time, so the adapter points
them at timed stand-ins there (``bound_sdk_calls``) and leaves the ``requests`` and ``urllib``
modules untouched for the rest of the process. The security master is downloaded while the SDK
module is still being imported, before those globals can be replaced: ``bounded_import`` swaps
``urllib.request.urlopen`` for the length of the import only (callers hold the SDK lock).

A timeout bounds connecting and each wait for bytes, as in ``requests`` and ``socket``.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from types import ModuleType
from typing import Any

import requests

_URLOPEN = urllib.request.urlopen


class TimedRequests:
    """The ``requests`` module as the SDK sees it: every request ends within ``timeout``."""

    def __init__(self, timeout: float):
        self.timeout = timeout

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        # The SDK passes 60 s to one security-master fetch; the shorter bound wins.
        given = kwargs.get("timeout")
        kwargs["timeout"] = self.timeout if given is None else min(given, self.timeout)
        return requests.request(method, url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("get", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("post", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("put", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("delete", url, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(requests, name)


def timed_urlopen(timeout: float) -> Callable[..., Any]:
    """``urllib.request.urlopen`` with ``timeout`` unless the caller passes its own."""
    return partial(_URLOPEN, timeout=timeout)


def bound_sdk_calls(sdk: ModuleType, timeout: float) -> None:
    """Make every later network call of the imported SDK module give up after ``timeout``."""
    sdk.requests = TimedRequests(timeout)  # type: ignore[attr-defined]
    sdk.urlopen = timed_urlopen(timeout)  # type: ignore[attr-defined]


@contextmanager
def bounded_import(timeout: float) -> Iterator[None]:
    """Bound the security-master download the SDK makes while it is being imported."""
    urllib.request.urlopen = timed_urlopen(timeout)  # type: ignore[assignment]
    try:
        yield
    finally:
        urllib.request.urlopen = _URLOPEN


def network_failure(exc: BaseException) -> str | None:
    """``"timeout"`` or ``"network"`` when ``exc`` (or what it wraps) is a network failure.

    The SDK re-raises everything as a bare ``Exception`` whose text embeds the original, so
    the original is found through the exception chain rather than by reading the text.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        reason = getattr(current, "reason", None)
        if isinstance(current, requests.Timeout | TimeoutError) or isinstance(reason, TimeoutError):
            return "timeout"
        if isinstance(current, requests.ConnectionError | ConnectionError | urllib.error.URLError):
            return "network"
        current = current.__cause__ or current.__context__
    return None
