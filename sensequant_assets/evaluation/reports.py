"""Self-contained HTML and GitHub-markdown reports a reviewer can read offline.

A report is a title and a sequence of ``Section``s, each holding paragraphs, ``Table``s and
``Image``s (PNG bytes, e.g. from ``sensequant_assets.evaluation.charts``). ``render_html``
fills ``templates/report.html.j2`` into one UTF-8 file with inline CSS and every image
embedded as a ``data:`` URI: no external stylesheet, script, font or CDN, so it opens from a
USB stick or an air-gapped review box. The template lives beside the code as package data and
is rendered by a Jinja2 environment with autoescaping on, so every piece of caller text is
escaped by construction, not by remembering to.

``render_markdown`` renders the same structure as GitHub markdown (``validation_summary.md``,
``stress_report.md``), readable with ``cat``: only what Markdown would take for HTML is
backslash-escaped; images are linked by relative path, written next to it with
``write_png``. ``write_report``/``write_png`` write atomically (temp file in the target
directory, fsynced, then renamed; see :mod:`sensequant_assets.atomic`), so a reader never
sees a half-written report.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import jinja2
import numpy as np
import pandas as pd

from sensequant_assets.atomic import write_atomic

__all__ = [
    "MISSING",
    "PNG_SIGNATURE",
    "Image",
    "Section",
    "Table",
    "format_value",
    "render_html",
    "render_markdown",
    "report_template",
    "write_png",
    "write_report",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MISSING = "—"
"""How None, NaN, NaT and pandas NA are shown in tables."""

Formatter = Callable[[object], str]


@dataclass(frozen=True)
class Table:
    """A captioned table; every row has one value per column. Values go through a formatter."""

    caption: str
    columns: Sequence[str]
    rows: Sequence[Sequence[object]]

    def __post_init__(self) -> None:
        columns = tuple(str(c) for c in self.columns)
        if not columns:
            raise ValueError(f"table {self.caption!r} has no columns")
        rows = tuple(tuple(row) for row in self.rows)
        for number, row in enumerate(rows, start=1):
            if len(row) != len(columns):
                raise ValueError(
                    f"table {self.caption!r}: row {number} has {len(row)} values "
                    f"for {len(columns)} columns"
                )
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "rows", rows)


@dataclass(frozen=True)
class Image:
    """A captioned PNG image (the raw file bytes)."""

    caption: str
    png: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.png, bytes | bytearray) or not self.png.startswith(PNG_SIGNATURE):
            raise ValueError(f"image {self.caption!r} is not PNG data")
        object.__setattr__(self, "png", bytes(self.png))


@dataclass(frozen=True)
class Section:
    """A headed part of a report: paragraphs, then tables, then images."""

    heading: str
    paragraphs: Sequence[str] = ()
    tables: Sequence[Table] = ()
    images: Sequence[Image] = ()

    def __post_init__(self) -> None:
        if isinstance(self.paragraphs, str):
            raise TypeError("Section.paragraphs must be a sequence of strings, not one string")
        object.__setattr__(self, "paragraphs", tuple(str(p) for p in self.paragraphs))
        object.__setattr__(self, "tables", tuple(self.tables))
        object.__setattr__(self, "images", tuple(self.images))


# --------------------------------------------------------------------------- values


def _is_missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return bool(value != value)  # NaN, numpy.datetime64("NaT")
    except (TypeError, ValueError):  # arrays and other exotic objects
        return False


def _format_float(value: float, digits: int) -> str:
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value == 0:
        return "0"
    # Round to `digits` significant digits first, so 9.99996 becomes 10.00, not 9.9999/10.000.
    rounded = float(f"{value:.{digits - 1}e}")
    magnitude = math.floor(math.log10(abs(rounded)))
    if magnitude >= digits - 1:
        return f"{rounded:,.0f}"
    if magnitude < -4:
        return f"{rounded:.{digits - 1}e}"
    return f"{rounded:.{digits - 1 - magnitude}f}"


def format_value(value: object, *, digits: int = 4) -> str:
    """Text for one table cell.

    None/NaN/NaT/NA → "—"; bools → "yes"/"no"; integers with thousands separators
    (1,234,567); floats to ``digits`` significant digits (0.5432, 1.235, 12.35, 1,235 for
    1234.5, 1.235e-05 below 1e-4); infinities as ∞/-∞; dates in ISO format; anything else
    via ``str``.
    """
    if digits < 1:
        raise ValueError("digits must be at least 1")
    if _is_missing(value):
        return MISSING
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        return _format_float(float(value), digits)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None and value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _is_numeric(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _numeric_columns(table: Table) -> list[bool]:
    """A column is right-aligned when it has a number and nothing but numbers or blanks."""
    flags = []
    for index in range(len(table.columns)):
        cells = [row[index] for row in table.rows if not _is_missing(row[index])]
        flags.append(bool(cells) and all(_is_numeric(cell) for cell in cells))
    return flags


# --------------------------------------------------------------------------- HTML

REPORT_TEMPLATE = "report.html.j2"
"""The page layout and its inline CSS, under ``templates/`` in this package (package data)."""


@functools.cache
def _templates() -> jinja2.Environment:
    """Autoescaping is the environment's, not each call site's: no caller text can reach the
    page unescaped. Built once, on first use, so importing this module reads no template."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("sensequant_assets.evaluation", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def report_template() -> jinja2.Template:
    """The report page's template, loaded from the installed package's resources."""
    return _templates().get_template(REPORT_TEMPLATE)


def _html_table(table: Table, formatter: Formatter) -> dict[str, object]:
    """What the template shows of a table: each cell already text, paired with whether its
    column is right-aligned, so the template holds markup and no formatting rules."""
    numeric = _numeric_columns(table)
    return {
        "caption": table.caption,
        "columns": table.columns,
        "rows": [
            [(formatter(v), num) for v, num in zip(row, numeric, strict=True)] for row in table.rows
        ],
    }


def _html_section(section: Section, formatter: Formatter) -> dict[str, object]:
    return {
        "heading": section.heading,
        "paragraphs": section.paragraphs,
        "tables": [_html_table(table, formatter) for table in section.tables],
        "images": [
            {"caption": image.caption, "base64": base64.b64encode(image.png).decode("ascii")}
            for image in section.images
        ],
    }


def render_html(
    title: str,
    sections: Sequence[Section],
    *,
    formatter: Formatter = format_value,
) -> str:
    """One self-contained HTML document; ``formatter`` turns table values into text."""
    return report_template().render(
        title=title, sections=[_html_section(s, formatter) for s in sections]
    )


# --------------------------------------------------------------------------- markdown


_MD_HTML = re.compile(r"<(?=[A-Za-z/!?])|&(?=#?\w+;)")


def _md_no_html(text: str) -> str:
    """``<`` opening a tag and ``&`` opening an entity, backslash-escaped."""
    return _MD_HTML.sub(lambda match: "\\" + match.group(), text)


def _md_text(text: object) -> str:
    """Caller text for markdown, with no raw HTML getting through, yet readable as a file:
    ``buy & hold`` and ``x <= 0`` stay as written (entities would read ``&amp;``)."""
    # backslashes right before < or & would escape the escape: make them literal first
    return _md_no_html(re.sub(r"\\+(?=[<&])", lambda m: m.group() * 2, str(text)))


def _md_cell(text: object) -> str:
    cell = _md_no_html(str(text).replace("\\", "\\\\")).replace("|", "\\|")
    return "<br>".join(cell.splitlines()) if "\n" in cell or "\r" in cell else cell


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _md_table(table: Table, formatter: Formatter) -> list[str]:
    out = []
    if table.caption:
        out += [f"**{_md_text(table.caption)}**", ""]
    numeric = _numeric_columns(table)
    out.append(_md_row([_md_cell(c) for c in table.columns]))
    out.append(_md_row(["---:" if num else "---" for num in numeric]))
    for row in table.rows:
        out.append(_md_row([_md_cell(formatter(v)) for v in row]))
    if not table.rows:
        out.append(_md_row(["_no rows_"] + [""] * (len(table.columns) - 1)))
    out.append("")
    return out


def _md_link_target(path: str) -> str:
    return quote(str(path).replace("\\", "/"), safe="/._-~#")


def render_markdown(
    title: str,
    sections: Sequence[Section],
    image_paths: Mapping[str, str] | None = None,
    *,
    formatter: Formatter = format_value,
) -> str:
    """The same report as GitHub markdown.

    Tables become pipe tables (numeric columns right-aligned); an image becomes
    ``![caption](path)`` with ``path = image_paths[caption]`` (relative to the markdown file),
    and is left out when its caption has no path.
    """
    image_paths = image_paths or {}
    out = [f"# {_md_text(title)}", ""]
    for section in sections:
        out += [f"## {_md_text(section.heading)}", ""]
        for paragraph in section.paragraphs:
            out += [_md_text(paragraph), ""]
        for table in section.tables:
            out += _md_table(table, formatter)
        for image in section.images:
            path = image_paths.get(image.caption)
            if not path:
                continue
            alt = _md_text(image.caption).replace("[", "\\[").replace("]", "\\]")
            out += [f"![{alt}]({_md_link_target(path)})", ""]
    return "\n".join(out).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- files


def write_report(path: Path, html: str) -> Path:
    """Write ``html`` (or markdown) as UTF-8 to ``path`` atomically, creating parent dirs."""
    return write_atomic(path, html.encode("utf-8"))


def write_png(path: Path, png: bytes) -> Path:
    """Write PNG bytes to ``path`` atomically, creating parent dirs."""
    if not bytes(png[: len(PNG_SIGNATURE)]) == PNG_SIGNATURE:
        raise ValueError(f"write_png: data for {path} is not a PNG")
    return write_atomic(path, bytes(png))
