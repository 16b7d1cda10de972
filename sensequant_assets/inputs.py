"""Start-up checks of every input the settings name, so a bad one fails first and by name.

Without them a bad file fails late (the stress windows only after training) or with a parser's
message naming no file ("No columns to parse from file"), and ``SENSEQUANT_HOME`` pointing at
a file ends in a traceback. :func:`check_inputs` reads each named file with the parser that
will use it and raises one :class:`InputError` line naming the variable, the file and, for
content errors, the line. The CLI and ``build_defs`` call it before anything else.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sensequant_assets.calendar import load_holiday_file
from sensequant_assets.evaluation.stress.windows import load_stress_windows
from sensequant_assets.features.sentiment import read_headlines
from sensequant_assets.quality.corporate_actions import BadRowsError, read_corporate_actions
from sensequant_assets.settings import Settings
from sensequant_assets.universe import InvalidSymbolError, check_symbol, scrip_master_codes

T = TypeVar("T")

#: Settings field → (its variable, the parser that reads the file).
FILE_INPUTS: dict[str, tuple[str, Callable[[Path], object]]] = {
    "corporate_actions_file": ("SENSEQUANT_CORPORATE_ACTIONS_FILE", read_corporate_actions),
    "holiday_file": ("SENSEQUANT_HOLIDAY_FILE", load_holiday_file),
    "scrip_master": ("SENSEQUANT_SCRIP_MASTER", scrip_master_codes),
    "sentiment_headlines_file": ("SENSEQUANT_SENTIMENT_HEADLINES_FILE", read_headlines),
    "stress_windows_file": ("SENSEQUANT_STRESS_WINDOWS_FILE", load_stress_windows),
}

# (variable, path, size, mtime) of files that parsed: the CLI, build_defs and each step
# process check the same files, and a large scrip master need not be parsed every time.
_checked: set[tuple[str, str, int, int]] = set()


class InputError(ValueError):
    """An input named in the settings (or on the command line) is missing or unusable."""


def check_inputs(settings: Settings) -> None:
    """Raise :class:`InputError` for the first unusable input ``settings`` names."""
    check_home(settings.home)
    if settings.files_dir is not None and not settings.files_dir.is_dir():
        raise InputError(f"SENSEQUANT_FILES_DIR={settings.files_dir} is not a directory")
    for field, (variable, parse) in FILE_INPUTS.items():
        path = getattr(settings, field)
        if path is not None:
            _check_once(variable, Path(path), parse)
    for symbol in settings.symbol_list or ():
        try:
            check_symbol(symbol, "SENSEQUANT_SYMBOLS")
        except InvalidSymbolError as exc:
            raise InputError(str(exc)) from None


def check_home(home: Path) -> None:
    """``SENSEQUANT_HOME`` may be missing (it is created on the first write), not a file."""
    existing = next((p for p in (home, *home.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        where = "" if existing == home else f" ({existing} is a file)"
        raise InputError(f"SENSEQUANT_HOME={home} is not a directory{where}")


def read_input(variable: str, path: Path, parse: Callable[[Path], T]) -> T:
    """``parse(path)``, after checking the file exists, is not empty and is text.

    Every failure, the parser's own included, becomes one :class:`InputError` line that
    starts with ``variable`` and names ``path``; a parser's :class:`BadRowsError` keeps one
    indented line per bad row under it.
    """
    label = f"{variable}={path}"
    if not path.exists():
        raise InputError(f"{label}: no such file")
    if not path.is_file():
        raise InputError(f"{label}: not a regular file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{label}: cannot read it ({exc.strerror})") from None
    if not data.strip():
        raise InputError(f"{label}: the file is empty")
    if b"\0" in data or not _is_utf8(data):
        raise InputError(f"{label}: not a text file (binary, or not UTF-8)")
    try:
        return parse(path)
    except BadRowsError as exc:
        rows = "".join(f"\n  {problem}" for problem in str(exc).splitlines()[1:])
        raise InputError(f"{label}: {exc.rows} bad row(s):{rows}") from None
    except (ValueError, OSError) as exc:
        message = " ".join(str(exc).split())
        if str(path) not in message:
            message = f"{path}: {message}"
        raise InputError(f"{variable}: {message}") from None


def _check_once(variable: str, path: Path, parse: Callable[[Path], object]) -> None:
    try:
        stat = path.stat()
        key = (variable, str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    except OSError:
        key = None
    if key in _checked:
        return
    read_input(variable, path, parse)
    if key is not None:
        _checked.add(key)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
