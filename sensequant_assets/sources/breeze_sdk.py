"""Loading the ``breeze-connect`` SDK: once per process, aimed at the configured endpoint.

The SDK is awkward to host: importing it downloads the security master over the network,
resolves ``import config`` against whatever module of that name is loaded, and creates
``./logs/`` in the current directory. So it is imported lazily, on first use, with its own
``config.py`` pinned in ``sys.modules`` (endpoint URLs patched for a fake server or proxy) and
the working directory switched to ``sdk_home``; :data:`SDK_LOCK` guards that process-wide state.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
from functools import cache
from pathlib import Path
from types import ModuleType

from sensequant_assets.sources.breeze_errors import BreezeRequestFailed
from sensequant_assets.sources.breeze_logs import rotate_sdk_logs
from sensequant_assets.sources.breeze_replies import network_detail, one_line
from sensequant_assets.sources.breeze_timeouts import bounded_import

URL_CONSTANTS = ("API_URL", "BREEZE_NEW_URL", "SECURITY_MASTER_URL")
SDK_MODULE = "breeze_connect.breeze_connect"

# Guards the process-wide state the SDK depends on: sys.modules["config"], the cwd during
# import, and the URL constants of its config module while a call is in flight.
SDK_LOCK = threading.RLock()


def _sdk_config_path() -> Path:
    spec = importlib.util.find_spec("breeze_connect")
    if spec is None or not spec.submodule_search_locations:
        raise BreezeRequestFailed("breeze-connect is not installed: pip install breeze-connect")
    return Path(next(iter(spec.submodule_search_locations))) / "config.py"


def _load_sdk_config() -> ModuleType:
    """A fresh copy of the SDK's own ``config.py`` (it only defines constants and enums)."""
    spec = importlib.util.spec_from_file_location("config", _sdk_config_path())
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def _default_urls() -> dict[str, str]:
    config = _load_sdk_config()
    return {name: getattr(config, name) for name in URL_CONSTANTS}


def sdk_urls(base_url: str | None) -> dict[str, str]:
    """The SDK's endpoint constants for ``base_url`` (ICICI's own when None)."""
    if base_url is None:
        return _default_urls()
    base = base_url.rstrip("/")
    return {
        "API_URL": f"{base}/breezeapi/api/v1/",
        "BREEZE_NEW_URL": f"{base}/api/v2/",
        "SECURITY_MASTER_URL": f"{base}/SecurityMaster.zip",
    }


def point_config(config: ModuleType, urls: dict[str, str]) -> None:
    for name, value in urls.items():
        setattr(config, name, value)


def import_sdk(sdk_home: Path, urls: dict[str, str], timeout: float, what: str) -> ModuleType:
    """Import the SDK once per process, aimed at ``urls``, with its logs under ``sdk_home``.

    The import downloads the security master; ``timeout`` bounds that download.
    """
    with SDK_LOCK:
        loaded = sys.modules.get(SDK_MODULE)
        if loaded is not None:
            return loaded
        config = _load_sdk_config()
        point_config(config, urls)
        sdk_dir = str(_sdk_config_path().parent)
        sdk_home.mkdir(parents=True, exist_ok=True)
        previous = sys.modules.get("config")
        path_before = list(sys.path)
        cwd = os.getcwd()
        sys.modules["config"] = config
        try:
            os.chdir(sdk_home)
            with bounded_import(timeout):
                module = importlib.import_module(SDK_MODULE)
            rotate_sdk_logs()
            return module
        except Exception as exc:
            reason = network_detail(exc, timeout) or one_line(str(exc))
            raise BreezeRequestFailed(
                f"Breeze {what}: could not import breeze-connect, which downloads "
                f"{urls['SECURITY_MASTER_URL']} at import time: {reason}"
            ) from exc
        finally:
            os.chdir(cwd)
            if previous is None:
                sys.modules.pop("config", None)
            else:
                sys.modules["config"] = previous
            # The SDK prepends its folder to sys.path so that a bare `import config` finds it.
            if sdk_dir not in path_before:
                sys.path[:] = [p for p in sys.path if p != sdk_dir]
